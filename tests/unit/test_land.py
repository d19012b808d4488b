"""pipelines/land.py and the plan/land CLI: finished files move into RAW/WEEK
with a truthful sidecar; unfinished, foreign or clashing files are refused and
nothing moves."""
from __future__ import annotations

import argparse
import errno
import gzip
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipelines import cli_scan, land as land_mod
from pipelines.discover import discover
from pipelines.land import (AlreadyLanded, LandError, NotScannerOutput, StillWriting, examine,
                            land, writers_of)
from pipelines.transforms.read import _sidecar

REAL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "real")
WEEK = "2026-W48"


def _real(name: str) -> bytes:
    with open(os.path.join(REAL, name), "rb") as fh:
        return fh.read()


@pytest.fixture
def spool(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    return d


def _put(folder, name: str, data: bytes) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def test_lands_gzip_ndjson_with_sidecar_the_pipeline_reads(tmp_path, spool):
    data = gzip.compress(_real("masscan.ndjson"))
    src = _put(spool, "masscan-tcp-shard01of02.ndjson.gz", data)
    raw = str(tmp_path / "raw")
    (done,) = land(raw, WEEK, [src], {"tool_version": "1.3.2", "shard": 1, "seed": 7,
                                       "command": "masscan ... -oD -"}, settle=0)
    assert not os.path.exists(src)
    assert done.path == os.path.join(raw, WEEK, "masscan-tcp-shard01of02.ndjson.gz")
    with open(done.path, "rb") as fh:
        assert fh.read() == data
    with open(done.sidecar) as fh:
        side = json.load(fh)
    times = [int(json.loads(line)["timestamp"]) for line in _real("masscan.ndjson").splitlines()]
    assert side["sha256"] == hashlib.sha256(data).hexdigest() and side["bytes"] == len(data)
    assert (side["tool"], side["format"], side["compression"]) == ("masscan", "masscan-ndjson", "gzip")
    assert side["records"] == 37 and side["damage"] == []
    assert side["start"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(times)))
    assert side["end"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(times)))
    assert side["times_from"] == "records"
    # what the pipeline sees: the file (not the sidecar), and the sidecar's hints
    assert [f.name for f in discover(raw, WEEK)] == ["masscan-tcp-shard01of02.ndjson.gz"]
    assert _sidecar(done.path) == {"tool_version": "1.3.2", "shard": 1, "seed": 7,
                                   "port_hint": None, "transport_hint": None, "scan_start_us": None}


def test_given_start_sets_scan_start_us_and_hints_pass_through(tmp_path, spool):
    src = _put(spool, "zmap_p80.txt", _real("zmap_p80_default_module.txt"))
    (done,) = land(str(tmp_path / "raw"), WEEK, [src],
                   {"tool": "zmap", "port_hint": 80, "transport_hint": "tcp",
                    "start": "2026-11-25T00:38:00Z"}, settle=0)
    assert done.meta["scan_start_us"] == 1795567080 * 1_000_000
    assert (done.meta["port_hint"], done.meta["times_from"]) == (80, "meta")


@pytest.mark.parametrize("name, data, kind", [
    ("cut.ndjson.gz", gzip.compress(_real("masscan.ndjson"))[:-200], "compression_truncated"),
    ("nofooter.json", _real("masscan.json").rstrip()[:-1], "missing_footer"),
    ("cutline.csv", _real("zmap_p22.csv")[:-20], "partial_last_record"),
])
def test_unfinished_content_is_refused_and_nothing_moves(tmp_path, spool, name, data, kind):
    src = _put(spool, name, data)
    with pytest.raises(StillWriting, match=kind):
        land(str(tmp_path / "raw"), WEEK, [src], settle=0)
    assert os.path.exists(src) and not os.path.exists(tmp_path / "raw")


def test_open_writer_is_refused(tmp_path, spool):
    src = _put(spool, "zmap.csv", _real("zmap_p22.csv"))
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys,time; f=open(sys.argv[1],'ab'); print('ok',flush=True); time.sleep(30)",
                               src], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ok"
        assert writers_of(src) == [holder.pid]
        with pytest.raises(StillWriting, match=f"pid {holder.pid}"):
            land(str(tmp_path / "raw"), WEEK, [src], settle=0)
    finally:
        holder.kill()
        holder.wait()
    assert writers_of(src) == []
    assert len(land(str(tmp_path / "raw"), WEEK, [src], settle=0)) == 1


