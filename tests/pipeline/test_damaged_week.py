"""Issue 13 through the real Beam pipeline: a week of damaged and hostile
files beside good ones keeps every record they still hold, lists every
entry, and its manifest accounts for every byte."""
import gzip
import os
import threading

from pipelines.manifest import bytes_identity
from tests.pipeline.conftest import REAL, run_week


def test_a_damaged_week_is_read_whole_and_every_byte_accounted(week_dir, tmp_path):
    raw, d = week_dir
    good = open(os.path.join(REAL, "masscan.ndjson"), "rb").read()
    lines = good.splitlines(keepends=True)
    half = len(lines) // 2
    m1, m2 = gzip.compress(b"".join(lines[:half]), mtime=0), gzip.compress(b"".join(lines[half:]), mtime=0)
    bad = bytearray(m1)
    bad[10] = 0x07                                   # first member's first block: reserved type
    (d / "members.ndjson.gz").write_bytes(bytes(bad) + m2)
    progress = b"rate:  0.00-kpps, 0.00% done, waiting 10-secs, found=0       \r\n" * 9
    (d / "junkhead.ndjson").write_bytes(progress + good)
    os.mkfifo(d / "fifo.ndjson")
    os.symlink("/dev/zero", d / "zero.ndjson")
    with open(os.path.join(os.fsencode(d), b"caf\xe9.ndjson"), "wb") as f:
        f.write(good)
    done = []
    t = threading.Thread(target=lambda: done.append(run_week(raw, tmp_path / "out")), daemon=True)
    t.start()
    t.join(600)
    assert done, "the run hung"
    m = done[0]
    files = {f["file"]: f for f in m["files"]}
    assert set(files) == {"members.ndjson.gz", "junkhead.ndjson", "fifo.ndjson", "zero.ndjson", "caf\\xe9.ndjson"}
    assert m["totals"]["identity_holds"]
    for f in files.values():
        assert f["bytes_identity_holds"] and bytes_identity(f["bytes_accounting"], f["damage"]), f["file"]
    n = sum(1 for ln in lines if ln.strip())
    assert files["junkhead.ndjson"]["read"] == n + 9 and files["junkhead.ndjson"]["quarantine_reasons"] == {
        "malformed_record": 9}
    assert files["caf\\xe9.ndjson"]["read"] == n
    members = files["members.ndjson.gz"]
    assert members["read"] == sum(1 for ln in lines[half:] if ln.strip())
    assert [s["method"] for s in members["salvage"]] == ["gzip_member"]
    assert members["damage"][0]["kind"] == "compression_corrupt" and members["damage"][0]["offset"] == 10
    assert files["fifo.ndjson"]["damage"][0]["kind"] == "not_a_regular_file"
    assert files["zero.ndjson"]["damage"][0]["kind"] == "outside_raw"
