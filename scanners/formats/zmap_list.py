"""zmap's bare address list (no ``-O``, or ``-O csv`` with only ``saddr``):
one address per line, no port, time or outcome (see ``zmap_common``)."""
from __future__ import annotations

import ipaddress
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from scanners.base import MAX_RECORD_BYTES, ReadContext
from scanners.formats.zmap_common import _sliced, build, make_plan
from scanners.lines import BLOCK_BYTES, iter_blocks, truncated


def _is_ip(text: bytes) -> bool:
    try:
        ipaddress.ip_address(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def sniff_list(head: bytes) -> bool:
    """The loosest format: the first line is an address and so are at least
    90% of the lines (one damaged line must not make the file unknown)."""
    lines = head.split(b"\n")
    lines = lines[:-1] if len(lines) > 1 else lines   # the last may be cut by the sniff window
    vals = [v for v in (x.strip() for x in lines) if v]
    if not vals or not _is_ip(vals[0]):
        return False
    return sum(map(_is_ip, vals)) >= 0.9 * len(vals)



def read_list(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Bare ``saddr`` lines: port from the sidecar or file name, no timestamp
    (``facts["scan_start_us"]`` if the sidecar gives it, else null with
    ``facts["timestamps_missing"]``)."""
    plan = make_plan(("saddr",), ctx)
    for base, block, starts, ends, complete in iter_blocks(
            chunks, ctx, max_record=MAX_RECORD_BYTES, block_bytes=BLOCK_BYTES):
        if not complete:
            truncated(ctx, base, block)
            continue
        ips: list[str] = []
        offs: list[int] = []
        raws: list[bytes] = []
        for s, e in zip(starts.tolist(), ends.tolist()):
            raw = block[s:e]
            if text := raw.strip():
                ips.append(text.decode("utf-8", "replace"))
                offs.append(base + s)
                raws.append(raw)
        batch = build({"saddr": pa.array(ips, pa.string())}, np.array(offs, dtype=np.int64),
                      raws.__getitem__, plan, ctx)
        yield from _sliced(batch, ctx)