def test_a_reader_is_not_a_writer(spool):
    src = _put(spool, "zmap.csv", _real("zmap_p22.csv"))
    with open(src, "rb"):
        assert writers_of(src) == []


def test_growing_file_is_refused(tmp_path, spool):
    lines = _real("zmap_p22.csv").splitlines(keepends=True)
    src = _put(spool, "zmap.csv", b"".join(lines[:5]))

    def grow():
        time.sleep(0.2)
        with open(src, "ab") as fh:   # whole lines: the content stays "complete"
            fh.write(b"".join(lines[5:]))

    t = threading.Thread(target=grow)
    t.start()
    try:
        with pytest.raises(StillWriting, match="changed"):
            land(str(tmp_path / "raw"), WEEK, [src], settle=0.6, open_writers=lambda p: [])
    finally:
        t.join()


def test_foreign_content_and_wrong_tool_are_refused(tmp_path, spool):
    notes = _put(spool, "notes.txt", b"meeting notes\nnothing to see\n")
    with pytest.raises(NotScannerOutput, match="not masscan, zmap or zgrab2"):
        land(str(tmp_path / "raw"), WEEK, [notes], settle=0)
    mass = _put(spool, "m.ndjson", _real("masscan.ndjson"))
    with pytest.raises(NotScannerOutput, match="masscan output .* not zmap"):
        land(str(tmp_path / "raw"), WEEK, [mass], {"tool": "zmap"}, settle=0)


def test_empty_file_needs_the_tool_to_be_named(tmp_path, spool):
    src = _put(spool, "masscan-udp-shard02of02.ndjson.gz", gzip.compress(b""))
    with pytest.raises(NotScannerOutput, match="empty"):
        land(str(tmp_path / "raw"), WEEK, [src], settle=0)
    (done,) = land(str(tmp_path / "raw"), WEEK, [src], {"tool": "masscan"}, settle=0)
    assert (done.meta["format"], done.meta["records"]) == ("empty", 0)


def test_one_bad_file_moves_nothing(tmp_path, spool):
    good = _put(spool, "good.ndjson", _real("masscan.ndjson"))
    bad = _put(spool, "bad.json", _real("masscan.json")[:-3])
    with pytest.raises(LandError):
        land(str(tmp_path / "raw"), WEEK, [good, bad], settle=0)
    assert os.path.exists(good) and os.path.exists(bad)


def test_never_overwrites_and_replace_keeps_every_old_version(tmp_path, spool):
    raw = str(tmp_path / "raw")
    versions = [_real("masscan.ndjson"), _real("masscan_oD.ndjson"), _real("masscan_readscan.ndjson")]
    land(raw, WEEK, [_put(spool, "m.ndjson", versions[0])], settle=0)
    second = _put(spool, "m.ndjson", versions[1])
    with pytest.raises(AlreadyLanded, match="--replace"):
        land(raw, WEEK, [second], settle=0)
    assert os.path.exists(second)
    week = os.path.join(raw, WEEK)
    with open(os.path.join(week, "m.ndjson"), "rb") as fh:
        assert fh.read() == versions[0]
    (d2,) = land(raw, WEEK, [second], replace=True, settle=0)
    (d3,) = land(raw, WEEK, [_put(spool, "m.ndjson", versions[2])], replace=True, settle=0)
    assert d2.replaced == os.path.join(week, ".m.ndjson.replaced-1")
    assert d3.replaced == os.path.join(week, ".m.ndjson.replaced-2")
    for path, data in ((d3.path, versions[2]), (d3.replaced, versions[1]), (d2.replaced, versions[0])):
        with open(path, "rb") as fh:
            assert fh.read() == data
        with open(path + ".meta.json") as fh:
            assert json.load(fh)["sha256"] == hashlib.sha256(data).hexdigest()
    assert [f.name for f in discover(raw, WEEK)] == ["m.ndjson"]   # old versions not read twice


