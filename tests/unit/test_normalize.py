import numpy as np
import pyarrow as pa

from pipelines.normalize import Limits, normalize_batch
from pipelines.schema import QuarantineReason as R
from tests.helpers import raw_batch, lab_limits

T = 1_379_000_000  # 2013-09-12


def test_each_check_gives_its_reason_and_good_rows_survive():
    rows = [
        dict(ip="1.2.3.4", port=22, transport="tcp", status="open", timestamp=T),
        dict(ip="1.2.3.999", port=22, transport="tcp", status="open", timestamp=T),
        dict(ip="1.2.3.5", port=70000, transport="tcp", status="open", timestamp=T),
        dict(ip="1.2.3.6", port=None, transport="tcp", status="open", timestamp=T),
        dict(ip="1.2.3.7", port=22, transport="xtp", status="open", timestamp=T),
        dict(ip="1.2.3.8", port=22, transport="TCP", status="open", timestamp=5),
        dict(ip="1.2.3.9", port=22, transport="tcp", status="weird", timestamp=T),
        dict(ip="1.2.3.10", port=22, transport="tcp", service="ssh", banner=b"x" * 70_000, timestamp=T),
        dict(ip="1.2.3.11", port=22, transport="tcp", timestamp=T),
        dict(ip="2001:db8::1", port=443, transport="TCP", service="ssl", banner=b"", timestamp=T),
    ]
    res = normalize_batch(raw_batch(rows), lab_limits())
    q = res.quarantine.to_pydict()
    assert q["reason"] == [R.INVALID_IP, R.INVALID_PORT, R.MISSING_FIELD, R.INVALID_TRANSPORT,
                           R.INVALID_TIMESTAMP, R.MALFORMED_RECORD, R.OVERSIZED_RECORD, R.MISSING_FIELD]
    assert q["source_offset"] == [100, 200, 300, 400, 500, 600, 700, 800]
    assert all(len(e) <= 160 for e in q["excerpt"])
    w = res.work.to_pydict()
    assert w["ip"] == ["1.2.3.4", "2001:db8::1"]
    assert w["transport"] == ["tcp", "tcp"]          # lower-cased
    assert w["ip_version"] == [4, 6]
    assert res.work.num_rows + res.quarantine.num_rows == len(rows)


def test_excluded_rows_are_counted_not_quarantined():
    rows = [dict(ip=f"10.0.0.{i}", port=80, transport="tcp", status="open", timestamp=T,
                 source_file="a" if i < 5 else "b") for i in range(10)]

    def odd(ip16, version):
        return np.frombuffer(ip16.buffers()[1], dtype=np.uint8).reshape(-1, 16)[:, 15] % 2 == 1

    res = normalize_batch(raw_batch(rows), lab_limits(), excluded=odd)
    assert res.quarantine is None
    assert res.excluded == {"a": 2, "b": 3}
    assert res.work.column("ip").to_pylist() == [f"10.0.0.{i}" for i in range(0, 10, 2)]


def test_bucket_key_is_per_network():
    def key(ip, port=53, transport="udp", **kw):
        r = normalize_batch(raw_batch([dict(ip=ip, port=port, transport=transport, status="open",
                                            timestamp=T, **kw)]), lab_limits())
        return r.work.column("bucket_key")[0].as_py()

    # all ports of a host and all hosts of a /24 (IPv4) or /48 (IPv6) share a bucket key ...
    assert key("9.9.9.9") == key("9.9.9.200", port=22, transport="tcp", source_file="other")
    assert key("2001:db8:1::1") == key("2001:db8:1:ffff::2", port=443)
    # ... and the neighbouring networks do not
    assert len({key("9.9.9.9"), key("9.9.8.9"), key("2001:db8:2::1"), key("2001:db8:1::1")}) == 4


def test_bucket_elements_carry_only_their_own_rows_through_the_shuffle():
    """Pickled pyarrow slices ship their parent's whole buffers; the bucket
    elements that cross GroupByKey must not (this once multiplied a week's
    memory by the number of buckets)."""
    import pickle

    from pipelines.transforms.clean import WORK, _NormalizeFn
    rows = [dict(ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", port=80, transport="tcp",
                 status="open", timestamp=T, service="http.server", banner=b"nginx/1.2.%d" % (i % 7))
            for i in range(40_000)]
    batch = raw_batch(rows)
    fn = _NormalizeFn(buckets=16, limits=lab_limits(), optout_path=None, shuffle_dir=None)  # --shuffle beam
    elements = [payload for kind, payload in fn.process(batch) if kind == WORK]
    assert len(elements) == 16 and sum(b.num_rows for _, b in elements) == len(rows)
    shipped = sum(len(pickle.dumps(b)) for _, b in elements)
    whole = len(pickle.dumps(normalize_batch(batch, lab_limits()).work))
    assert shipped < 1.5 * whole, (shipped, whole)


def test_shuffle_form_round_trips_everything_the_merge_reads():
    from pipelines.normalize import WORK_SCHEMA, pack, unpack_table
    rows = [dict(ip="2001:db8::7", port=22, transport="tcp", status="open", reason="success", timestamp=T,
                 key_algorithm="ssh-ed25519", key_fingerprint_sha256="ab" * 32, key_bits=256),
            dict(ip="192.0.2.1", port=80, transport="tcp", service="title", banner=b"caf\xc3\xa9", timestamp=T)]
    work = normalize_batch(raw_batch(rows), lab_limits()).work
    back = unpack_table([pack(work)])
    assert back.schema == WORK_SCHEMA
    for name in WORK_SCHEMA.names:
        if name in ("ip", "bucket_key"):
            assert back.column(name).null_count == len(rows)       # derived again after the shuffle
        else:
            assert back.column(name).to_pylist() == work.column(name).to_pylist(), name
    masscan_only = normalize_batch(raw_batch(rows[1:]), lab_limits()).work
    assert "key_fingerprint_sha256" not in pack(masscan_only).schema.names   # all-null: not shipped


