"""Issue 13: every entry of a week folder is listed, only regular files inside
RAW are opened; a junk head never drops a file; an unknown file is one
damaged range of its size."""
from __future__ import annotations

import gzip
import hashlib
import os
import threading

import pytest

from pipelines.discover import RawFile, discover, escape_name, unescape_name
from pipelines.manifest import bytes_identity
from pipelines.transforms.read import file_report
from pipelines.verify import format_checks, verify_week
from scanners.base import ReadContext
from scanners.registry import read_file_chunks

WEEK = "2026-W48"
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "real")


def ndjson(n: int, first: int = 0) -> bytes:
    return b"".join(b'{"ip":"10.1.%d.%d","timestamp":"1795566999","port":80,"proto":"tcp","rec_type":"status",'
                    b'"data":{"status":"open","reason":"syn-ack","ttl":64}}\n' % (i >> 8 & 255, i & 255)
                    for i in range(first, first + n))


def read(raw: bytes):
    ctx = ReadContext(source="t")
    rows = sum(b.num_rows for b in read_file_chunks([raw[i:i + 4096] for i in range(0, len(raw), 4096)], ctx))
    rep = file_report(RawFile(path="t", name="t", size=len(raw)), ctx, len(raw), hashlib.sha256())
    return rows, ctx, rep


# -- sniffing -------------------------------------------------------------------------

PROGRESS = b"".join(b"rate:  0.10-kpps, %d.00%% done,   0:00:%02d remaining, found=%d       \r\n"
                    % (i * 10, 90 - i, i) for i in range(9))


def test_masscan_progress_lines_at_the_head_keep_every_record():
    head = b"Starting masscan 1.3.2 (http://bit.ly/14GZzcT) at 2026-11-25 00:38:32 GMT\n" + PROGRESS
    rows, ctx, rep = read(gzip.compress(head + ndjson(500)))
    assert rep["format"] == "masscan-ndjson" and rows == 500
    q = ctx.take_quarantine().to_pylist()
    assert [r["reason"] for r in q] == ["malformed_record"] * 10        # each junk line counted
    assert q[0]["source_offset"] == 0 and ctx.records_read == 510
    assert bytes_identity(rep["bytes_accounting"], rep["damage"])


def test_offsets_after_a_junk_head_are_the_file_s_own():
    junk = b"nohup: ignoring input\n"
    body = ndjson(3)
    ctx = ReadContext(source="t")
    offsets = [o for b in read_file_chunks([junk + body], ctx) for o in b.column("source_offset").to_pylist()]
    line = len(body) // 3
    assert offsets == [len(junk), len(junk) + line, len(junk) + 2 * line]


@pytest.mark.parametrize("fixture", ["masscan.list", "masscan.grepable", "masscan.xml", "masscan.json"])
def test_junk_before_other_masscan_formats(fixture):
    with open(os.path.join(FIXTURES, fixture), "rb") as f:
        good = f.read()
    clean_rows, clean_ctx, _ = read(good)
    rows, ctx, rep = read(PROGRESS + good)
    assert rows == clean_rows and ctx.quarantined == clean_ctx.quarantined + 9
    assert bytes_identity(rep["bytes_accounting"], rep["damage"])


def test_a_file_matching_no_format_is_one_damaged_range_of_its_size():
    data = b"just some notes\nnothing a scanner wrote\n" * 100
    rows, ctx, rep = read(gzip.compress(data))
    assert rows == 0 and rep["format"] == "unknown"
    assert [(d["kind"], d["offset"], d["length"]) for d in rep["damage"]] == [("unknown_format", 0, len(data))]
    assert bytes_identity(rep["bytes_accounting"], rep["damage"])


# -- discovery --------------------------------------------------------------------------

@pytest.fixture
def week(tmp_path):
    raw = tmp_path / "raw"
    d = raw / WEEK
    d.mkdir(parents=True)
    (d / "good.ndjson").write_bytes(ndjson(10))
    return raw, d


def by_name(files):
    return {f.name: f for f in files}


