"""OUT's recorded opt-out list (pipelines/optout_state.py), the exclusion of
opted-out records before validation (pipelines/normalize.py) and the
manifest arithmetic of applying a list to a published week
(pipelines/optout_reapply.py)."""
import json
import os

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from pipelines.normalize import normalize_batch
from pipelines.optout import OptOutList, merge_intervals
from pipelines.optout_reapply import adjust_manifest
from pipelines.optout_state import (Change, OptOutStateError, apply, canonical_text, intervals_digest, parse_bytes,
                                    recorded, resolve, subtract)
from pipelines.schema import RAW_SCHEMA
from pipelines.state import optout_digest

_interval = st.tuples(st.integers(0, 2000), st.integers(0, 60)).map(lambda p: (p[0], p[0] + p[1]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_interval, max_size=8), st.lists(_interval, max_size=8))
def test_subtract_removes_exactly_the_other_set(a, b):
    a, b = tuple(merge_intervals(a)), tuple(merge_intervals(b))
    got = {x for lo, hi in subtract(a, b) for x in range(lo, hi + 1)}
    assert got == {x for lo, hi in a for x in range(lo, hi + 1)} - {x for lo, hi in b for x in range(lo, hi + 1)}


def test_canonical_text_round_trips_and_has_the_digest_change_detection_computes(tmp_path):
    v4, v6 = parse_bytes(b"10.0.0.0/8 1.2.3.4 1.2.3.5 8.8.8.0-8.8.9.3 # x\n2001:db8::/32\n::1\n", "t")
    text = canonical_text(v4, v6)
    assert b"10.0.0.0/8\n" in text and b"1.2.3.4/31\n" in text and b"8.8.8.0-8.8.9.3\n" in text
    assert b"2001:db8::/32\n" in text and b"\n::1\n" in text
    assert parse_bytes(text, "c") == (v4, v6)
    path = tmp_path / "c.txt"
    path.write_bytes(text)
    assert optout_digest(str(path)) == intervals_digest(v4, v6)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_the_first_list_is_recorded_and_later_commands_apply_it(tmp_path):
    out = str(tmp_path / "out")
    assert resolve(out).change is Change.NONE
    a = _write(tmp_path, "a.txt", "192.0.2.0/24\n")
    path, res = apply(out, a)
    assert res.change is Change.RECORDED and path == os.path.join(out, "state", "optout.txt")
    os.remove(a)
    res = resolve(out)                       # no --exclude: the recorded list
    assert res.change is Change.KEPT and res.v4 == ((0xC0000200, 0xC00002FF),)
    b = _write(tmp_path, "b.txt", "192.0.2.7\n198.51.100.1\n")
    path, res = apply(out, b)                # grows by the one new address only
    assert res.change is Change.GROWN and res.added == 1 and res.removed == 0
    assert OptOutList(path).contains(pa.array([b"\0" * 10 + b"\xff\xff" + bytes([198, 51, 100, 1])],
                                              pa.binary(16)), [4]).to_pylist() == [True]
    history = json.loads((tmp_path / "out" / "state" / "optout.json").read_text())["history"]
    assert [h["change"] for h in history] == ["recorded", "grown"]


def test_shrinking_needs_a_flag(tmp_path):
    out = str(tmp_path / "out")
    apply(out, _write(tmp_path, "a.txt", "192.0.2.0/24\n"))
    small = _write(tmp_path, "s.txt", "192.0.2.1\n")
    assert resolve(out, small).change is Change.KEPT         # a subset adds nothing, removes nothing
    res = resolve(out, drop=small)
    assert res.change is Change.DROPPED and res.removed == 1
    res = resolve(out, replace=small)
    assert res.change is Change.REPLACED and res.removed == 255
    with pytest.raises(OptOutStateError):
        resolve(out, replace=small, drop=small)


def test_a_damaged_or_edited_record_is_refused_and_replace_recovers(tmp_path):
    out = tmp_path / "out"
    apply(str(out), _write(tmp_path, "a.txt", "192.0.2.0/24\n"))
    listed = out / "state" / "optout.txt"
    listed.write_text("192.0.2.0/25\n")
    with pytest.raises(OptOutStateError, match="changed outside portcensus"):
        resolve(str(out))
    with pytest.raises(OptOutStateError, match="changed outside portcensus"):
        resolve(str(out), _write(tmp_path, "b.txt", "192.0.2.0/24\n"))
    res = resolve(str(out), replace=_write(tmp_path, "r.txt", "192.0.2.0/24\n"))
    assert res.change is Change.REPLACED
    listed.unlink()
    with pytest.raises(OptOutStateError, match="is missing"):
        recorded(str(out))


