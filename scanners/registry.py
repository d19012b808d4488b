"""Which reader reads a file: sniffed from its decompressed content.

Each format module in ``scanners/formats/`` exposes

* ``FORMATS``: a tuple of ``Format`` entries it provides, each with
  ``sniff(head: bytes) -> bool`` over the first ``SNIFF_BYTES`` of the
  decompressed file and ``read(chunks, ctx) -> Iterator[pa.RecordBatch]``.

Order matters: the first format whose ``sniff`` says yes reads the file, so
specific signatures (magic strings) come before loose ones (a bare IP list).
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Iterable, Iterator

import pyarrow as pa

from pipelines.schema import DamageKind
from scanners.base import ReadContext
from scanners.compression import iter_decompressed

SNIFF_BYTES = 64 * 1024

# Module names, in sniffing order (most specific signatures first).
FORMAT_MODULES = (
    "scanners.formats.masscan_binary",
    "scanners.formats.masscan_xml",
    "scanners.formats.masscan_text",   # -oL, -oG
    "scanners.formats.masscan_json",   # ndjson/-oD and -oJ
    "scanners.formats.zgrab2",
    "scanners.formats.zmap",           # csv (with/without header), json, bare IP list
)


@dataclasses.dataclass(frozen=True)
class Format:
    name: str                 # e.g. "masscan-ndjson"
    tool: str                 # masscan / zmap / zgrab2
    sniff: Callable[[bytes], bool]
    read: Callable[[Iterable[bytes], ReadContext], Iterator[pa.RecordBatch]]


def all_formats() -> tuple[Format, ...]:
    out: list[Format] = []
    for mod in FORMAT_MODULES:
        out.extend(importlib.import_module(mod).FORMATS)
    return tuple(out)


def sniff_format(head: bytes) -> Format | None:
    for fmt in all_formats():
        if fmt.sniff(head):
            return fmt
    return None


def read_file_chunks(raw_chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Decompress, sniff and read one file's raw chunks into RAW_SCHEMA batches.

    Never raises on bad content: an unrecognised file is recorded as damage
    (``unknown_format``) with no records. ``ctx.facts`` gets ``format`` and
    ``tool``.
    """
    chunks = iter_decompressed(raw_chunks, ctx)
    head = b""
    buffered: list[bytes] = []
    for c in chunks:
        buffered.append(c)
        head += c
        if len(head) >= SNIFF_BYTES:
            break
    fmt = sniff_format(head[:SNIFF_BYTES])
    if fmt is None:
        ctx.facts["format"] = "unknown"
        if head.strip():
            ctx.damage(DamageKind.UNKNOWN_FORMAT, 0,
                       "content matches no masscan, zmap or zgrab2 output format")
        for _ in chunks:  # drain so compression damage is still reported
            pass
        return
    ctx.facts["format"] = fmt.name
    ctx.facts["tool"] = fmt.tool

    def replay() -> Iterator[bytes]:
        yield from buffered
        yield from chunks

    yield from fmt.read(replay(), ctx)