def test_fifo_and_dev_zero_link_are_listed_never_opened(week):
    raw, d = week
    os.mkfifo(d / "pipe.ndjson")
    os.symlink("/dev/zero", d / "zero.ndjson")
    files = by_name(discover(str(raw), WEEK))
    assert files["pipe.ndjson"].problem == "not_a_regular_file"
    assert files["zero.ndjson"].problem == "outside_raw"
    done = []
    t = threading.Thread(target=lambda: done.append(verify_week(str(raw), WEEK)), daemon=True)
    t.start()
    t.join(60)                                  # a FIFO opened for reading would block forever
    assert done, "verify hung on a FIFO or /dev/zero"
    checks = {c.name: c for c in done[0]}
    assert checks["good.ndjson"].records == 10
    assert checks["pipe.ndjson"].damage[0]["kind"] == "not_a_regular_file"
    assert "not_a_regular_file" in format_checks(done[0])


def test_links_loops_and_dangling(week, tmp_path):
    raw, d = week
    (tmp_path / "outside.ndjson").write_bytes(ndjson(5))
    os.symlink(tmp_path / "outside.ndjson", d / "out.ndjson")
    os.symlink(d / "good.ndjson", d / "inside.ndjson")
    os.symlink(d / "nothing", d / "dangling.ndjson")
    os.symlink(d / "loop.ndjson", d / "loop.ndjson")
    (d / "sub").mkdir()
    os.symlink(d, d / "sub" / "up")
    files = by_name(discover(str(raw), WEEK))
    assert files["out.ndjson"].problem == "outside_raw"
    assert files["inside.ndjson"].problem is None and files["inside.ndjson"].size == len(ndjson(10))
    assert files["dangling.ndjson"].problem == "dangling_link"
    assert files["loop.ndjson"].problem == "symlink_loop"
    assert files["sub/up"].problem == "symlink_loop"


