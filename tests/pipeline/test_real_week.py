"""The real fixtures through the real Beam pipeline: ground truth from
tests/fixtures/real/README.md (13 open TCP ports + 198.18.0.3:11211/udp)."""
import gzip
import json
import os

import pyarrow.compute as pc

from tests.pipeline.conftest import REAL, clean_rows, copy_real, run_week

TRUTH = {
    ("198.18.0.1", 22, "tcp"), ("198.18.0.1", 80, "tcp"), ("198.18.0.1", 443, "tcp"),
    ("198.18.0.2", 21, "tcp"), ("198.18.0.2", 22, "tcp"),
    ("198.18.0.3", 80, "tcp"), ("198.18.0.3", 443, "tcp"), ("198.18.0.3", 11211, "tcp"),
    ("198.18.0.4", 21, "tcp"), ("198.18.0.5", 25, "tcp"), ("198.18.0.6", 80, "tcp"),
    ("198.18.0.7", 2222, "tcp"), ("198.18.0.7", 11211, "tcp"),
    ("198.18.0.3", 11211, "udp"),
}


def observed(t):
    return {(r["ip"], r["port"], r["transport"]) for r in t.to_pylist() if r["status"] == "open"}


def test_two_shards_plus_udp_run_give_the_ground_truth(week_dir, tmp_path):
    raw, d = week_dir
    copy_real(d, "masscan_shard1of2.json", "masscan_shard2of2.json", "masscan_udp11211.json")
    m = run_week(raw, tmp_path / "out")
    t = clean_rows(tmp_path / "out")
    assert observed(t) == TRUTH
    assert m["totals"]["identity_holds"]
    assert m["totals"]["accepted"] == len(TRUTH) == t.num_rows
    assert m["totals"]["quarantined"] == 0 and m["files_damaged"] == 0
    row = {(r["ip"], r["port"]): r for r in t.to_pylist()}[("198.18.0.1", 80)]
    assert dict(row["banners"])["title"] == 'Fixture A &amp; "quoted" café'
    assert dict(row["banners"])["http.server"] == "nginx/1.22.1"


def test_every_masscan_format_of_one_scan_gives_the_same_rows(tmp_path):
    """masscan.bin and its five --readscan conversions are one scan: each,
    read alone, must give the same observations and banners."""
    results = {}
    for name in ("masscan.bin", "masscan_readscan.json", "masscan_readscan.ndjson",
                 "masscan_readscan.xml", "masscan_readscan.list", "masscan_readscan.grepable"):
        d = tmp_path / name / "raw" / "2026-W48"
        d.mkdir(parents=True)
        copy_real(d, name)
        m = run_week(d.parent, tmp_path / name / "out")
        assert m["totals"]["quarantined"] == 0, name
        t = clean_rows(tmp_path / name / "out")
        results[name] = {(r["ip"], r["port"], r["transport"]): dict(r["banners"] or {})
                         for r in t.to_pylist()}
    reference = results["masscan.bin"]
    assert {k for k in reference} >= TRUTH - {("198.18.0.3", 11211, "udp")}
    for name, got in results.items():
        assert got.keys() == reference.keys(), name
        for k in reference:
            if name.endswith("grepable") and k[:2] == ("198.18.0.3", 11211):
                # -oG banner lines carry no protocol: where one ip:port is open on both tcp
                # and udp, the two memcached banners cannot be told apart (format limit).
                continue
            assert got[k] == reference[k], (name, k)


def test_gzip_truncated_keeps_every_complete_record(week_dir, tmp_path):
    raw, d = week_dir
    data = open(os.path.join(REAL, "masscan.ndjson"), "rb").read()
    lines = data.splitlines(keepends=True)
    blob = gzip.compress(data, mtime=0)
    (d / "cut.ndjson.gz").write_bytes(blob[: len(blob) * 2 // 3])
    m = run_week(raw, tmp_path / "out")
    f = m["files"][0]
    assert f["damaged"] and f["damage"][0]["kind"] == "compression_truncated"
    assert m["totals"]["identity_holds"]
    # every line that decompressed whole is accounted as accepted or merged
    d_obj = __import__("zlib").decompressobj(wbits=31)
    got = d_obj.decompress(blob[: len(blob) * 2 // 3])
    complete = got.count(b"\n")
    assert f["accepted"] + f["merged"] == complete
    assert f["quarantined"] == (0 if got.endswith(b"\n") else 1)
    assert complete < len(lines)


def test_hostile_files_are_quarantined_and_good_records_survive(week_dir, tmp_path):
    raw, d = week_dir
    good = open(os.path.join(REAL, "masscan.ndjson"), "rb").read().splitlines(keepends=True)
    bad_ip = json.dumps({"ip": "999.1.1.1", "timestamp": "1795566999", "port": 22, "proto": "tcp",
                         "rec_type": "status", "data": {"status": "open", "reason": "syn-ack", "ttl": 64}})
    huge = json.dumps({"ip": "198.18.0.9", "timestamp": "1795566999", "port": 22, "proto": "tcp",
                       "rec_type": "banner", "data": {"service_name": "ssh", "banner": "A" * (1 << 20)}})
    latin = json.dumps({"ip": "198.18.0.10", "timestamp": "1795566999", "port": 21, "proto": "tcp",
                        "rec_type": "banner", "data": {"service_name": "ftp", "banner": "220 caf\u00e9 \u00ff\u00fe"}})
    mixed = good[:10] + [bad_ip.encode() + b"\n", b"\x00\xff garbage {{{\n", huge.encode() + b"\n",
                         latin.encode() + b"\n"] + good[10:] + [b'{"ip":"198.18.0.1","timest']
    (d / "mixed.ndjson").write_bytes(b"".join(mixed))
    (d / "noise.bin").write_bytes(os.urandom(4096))
    m = run_week(raw, tmp_path / "out")
    assert m["totals"]["identity_holds"]
    files = {f["file"]: f for f in m["files"]}
    mf = files["mixed.ndjson"]
    assert mf["read"] == len(mixed)
    assert mf["quarantine_reasons"] == {"invalid_ip": 1, "malformed_record": 1,
                                        "oversized_record": 1, "truncated_record": 1}
    assert files["noise.bin"]["read"] == 0 and files["noise.bin"]["damaged"]
    t = clean_rows(tmp_path / "out")
    keys = observed(t)
    # all 37 good records' observations survived, plus the non-UTF-8 FTP banner host
    assert keys >= TRUTH | {("198.18.0.10", 21, "tcp")}
    ftp = [r for r in t.to_pylist() if r["ip"] == "198.18.0.10"][0]
    assert ftp["banner_fallback"] == ["ftp"] and dict(ftp["banners"])["ftp"] == "220 caf\\xe9 \\xff\\xfe"
    assert pc.sum(pc.equal(t.column("ip"), "198.18.0.9")).as_py() in (None, 0)
