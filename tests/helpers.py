"""Small builders shared by the tests (no logic under test lives here)."""
from __future__ import annotations

import pyarrow as pa

from pipelines.schema import RAW_SCHEMA


def raw_batch(rows: list[dict], source: str = "t.ndjson", tool: str = "masscan") -> pa.RecordBatch:
    """RAW_SCHEMA batch from dicts; missing keys are null, timestamps in seconds."""
    cols = {name: [] for name in RAW_SCHEMA.names}
    for i, r in enumerate(rows):
        for name in RAW_SCHEMA.names:
            v = r.get(name)
            if name == "timestamp" and v is not None:
                v = int(v * 1_000_000)
            if name == "source_file":
                v = r.get(name, source)
            if name == "source_offset":
                v = r.get(name, i * 100)
            if name == "tool":
                v = r.get(name, tool)
            cols[name].append(v)
    cols["timestamp"] = pa.array(cols["timestamp"], pa.int64()).cast(RAW_SCHEMA.field("timestamp").type)
    return pa.RecordBatch.from_pydict(cols, schema=RAW_SCHEMA)


def read_in_chunks(reader, data: bytes, ctx, chunk: int | None = None) -> pa.Table:
    """Feed ``data`` to a pure reader in ``chunk``-byte pieces (whole when None)
    and check the reader contract on the way: every batch is RAW_SCHEMA, and
    every record read is a row or a quarantine entry."""
    chunks = [data] if chunk is None else [data[i:i + chunk] for i in range(0, len(data), chunk)]
    batches = list(reader(iter(chunks), ctx))
    for b in batches:
        assert b.schema.equals(RAW_SCHEMA)
    table = pa.Table.from_batches(batches, schema=RAW_SCHEMA)
    assert ctx.records_read == table.num_rows + ctx.quarantined
    return table


def quarantine_reasons(ctx) -> list[str]:
    """The reasons of ``ctx``'s quarantine so far (and clears it)."""
    q = ctx.take_quarantine()
    return [] if q is None else q.column("reason").to_pylist()


def ssh_wire_fields(blob: bytes) -> list[bytes]:
    """The RFC 4253 string fields of an SSH public key blob (the tests' own
    parser, independent of the product's)."""
    out, pos = [], 0
    while pos < len(blob):
        n = int.from_bytes(blob[pos:pos + 4], "big")
        out.append(blob[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


# Test rows use documentation and private addresses (192.0.2.x, 10.x, 2001:db8::):
# special-purpose space, which the pipeline excludes by default. Tests that are
# not about that exclusion keep it explicitly, as a test-network run does.
def lab_limits(**kw):
    from pipelines.normalize import Limits
    return Limits(exclude_special_purpose=False, **kw)
