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
