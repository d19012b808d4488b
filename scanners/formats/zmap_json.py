"""zmap ``-O json``: one JSON object per line, the same field names as CSV
(see ``zmap_common``)."""
from __future__ import annotations

import re
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from pipelines.schema import QuarantineReason as Q
from scanners.base import MAX_RECORD_BYTES, ReadContext
from scanners.formats.zmap_common import TYPES, Plan, _first_line, _sliced, build, canonical, make_plan
from scanners.lines import json_object, json_objects


# Fields only zmap writes (its system fields and every probe module's result
# fields): with ``saddr``, one of these tells zmap's JSON from other JSON that
# happens to name a source address (LZR writes saddr/sport/dport/seqnum too).
ZMAP_MARKERS = frozenset({"classification", "success", "repeat", "cooldown", "timestamp-str",
                          "timestamp-ts", "timestamp-us", "saddr-raw", "daddr-raw"})
# zmap field names are lower case (``timestamp_str``, ``udp_pkt_size``); LZR's
# ``ACK``/``SYN``/``Timestamp``/``expectedRToLZR`` are not.
_ZMAP_KEY = re.compile(r"[a-z][a-z0-9_-]*\Z")


def sniff_json(head: bytes) -> bool:
    """The first line is one JSON object of zmap field names: ``saddr``, at
    least one of ``ZMAP_MARKERS``, and only lower-case names as zmap writes them.
    Anything else with an ``saddr`` (LZR, a bare ``-f saddr`` list as JSON)
    is no zmap format: ``unknown_format`` unless another reader claims it."""
    line = _first_line(head)
    obj = json_object(line) if line else None
    if not isinstance(obj, dict) or "saddr" not in obj:
        return False
    if not all(isinstance(k, str) and _ZMAP_KEY.match(k) for k in obj):
        return False
    return any(canonical(k) in ZMAP_MARKERS for k in obj)


def read_json(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """zmap ``-O json``: one object per line, the same field names as CSV."""
    plan: Plan | None = None
    pending: list[tuple[int, bytes, dict]] = []
    for off, raw, obj in json_objects(chunks, ctx, max_record=MAX_RECORD_BYTES):
        got = _json_row(off, raw, obj, ctx)
        if got is None:
            continue
        plan = plan or make_plan(got[0], ctx)
        pending.append((off, raw, got[1]))
        if len(pending) >= ctx.batch_rows:
            yield from _json_batch(pending, plan, ctx)
            pending = []
    yield from _json_batch(pending, plan, ctx)


def _json_row(off: int, raw: bytes, obj: dict, ctx: ReadContext) -> tuple[list[str], dict] | None:
    """(all canonical keys, typed TYPES values) of one line, or None once quarantined."""
    obj = {canonical(key): v for key, v in obj.items()}
    row = {}
    for f, typ in TYPES.items():
        v = obj.get(f)
        if typ == pa.int64() and isinstance(v, bool):
            v = int(v)          # newer zmap writes success/repeat as JSON booleans
        if not (v is None or (isinstance(v, str) if typ == pa.string()
                              else isinstance(v, int) and -(1 << 63) <= v < (1 << 63))):
            ctx.quarantine(off, Q.MALFORMED_RECORD, f"{f} has the wrong JSON type", raw)
            return None
        row[f] = v
    return list(obj), row


def _json_batch(pending: list, plan: Plan | None, ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    if pending:
        cols = {f: pa.array([r[f] for _, _, r in pending], t) for f, t in TYPES.items() if f in plan.fields}
        offsets = np.array([o for o, _, _ in pending], dtype=np.int64)
        yield from _sliced(build(cols, offsets, lambda i: pending[i][1], plan, ctx), ctx)