def test_non_utf8_names_are_kept_reversibly(week):
    raw, d = week
    name = b"caf\xe9-\\x41.ndjson"
    with open(os.path.join(os.fsencode(d), name), "wb") as f:
        f.write(ndjson(3))
    files = by_name(discover(str(raw), WEEK))
    shown = escape_name(name)
    assert shown == "caf\\xe9-\\\\x41.ndjson" and unescape_name(shown) == name
    assert files[shown].problem is None
    checks = {c.name: c for c in verify_week(str(raw), WEEK)}
    assert checks[shown].records == 3 and shown.encode("utf-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_an_unreadable_folder_is_listed(week):
    raw, d = week
    (d / "locked").mkdir()
    os.chmod(d / "locked", 0)
    try:
        files = by_name(discover(str(raw), WEEK))
    finally:
        os.chmod(d / "locked", 0o755)
    assert files["locked"].problem == "unreadable_folder"


def test_reading_stops_at_the_size_seen_at_discovery(week):
    raw, d = week
    files = by_name(discover(str(raw), WEEK))
    with open(d / "good.ndjson", "ab") as f:      # the writer goes on after discovery
        f.write(ndjson(5, first=100))
    from pipelines.verify import check_file
    c = check_file(files["good.ndjson"])
    assert c.records == 10 and c.bytes_hold


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root to test a folder root could read")
def test_an_unreadable_folder_is_listed_with_root_dropped(tmp_path_factory):
    import subprocess
    import sys
    import tempfile
    base = tempfile.mkdtemp(dir="/tmp")
    os.chmod(base, 0o755)
    d = os.path.join(base, "raw", WEEK)
    os.makedirs(os.path.join(d, "locked"))
    for p in (os.path.join(base, "raw"), d):
        os.chmod(p, 0o755)
    with open(os.path.join(d, "good.ndjson"), "wb") as f:
        f.write(ndjson(2))
    os.chmod(os.path.join(d, "good.ndjson"), 0o644)
    os.chmod(os.path.join(d, "locked"), 0o700)        # root's, so nobody cannot list it
    code = ("import os\nfrom pipelines.discover import discover\n"   # imported first: the stdlib may be root's
            "os.setgid(65534); os.setuid(65534)\n"
            f"print(sorted((f.name, f.problem) for f in discover({os.path.join(base, 'raw')!r}, {WEEK!r})))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=root), cwd="/")
    assert p.returncode == 0, p.stderr[-1500:]
    assert p.stdout.strip().splitlines()[-1] == "[('good.ndjson', None), ('locked', 'unreadable_folder')]"


def test_verify_prints_ranges_salvage_and_bytes(week):
    raw, d = week
    a, b = gzip.compress(ndjson(300), mtime=0), gzip.compress(ndjson(200, first=300), mtime=0)
    bad = bytearray(a)
    bad[10] = 0x07                              # reserved deflate block type: the member is lost
    (d / "two.ndjson.gz").write_bytes(bytes(bad) + b)
    checks = verify_week(str(raw), WEEK)
    two = {c.name: c for c in checks}["two.ndjson.gz"]
    assert two.records == 200 and two.bytes_hold and not two.ok
    text = format_checks(checks)
    assert f"damage: compression_corrupt at raw byte 10, {len(a) - 10:,} bytes" in text
    assert f"salvage: resumed at raw byte {len(a):,} (gzip_member)" in text and "200 records recovered" in text


def test_masscan_binary_stops_at_damage_and_counts_the_rest(tmp_path):
    with open(os.path.join(FIXTURES, "masscan.bin"), "rb") as f:
        binary = f.read()
    clean_rows, _, _ = read(binary)
    cut = len(binary) // 2
    bad = bytearray(gzip.compress(binary[cut:], mtime=0))
    bad[10] = 0x07
    rows, ctx, rep = read(gzip.compress(binary[:cut], mtime=0) + bytes(bad) + gzip.compress(b"\x00" * 64))
    assert 0 < rows < clean_rows
    assert "record_cut_by_damage" in {d["kind"] for d in rep["damage"]}
    assert rep["salvage"][0]["records"] is not None
    assert bytes_identity(rep["bytes_accounting"], rep["damage"])


def _junk_lines(total: int) -> bytes:
    out, i = [], 0
    while sum(map(len, out)) < total:
        out.append(b"shell banner line %05d: nothing a scanner wrote\n" % i)
        i += 1
    return b"".join(out)


@pytest.mark.parametrize("junk", [
    _junk_lines(72_000),                                              # ~1400 lines: past the 64 KiB window
    b"x\n" * 1900,                                                    # past the 512-line limit
    b"rate:  0.10-kpps, 10.00% done, found=0       \r" * 1700 + b"\n",  # 74 KB of \r progress, no newline
])
@pytest.mark.parametrize("compress", [False, True])
def test_a_long_junk_head_never_drops_the_records_after_it(junk, compress):
    body = ndjson(3000)
    raw = junk + body
    rows, ctx, rep = read(gzip.compress(raw) if compress else raw)
    assert rep["format"] == "masscan-ndjson" and rows == 3000
    ips = [i for b in read_file_chunks([raw], ReadContext(source="t")) for i in b.column("ip").to_pylist()]
    assert ips[0] == "10.1.0.0" and ips[-1] == "10.1.11.183" and len(set(ips)) == 3000
    assert rep["damage"] and all(d["kind"] == "unknown_format" for d in rep["damage"])
    assert sum(d["length"] for d in rep["damage"]) + ctx.facts["record_bytes"] == len(raw)
    assert bytes_identity(rep["bytes_accounting"], rep["damage"])


def test_offsets_after_a_long_junk_head_are_the_file_s_own():
    junk = _junk_lines(200_000)
    body = ndjson(3)
    ctx = ReadContext(source="t")
    chunks = [(junk + body)[i:i + 65536] for i in range(0, len(junk + body), 65536)]
    offsets = [o for b in read_file_chunks(chunks, ctx) for o in b.column("source_offset").to_pylist()]
    line = len(body) // 3
    assert offsets == [len(junk), len(junk) + line, len(junk) + 2 * line]


def test_a_long_file_matching_no_format_is_still_one_damaged_range_of_its_size():
    raw = _junk_lines(300_000)
    rows, ctx, rep = read(raw)
    assert rows == 0 and rep["format"] == "unknown"
    assert [(d["kind"], d["length"]) for d in rep["damage"]] == [("unknown_format", len(raw))]
    assert bytes_identity(rep["bytes_accounting"], rep["damage"])