def test_unpack_table_decodes_parts_of_different_shapes_like_unpack_one_by_one():
    # A bucket's parts come from many spilled batches: some carry host-key
    # columns, some do not (all-null there, so not shipped), and each has its
    # own dictionaries. Decoded together they must be the same rows as
    # decoded one by one (which the round trip above checks against the work).
    from pipelines.normalize import WORK_SCHEMA, pack, unpack_table
    keyed = [dict(ip="2001:db8::7", port=22, transport="tcp", status="open", reason="success", timestamp=T,
                  key_algorithm="ssh-ed25519", key_fingerprint_sha256="ab" * 32, key_bits=256)]
    plain = [dict(ip="192.0.2.1", port=80, transport="tcp", service="title", banner=b"caf\xc3\xa9", timestamp=T),
             dict(ip="192.0.2.2", port=21, transport="udp", status="open", reason="success", timestamp=T + 1)]
    other = [dict(r, ip="198.51.100.9", transport="sctp", source_file="b.json") for r in plain]
    parts = [pack(normalize_batch(raw_batch(r), lab_limits()).work, keep=("bucket_key",))
             for r in (plain, keyed, other, plain[1:], plain[:1])]
    # Both cases under test: parts of different shapes, and parts of one
    # shape (decoded together) whose dictionaries differ.
    shapes = [p.schema for p in parts]
    assert len(set(shapes)) > 1 and len(set(shapes)) < len(parts)
    same = [p for p in parts if p.schema == parts[0].schema]
    assert len(same) > 1 and same[0].column("transport").dictionary != same[1].column("transport").dictionary
    got = unpack_table(parts)
    want = pa.concat_tables([unpack_table([p]) for p in parts])
    assert got.schema == WORK_SCHEMA
    def rows(t):
        return sorted(map(repr, t.to_pylist()))
    assert rows(got) == rows(want)
    assert got.num_rows == sum(p.num_rows for p in parts) == want.num_rows > len(parts)
    assert unpack_table([]).num_rows == 0


# -- the week window (issue 15) -------------------------------------------------

def test_week_window_is_the_iso_week_with_slack_either_side():
    import datetime as dt
    from pipelines.normalize import week_window
    us = lambda *a: int(dt.datetime(*a, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000  # noqa: E731
    assert week_window("2013-W37", 0) == (us(2013, 9, 9), us(2013, 9, 16))
    assert week_window("2013-W37") == (us(2013, 9, 8), us(2013, 9, 17))
    # ISO week 1 of 2021 starts on Monday 4 January; 2020-W53 exists.
    assert week_window("2021-W01", 0)[0] == us(2021, 1, 4)
    assert week_window("2020-W53", 0) == (us(2020, 12, 28), us(2021, 1, 4))


def test_records_outside_the_window_or_without_time_are_quarantined():
    from pipelines.normalize import week_window
    lo, hi = week_window("2013-W37", 24)
    s = 1_000_000
    rows = [dict(ip="1.2.3.4", port=22, transport="tcp", status="open", timestamp=t / s)
            for t in (lo, hi - 1, lo - 1, hi, 1_591_000_000 * s)]
    rows.append(dict(ip="1.2.3.5", port=22, transport="tcp", status="open", timestamp=None))
    rows.append(dict(ip="1.2.3.6", port=22, transport="tcp", status="open", timestamp=5))   # absurd first
    res = normalize_batch(raw_batch(rows), Limits(window=(lo, hi)))
    assert res.work.column("source_offset").to_pylist() == [0, 100]
    q = res.quarantine.to_pydict()
    assert q["reason"] == [R.OUTSIDE_WEEK, R.OUTSIDE_WEEK, R.OUTSIDE_WEEK, R.MISSING_TIMESTAMP,
                           R.INVALID_TIMESTAMP]
    assert "window" in q["detail"][0] and "scan_start_us" in q["detail"][3]
    # Without a window only the time itself is checked (a null one never passes).
    res = normalize_batch(raw_batch(rows), Limits())
    assert res.quarantine.to_pydict()["reason"] == [R.MISSING_TIMESTAMP, R.INVALID_TIMESTAMP]


def test_an_opted_out_host_whose_address_field_does_not_parse_is_excluded_not_quarantined(tmp_path):
    from pipelines.optout import load_optout
    listed = tmp_path / "optout.txt"
    listed.write_text("10.20.16.40\n2001:db8::40\n")
    optout = load_optout(str(listed))
    spellings = [" 10.20.16.40", "10.20.16.40:22", "10.20.16.40/32", "[2001:db8::40]"]
    rows = [dict(ip=s, port=22, transport="tcp", status="open", timestamp=T, source_file="a") for s in spellings]
    rows.append(dict(ip="10.20.16.41:22", port=22, transport="tcp", status="open", timestamp=T, source_file="a"))
    res = normalize_batch(raw_batch(rows), lab_limits(), excluded=optout.contains)
    assert res.excluded == {"a": len(spellings)}
    q = res.quarantine.to_pydict()
    assert q["reason"] == [R.INVALID_IP]              # only the host that is not listed
    assert not any("10.20.16.40" in e or "2001:db8::40" in e for e in q["excerpt"])