def test_an_out_published_with_a_list_but_without_a_record_is_refused(tmp_path):
    out = tmp_path / "out"
    week = out / "week=2013-W37"
    week.mkdir(parents=True)
    (week / "manifest.json").write_text(json.dumps({"run": {"optout_entries_sha256": "ab" * 32}}))
    with pytest.raises(OptOutStateError, match="give it once with --exclude"):
        resolve(str(out))
    assert resolve(str(out), _write(tmp_path, "a.txt", "192.0.2.1\n")).change is Change.RECORDED


def _raw(rows):
    cols = {f.name: [r.get(f.name) for r in rows] for f in RAW_SCHEMA}
    return pa.RecordBatch.from_pydict(cols, schema=RAW_SCHEMA)


def test_opted_out_records_are_excluded_before_validation():
    t = 1378782004_000000
    rows = [dict(ip="81.2.69.160", port=22, transport="tcp", status="open", timestamp=t, source_file="f"),
            dict(ip="81.2.69.160", port=70000, transport="tcp", status="open", timestamp=t, source_file="f"),
            dict(ip="81.2.69.160", port=22, transport="tcp", status="ajar", timestamp=t, source_file="f"),
            dict(ip="81.2.69.160", port=22, transport="tcp", status="open", timestamp=1, source_file="f"),
            dict(ip="81.2.69.161", port=70000, transport="tcp", status="open", timestamp=t, source_file="f"),
            dict(ip="not an ip", port=22, transport="tcp", status="open", timestamp=t, source_file="f")]
    optout = OptOutList.from_bytes(b"81.2.69.160\n")
    res = normalize_batch(_raw(rows), excluded=optout.contains)
    assert res.excluded == {"f": 4}
    assert res.work.num_rows == 0
    assert res.quarantine.num_rows == 2
    assert not any("81.2.69.160" in e for e in res.quarantine.column("excerpt").to_pylist())


def test_adjusting_a_manifest_keeps_every_identity():
    def entry(name, read, acc, q, ex, mer):
        return {"file": name, "read": read, "accepted": acc, "quarantined": q, "excluded": ex, "merged": mer,
                "quarantine_reasons": {"invalid_port": q} if q else {}, "excluded_reasons": {}}
    m = {"files": [entry("a", 10, 5, 2, 0, 3), entry("b", 6, 4, 0, 0, 2)],
         "observations": {"rows": 9, "by_port": {"22": 9}}}
    # two clean rows decided by file a, with 3 and 2 records: 3 merged records
    # to move, file a has only 3 ... and one quarantine row of file a
    clean = {"rows": 2, "records": 5, "by_file": {"a": 2}, "merged_by_file": {"a": 3}, "by_port": {"22": 2}}
    quar = {"rows": 1, "by_file": {"a": 1}, "reasons": {"a": {"invalid_port": 1}}}
    out = adjust_manifest(m, clean, quar)
    t = out["totals"]
    assert t == {"read": 16, "accepted": 7, "quarantined": 1, "excluded": 6, "merged": 2, "identity_holds": True}
    assert all(f["identity_holds"] for f in out["files"])
    assert out["excluded_reasons"] == {"optout": 6} and out["quarantine_reasons"] == {"invalid_port": 1}
    assert out["observations"] == {"rows": 7, "by_port": {"22": 7}}
    # more merged records to move than the deciding file has: the rest from another file
    m2 = {"files": [entry("a", 4, 2, 0, 0, 2), entry("b", 6, 1, 0, 0, 5)], "observations": {}}
    out2 = adjust_manifest(m2, {"rows": 1, "records": 5, "by_file": {"a": 1}, "merged_by_file": {"a": 4},
                                "by_port": {}}, {"rows": 0, "by_file": {}, "reasons": {}})
    assert [f["merged"] for f in out2["files"]] == [0, 3] and out2["totals"]["identity_holds"]
