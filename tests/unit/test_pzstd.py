"""Issue 13: pzstd output opens with a skippable frame (magic 0x184D2A5x), not
the zstd frame magic; such files were sniffed as plain text and dropped whole."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from scanners.base import ReadContext
from scanners.registry import read_file_chunks

zstandard = pytest.importorskip("zstandard")


def records(n: int) -> bytes:
    return b"".join(b'{"ip":"10.0.%d.%d","timestamp":"1795566999","port":80,"proto":"tcp",'
                    b'"rec_type":"status","data":{"status":"open","reason":"syn-ack","ttl":64}}\n'
                    % (i >> 8 & 255, i & 255) for i in range(n))


def read(raw: bytes):
    ctx = ReadContext(source="t")
    ips = []
    for batch in read_file_chunks([raw[i:i + 65536] for i in range(0, len(raw), 65536)], ctx):
        ips += batch.column("ip").to_pylist()
    return ips, ctx


@pytest.mark.parametrize("magic_low", [0x50, 0x5E])
def test_a_leading_skippable_frame_is_read_as_zstd(magic_low):
    data = records(3000)
    skippable = bytes([magic_low]) + b"\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"\x00\x01\x02\x03"
    raw = skippable + zstandard.ZstdCompressor().compress(data[:len(data) // 2]) \
        + zstandard.ZstdCompressor().compress(data[len(data) // 2:])
    ips, ctx = read(raw)
    assert ctx.facts["compression"] == "zstd"
    assert ips == [f"10.0.{i >> 8 & 255}.{i & 255}" for i in range(3000)]
    assert not ctx.damages


@pytest.mark.skipif(shutil.which("pzstd") is None, reason="pzstd not installed (apt-get install zstd)")
def test_a_real_pzstd_file_keeps_every_record(tmp_path):
    data = records(20000)
    src = tmp_path / "scan.ndjson"
    src.write_bytes(data)
    subprocess.run(["pzstd", "-q", "-p", "2", str(src), "-o", str(tmp_path / "scan.ndjson.zst")], check=True)
    raw = (tmp_path / "scan.ndjson.zst").read_bytes()
    assert raw[0] & 0xF0 == 0x50 and raw[1:4] == b"\x2a\x4d\x18"   # what the fix is about
    ips, ctx = read(raw)
    assert ctx.facts["compression"] == "zstd"
    assert len(ips) == 20000 and ips[-1] == "10.0.78.31"
    assert not ctx.damages
