"""Issue 13: bounded memory whatever the file. Decompression bombs and
hostile line layouts run in a child process whose peak RSS is measured
(``VmHWM``); each must end with a damage entry, under 1 GiB.

Not ``ru_maxrss``: Linux carries the parent's peak into a child's
``ru_maxrss`` across fork/vfork and exec, so a child of a pytest worker that
once held 1.2 GB reports 1.2 GB whatever it did. ``VmHWM`` in
``/proc/self/status`` is the peak of the child's own address space."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib

import pytest

zstandard = pytest.importorskip("zstandard")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECORD = (b'{"ip":"10.0.0.1","timestamp":"1795566999","port":80,"proto":"tcp","rec_type":"status",'
          b'"data":{"status":"open","reason":"syn-ack","ttl":64}}\n')

CHILD = r"""
import json, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
from scanners.base import ReadContext
from scanners.compression import decompression_limit, iter_file_chunks
from scanners.registry import read_file_chunks
import os
path = sys.argv[1]
ctx = ReadContext(source="bomb")
rows = 0
with open(path, "rb") as f:
    for b in read_file_chunks(iter_file_chunks(f.read), ctx, max_bytes=decompression_limit(os.path.getsize(path))):
        rows += b.num_rows
        ctx.take_quarantine()
print(json.dumps({"rows": rows, "read": ctx.records_read, "kinds": [d.kind.value for d in ctx.damages],
                  "facts": {k: v for k, v in ctx.facts.items() if k.endswith("bytes")},
                  "rss": hwm()}))
"""


def run_child(path) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def stream_to(path, compressor, head: bytes, piece: bytes, times: int) -> None:
    with open(path, "wb") as f:
        f.write(compressor.compress(head))
        for _ in range(times):
            f.write(compressor.compress(piece))
        f.write(compressor.flush())


def test_zstd_bomb_of_zeros_stops_at_the_ceiling(tmp_path):
    path = tmp_path / "zeros.ndjson.zst"
    stream_to(path, zstandard.ZstdCompressor(level=3).compressobj(), RECORD, bytes(16 << 20), 256)  # 4 GiB
    assert os.path.getsize(path) < 1 << 20
    got = run_child(path)
    assert "decompression_limit" in got["kinds"] and got["rss"] < 1 << 30
    assert got["rows"] == 1
    assert got["facts"]["decompressed_bytes"] == 256 << 20


def test_gzip_of_one_record_and_a_gib_of_newlines(tmp_path):
    path = tmp_path / "newlines.ndjson.gz"
    stream_to(path, zlib.compressobj(1, zlib.DEFLATED, 31), RECORD, b"\n" * (16 << 20), 64)   # 1 GiB
    got = run_child(path)
    assert got["rss"] < 1 << 30 and got["rows"] == 1
    assert "decompression_limit" in got["kinds"]


def test_gzip_bomb_under_a_generous_ceiling_still_streams(tmp_path):
    """Below the ceiling a big inflation is not damage: 300 MiB of zeros after a
    record are one oversized line, quarantined without being held."""
    path = tmp_path / "zeros.ndjson.gz"
    stream_to(path, zlib.compressobj(9, zlib.DEFLATED, 31), RECORD, bytes(1 << 20), 200)
    got = run_child(path)
    assert got["rss"] < 1 << 30 and got["rows"] == 1
    assert got["read"] == 2                      # the record and the oversized line of zeros


def test_one_giant_line_is_counted_damage_not_memory(tmp_path):
    path = tmp_path / "giant.ndjson.gz"
    stream_to(path, zlib.compressobj(1, zlib.DEFLATED, 31), RECORD, b"x" * (16 << 20), 12)
    got = run_child(path)
    assert got["rss"] < 1 << 30 and got["rows"] == 1
    assert "partial_last_record" in got["kinds"] and got["read"] == 2
    assert got["facts"]["record_bytes"] == got["facts"]["decompressed_bytes"]


def test_the_ceiling_comes_from_the_flag():
    from pipelines.cli import build_parser
    args = build_parser().parse_args(["verify", "--week", "2013-W37", "--max-inflation", "7"])
    assert args.max_inflation == 7
    from pipelines.config import ConfigError, RunConfig
    with pytest.raises(ConfigError, match="max-inflation"):
        RunConfig(week="2013-W37", max_inflation=0.5, country_db=None, asn_db=None).validate()


def test_a_small_gzip_is_never_limited():
    from scanners.compression import INFLATION_FLOOR, decompression_limit
    assert decompression_limit(1000) == INFLATION_FLOOR
    assert decompression_limit(10 << 30) == 1000 << 30
    assert gzip.decompress(gzip.compress(RECORD)) == RECORD
