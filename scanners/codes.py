"""Integer codes for Arrow columns: what the gate (scanners/protocols/gate.py)
and the aggregates (pipelines/aggregate.py) count and look up by, so that
per-row work is integer work in numpy, never a string per row."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def row_indices(indices: pa.Array) -> np.ndarray:
    """Dictionary indices as int64 numpy, -1 where null. Through int64 first:
    unsigned indices (a Polars categorical's uint32) cannot hold the -1."""
    idx = indices.cast(pa.int64())
    return (idx if idx.null_count == 0 else pc.fill_null(idx, -1)).to_numpy()


def factorize(keys: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys, per key its index among them) for int keys in [0,
    space). A dense bitmap when the space is small (the usual case: a bucket
    has few ports, products and values; keys then come out ascending), else
    Arrow's hash (keys in order of first appearance; ASN x organisation pairs
    span millions of keys: 89k of them took ~6 ms to sort, a hash pass less).
    Callers must not rely on the order: look pairs up by index, sort at the end."""
    if space <= 4 * len(keys) + 65536:
        seen = np.zeros(space, bool)
        seen[keys] = True
        return np.flatnonzero(seen), (np.cumsum(seen) - 1)[keys]
    enc = pc.dictionary_encode(pa.array(keys, pa.int64()))
    return enc.dictionary.to_numpy(), enc.indices.to_numpy().astype(np.int64)
