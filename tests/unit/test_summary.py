"""The run summary's SSH strings (pipelines/summary.py: first_values) are
what pyarrow's map_lookup(..., "first") gives, on any maps: duplicate keys,
null maps and values, empty maps, sliced and chunked columns."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings, strategies as st

from pipelines.summary import first_values

_KEYS = st.sampled_from(["ssh", "http", "tls", ""])
_MAP = st.one_of(st.none(), st.lists(st.tuples(_KEYS, st.one_of(st.none(), st.text(max_size=4))), max_size=4))
MAPS = pa.map_(pa.string(), pa.string())


def _expected(col: pa.ChunkedArray, key: str) -> list:
    got = pc.map_lookup(col, key, "first")
    return [v for chunk in got.chunks for v, ok in zip(chunk.to_pylist(), pc.is_valid(chunk).to_pylist()) if ok]


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(_MAP, max_size=30), cut=st.integers(0, 30), skip=st.integers(0, 5), key=_KEYS)
def test_first_values_is_map_lookup_first(rows, cut, skip, key):
    arr = pa.array(rows, MAPS)
    cut = min(cut, len(arr))
    # two chunks, the second a slice that starts inside the child arrays
    col = pa.chunked_array([arr.slice(0, cut), arr.slice(min(cut + skip, len(arr)))], MAPS)
    got = first_values(col, key)
    assert got.filter(pc.is_valid(got)).to_pylist() == _expected(col, key)
    # maps that have the key but a null value are kept (as map_lookup keeps them)
    assert len(got) == sum(1 for m in col.to_pylist() if m and any(k == key for k, _ in m))


def test_a_map_with_the_key_twice_counts_once_with_its_first_value():
    col = pa.chunked_array([pa.array([[("ssh", "a"), ("ssh", "b")], [("x", "c")], None, [("ssh", "d")]], MAPS)])
    assert first_values(col, "ssh").to_pylist() == ["a", "d"]
    assert first_values(pa.chunked_array([], MAPS), "ssh").to_pylist() == []


def test_a_null_map_whose_entries_are_not_empty_gives_nothing():
    # Arrow allows a null map to span child entries; they are not its values
    arr = pa.MapArray.from_arrays(pa.array([0, 1, 2, 3], pa.int32()), pa.array(["ssh"] * 3),
                                  pa.array(["a", "GARBAGE", "c"]), mask=pa.array([False, True, False]))
    col = pa.chunked_array([arr])
    assert first_values(col, "ssh").to_pylist() == _expected(col, "ssh") == ["a", "c"]
