"""zmap ``-O csv``: a header line of field names, then one line per response
(see ``zmap_common`` for the fields and what they mean)."""
from __future__ import annotations

import re
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.schema import QuarantineReason as Q
from scanners.base import MAX_RECORD_BYTES, ReadContext
from scanners.formats.zmap_common import TYPES, Plan, _first_line, _sliced, build, canonical, make_plan
from scanners.lines import BLOCK_BYTES, iter_blocks, truncated

_FIELD_NAME = re.compile(rb"[a-z][a-z0-9_-]*\Z")


def sniff_csv(head: bytes) -> bool:
    """A header line of zmap field names that includes ``saddr``."""
    line = _first_line(head)
    if not line:
        return False
    names = [n.strip() for n in line.split(b",")]
    return b"saddr" in names and all(_FIELD_NAME.match(n) for n in names)



def read_csv(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Headered zmap CSV, parsed by pyarrow a block at a time with explicit
    column types. A block pyarrow refuses is bisected until the refused lines
    stand alone: only those are quarantined, and every line is judged by the
    same parser whichever path it took."""
    plan: Plan | None = None
    for base, block, starts, ends, complete in iter_blocks(
            chunks, ctx, max_record=MAX_RECORD_BYTES, block_bytes=BLOCK_BYTES):
        if not complete:
            truncated(ctx, base, block)
            continue
        if plan is None:
            names = [canonical(x) for x in block[:ends[0]].decode("utf-8", "replace").split(",")]
            plan = make_plan(names, ctx)
            ctx.facts["zmap_fields"] = ",".join(names)
            starts, ends = starts[1:], ends[1:]
        yield from _sliced(_csv_block(base, block, starts, ends, plan, ctx), ctx)


def _csv_block(base: int, block: bytes, starts: np.ndarray, ends: np.ndarray, plan: Plan,
               ctx: ReadContext) -> pa.RecordBatch | None:
    """The lines ``starts``/``ends`` of ``block`` (whole lines, in file order)."""
    lens = ends - starts
    arr = np.frombuffer(block, dtype=np.uint8)
    last = arr[np.maximum(ends - 1, 0)]
    trail_cr = (lens > 0) & (last == 13)
    blank = (lens == 0) | ((lens == 1) & trail_cr)
    # pyarrow also ends a line at a lone CR, which would shift rows against
    # our offsets: a line with a CR anywhere but its end never goes to pyarrow.
    cr_count = np.add.reduceat((arr == 13).astype(np.int32), starts) if len(starts) else starts
    cr_count = np.where(lens == 0, 0, cr_count)
    poison = cr_count > trail_cr
    need: dict[str, int] = {}
    for i, name in enumerate(plan.fields):
        if name in TYPES and name not in need:
            need[name] = i
    if "saddr" not in need:   # no target address: no observation (and pyarrow would guess types)
        for i in np.flatnonzero(~blank):
            ctx.quarantine(int(base + starts[i]), Q.MISSING_FIELD, "zmap CSV header has no saddr field",
                           block[starts[i]:ends[i]])
        return None
    opts = (pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(plan.fields))],
                              use_threads=False, block_size=len(block) + 1),
            pacsv.ParseOptions(newlines_in_values=False),
            pacsv.ConvertOptions(column_types={f"c{i}": TYPES[f] for f, i in need.items()},
                                 include_columns=[f"c{i}" for i in need.values()], null_values=[""],
                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    parts: list[tuple[pa.Table, np.ndarray]] = []
    todo = [(0, len(starts))]
    while todo:
        lo, hi = todo.pop()
        rows = lo + np.flatnonzero(~blank[lo:hi])
        if not len(rows):
            continue
        table = None
        if not poison[lo:hi].any():
            try:
                table = pacsv.read_csv(pa.py_buffer(block[starts[lo]:ends[hi - 1] + 1]), *opts)
            except pa.ArrowInvalid:
                table = None
        if table is not None and table.num_rows == len(rows):
            parts.append((table, rows))
        elif hi - lo == 1:   # oversized lines never get here: iter_blocks took them out
            ctx.quarantine(int(base + starts[lo]), Q.MALFORMED_RECORD,
                           "line does not parse with the header's fields and types", block[starts[lo]:ends[lo]])
        else:
            mid = (lo + hi) // 2
            todo += [(mid, hi), (lo, mid)]   # popped lo half first: rows stay in file order
    if not parts:
        return None
    rows = np.concatenate([r for _, r in parts])
    table = pa.concat_tables([t for t, _ in parts])
    cols = {f: table.column(f"c{i}").combine_chunks() for f, i in need.items()}
    s, e = starts[rows], ends[rows]
    return build(cols, base + s, lambda j: block[s[j]:e[j]], plan, ctx)