def test_cross_filesystem_move_copies_and_verifies(tmp_path, spool, monkeypatch):
    src = _put(spool, "z.csv", _real("zmap_p22.csv"))
    real_rename = os.rename

    def rename(a, b):
        if a == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(a, b)

    monkeypatch.setattr(land_mod.os, "rename", rename)
    (done,) = land(str(tmp_path / "raw"), WEEK, [src], settle=0)
    assert not os.path.exists(src)
    with open(done.path, "rb") as fh:
        assert fh.read() == _real("zmap_p22.csv")
    with pytest.raises(StillWriting, match="sha256"):
        land_mod._copy_verified(done.path, str(tmp_path / "copy"), "0" * 64)
    assert not os.path.exists(tmp_path / "copy")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), gz=st.booleans())
def test_arbitrary_bytes_raise_only_land_errors(tmp_path, data, gz):
    path = str(tmp_path / "f")
    with open(path, "wb") as fh:
        fh.write(gzip.compress(data) if gz else data)
    try:
        side = examine(path, {"tool": "masscan"})
    except LandError:
        return
    assert side["bytes"] == os.path.getsize(path) and len(side["sha256"]) == 64


# -- CLI -----------------------------------------------------------------------

def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="portcensus")
    sub = parser.add_subparsers(dest="command")
    cli_scan.add_parsers(sub)
    return cli_scan.dispatch(parser.parse_args(argv))


def test_cli_plan_prints_commands_per_shard(capsys):
    assert _cli(["plan", "--week", WEEK, "--shards", "4", "--shard", "2"]) == 0
    out = capsys.readouterr().out
    assert "--shard 2/4" in out and "--shard=1" in out and "--shard 1/4" not in out
    assert "portcensus land --week 2026-W48" in out
    assert _cli(["plan", "--week", "2026-48"]) == 2
    assert "ISO week" in capsys.readouterr().err


def test_cli_land_fills_meta_from_the_plan_and_maps_errors_to_exit_codes(tmp_path, spool, capsys):
    plan = os.path.join(os.path.dirname(cli_scan.DEFAULT_PLAN), "scanplan.toml")
    name = "zmap-ssh22-shard03of10.csv.gz"
    src = _put(spool, name, gzip.compress(_real("zmap_p22.csv")))
    raw = str(tmp_path / "raw")
    args = ["land", "--week", WEEK, "--raw", raw, "--plan", plan, "--spool", str(spool),
            "--settle", "0", "--tool-version", "2.1.1"]
    assert _cli(args + [src]) == 0
    assert f"landed {raw}/{WEEK}/{name}" in capsys.readouterr().out
    with open(os.path.join(raw, WEEK, name + ".meta.json")) as fh:
        side = json.load(fh)
    assert (side["tool"], side["shard"], side["port_hint"], side["tool_version"]) == ("zmap", 3, 22, "2.1.1")
    assert side["command"].startswith("zmap -p 22 ") and "--shard=2" in side["command"]
    again = _put(spool, name, gzip.compress(_real("zmap_p22.csv")))
    assert _cli(args + [again]) == 1
    assert "already in" in capsys.readouterr().err
    stray = _put(spool, "other.csv", _real("zmap_p22.csv"))
    assert _cli(args + [stray]) == 2
    assert "not an output of the plan" in capsys.readouterr().err
    assert _cli(args + [str(spool / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_decompression_bomb_is_refused_at_the_ceiling(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "bomb.ndjson.zst"
    record = (b'{"ip":"10.0.0.1","timestamp":"1795566999","port":80,"proto":"tcp","rec_type":"status",'
              b'"data":{"status":"open","reason":"syn-ack","ttl":64}}\n')
    c = zstandard.ZstdCompressor(level=1).compressobj()
    with open(path, "wb") as f:
        f.write(c.compress(record))
        for _ in range(20):                      # 320 MiB of newlines: past the 256 MiB floor
            f.write(c.compress(b"\n" * (16 << 20)))
        f.write(c.flush())
    assert os.path.getsize(path) < 1 << 20
    with pytest.raises(LandError, match="decompression bomb"):
        examine(str(path), {"tool": "masscan"})
