"""masscan ndjson / -oJ readers against real masscan 1.3.2 output and hostile input
(the property tests over arbitrary input: test_masscan_json_fuzz.py)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.schema import HOST_KEY_FIELDS, RAW_SCHEMA, DamageKind, QuarantineReason as QR
from scanners.base import MAX_BANNER_BYTES, ReadContext
from scanners.formats import masscan_json as mj

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
ZGRAB = Path(__file__).resolve().parents[1] / "fixtures" / "zgrab2"
TITLE = 'Fixture A &amp; "quoted" café'.encode()

# (file, records, status records, banner records) as stated in tests/fixtures/real/README.md
FIXTURES = [
    ("masscan.json", 37, 15, 22),
    ("masscan.ndjson", 37, 15, 22),
    ("masscan_oD.ndjson", 37, None, None),
    ("masscan_readscan.json", 37, 15, 22),
    ("masscan_readscan.ndjson", 37, 15, 22),
    ("masscan_show_closed.json", 108, 88, 20),
    ("masscan_udp11211.json", 4, 2, 2),
    ("masscan_ping.json", 12, 12, 0),
    ("masscan_shard1of2.json", None, None, None),
    ("masscan_shard2of2.json", None, None, None),
    ("masscan.certs", 0, 0, 0),
]


def fmt_of(data: bytes):
    found = [f for f in mj.FORMATS if f.sniff(data[:65536])]
    assert len(found) == 1, [f.name for f in found]
    return found[0]


def read(data: bytes, fmt=None, batch_rows: int = 100_000, chunk: int | None = None, parse_threads: bool = True):
    """(rows as dicts, ctx), checking the reader contract on the way."""
    fmt = fmt or fmt_of(data)
    ctx = ReadContext(source="f", batch_rows=batch_rows, parse_threads=parse_threads)
    chunks = [data] if chunk is None else [data[i:i + chunk] for i in range(0, len(data), chunk)]
    batches = list(fmt.read(iter(chunks), ctx))
    for b in batches:
        assert b.schema == RAW_SCHEMA and 0 < b.num_rows <= batch_rows
    rows = pa.Table.from_batches(batches, RAW_SCHEMA).to_pylist()
    assert ctx.records_read == len(rows) + ctx.quarantined
    q = ctx.take_quarantine()
    ctx.q = [] if q is None else q.to_pylist()
    for r in rows:
        r["timestamp"] = None if r["timestamp"] is None else int(r["timestamp"].timestamp())
    return rows, ctx


def oracle(data: bytes) -> list[dict]:
    """Independent, obvious reading: json.loads per record line, offsets by counting."""
    out, off = [], 0
    for line in data.split(b"\n"):
        s = line.strip()
        if s.startswith(b"{") and not s.startswith(b"{finished"):
            r = json.loads(s.rstrip(b","))
            if "ports" in r:
                p = r["ports"][0]
                svc = p.get("service")
                d = {"status": p.get("status"), "reason": p.get("reason"), "ttl": p.get("ttl"),
                     "service_name": svc and svc["name"], "banner": svc and svc["banner"]}
                port, proto = p["port"], p["proto"]
            else:
                d, port, proto = r["data"], r["port"], r["proto"]
            out.append({"ip": r["ip"], "port": port, "transport": proto, "status": d.get("status"),
                        "reason": d.get("reason"), "ttl": d.get("ttl"),
                        "timestamp": int(r["timestamp"]), "service": d.get("service_name"),
                        "banner": None if d.get("banner") is None else d["banner"].encode("latin-1"),
                        "tool": "masscan", "tool_version": None, "source_file": "f",
                        "source_offset": off,
                        **{f.name: None for f in HOST_KEY_FIELDS},   # masscan never has host keys
                        "port_source": None})                         # the record names its port
        off += len(line) + 1
    return out


def strip_offsets(rows):
    return [{k: v for k, v in r.items() if k != "source_offset"} for r in rows]


# -- real fixtures -------------------------------------------------------------

@pytest.mark.parametrize("name,total,status,banner", FIXTURES)
def test_real_fixture(name, total, status, banner):
    data = (REAL / name).read_bytes()
    rows, ctx = read(data)
    assert ctx.quarantined == 0 and ctx.damages == []
    assert rows == oracle(data)
    if total is not None:
        assert len(rows) == total
    if status is not None:
        assert sum(r["status"] is not None for r in rows) == status
        assert sum(r["banner"] is not None for r in rows) == banner
    for r in rows:  # every offset is the first byte of that record's line
        assert data[r["source_offset"]:r["source_offset"] + 1] == b"{"
        assert r["source_offset"] == 0 or data[r["source_offset"] - 1:r["source_offset"]] == b"\n"
        assert f'"{r["ip"]}"'.encode() in data[r["source_offset"]:].split(b"\n", 1)[0]
    if name.endswith(".json") or name.endswith(".certs"):
        assert ctx.facts["footer"] is True


def test_exact_values_of_masscan_json():
    rows, _ = read((REAL / "masscan.json").read_bytes())
    assert rows[0] == {"ip": "198.18.0.3", "port": 11211, "transport": "tcp", "status": "open",
                       "reason": "syn-ack", "ttl": 64, "timestamp": 1795566993, "service": None,
                       "banner": None, "tool": "masscan", "tool_version": None, "source_file": "f",
                       "source_offset": 2, **{f.name: None for f in HOST_KEY_FIELDS}, "port_source": None}
    by = {(r["ip"], r["port"], r["transport"], r["service"]): r for r in rows}
    title = by[("198.18.0.1", 80, "tcp", "title")]
    assert title["banner"] == TITLE and title["status"] is None and title["ttl"] is None
    assert by[("198.18.0.1", 22, "tcp", "ssh")]["banner"] == b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
    assert by[("198.18.0.3", 443, "tcp", "ssl")]["banner"] == b" ALERT(0x0250) "
    assert by[("198.18.0.6", 80, "tcp", "http")]["banner"].endswith(b"Content-Length: 230\r\n\r")
    udp = [r for r in rows if r["transport"] == "udp" and r["status"] == "open"]
    assert len(udp) == 2 and all(r["reason"] == "none" and r["ttl"] == 0 for r in udp)
    assert [r["banner"] for r in rows if r["transport"] == "udp" and r["banner"] is not None][1] == b""
    assert min(r["timestamp"] for r in rows) == 1795566993


def test_ping_and_show_closed_values():
    ping, _ = read((REAL / "masscan_ping.json").read_bytes())
    assert {(r["port"], r["transport"], r["status"], r["reason"], r["ttl"]) for r in ping} == \
        {(0, "icmp", "open", "none", 64)}
    closed, _ = read((REAL / "masscan_show_closed.json").read_bytes())
    assert sum(r["status"] == "closed" and r["reason"] == "rst-ack" for r in closed) == 72
    assert sum(r["status"] == "closed" and r["transport"] == "udp" for r in closed) == 3


def test_shards_are_disjoint_and_add_up():
    opens = []
    for name in ("masscan_shard1of2.json", "masscan_shard2of2.json"):
        rows, _ = read((REAL / name).read_bytes())
        opens.append({(r["ip"], r["port"]) for r in rows if r["status"] == "open" and r["transport"] == "tcp"})
    assert [len(o) for o in opens] == [11, 2] and not opens[0] & opens[1]


def test_readscan_json_and_ndjson_give_identical_rows():
    j, _ = read((REAL / "masscan_readscan.json").read_bytes())
    n, _ = read((REAL / "masscan_readscan.ndjson").read_bytes())
    assert len(j) == 37 and strip_offsets(j) == strip_offsets(n)


def test_sniffers_say_no_to_other_formats():
    others = [p for p in REAL.iterdir() if "json" not in p.name and p.name != "masscan.certs"]
    others += [REAL / "zmap_p22.json", REAL / "zmap_p22.metadata.json"] + list(ZGRAB.glob("*.json"))
    for p in others:
        head = p.read_bytes()[:65536]
        assert not any(f.sniff(head) for f in mj.FORMATS), p.name


@pytest.mark.parametrize("name", ["masscan.json", "masscan.ndjson", "masscan_show_closed.json"])
def test_slow_path_gives_the_same_rows(name, monkeypatch):
    data = (REAL / name).read_bytes()
    fast, _ = read(data)
    monkeypatch.setattr(mj, "_fast", lambda *a, **k: None)
    slow, ctx = read(data)
    assert slow == fast and ctx.quarantined == 0


@pytest.mark.parametrize("name", ["masscan.json", "masscan.ndjson", "masscan_show_closed.json"])
def test_parsing_without_pyarrows_threads_gives_the_same_rows(name, monkeypatch):
    # a big week's default run parses on the worker's own thread (pipelines/runmode.py)
    data = (REAL / name).read_bytes()
    seen = []
    real = mj.pj.read_json
    monkeypatch.setattr(mj.pj, "read_json", lambda *a, **k: seen.append(k["read_options"].use_threads) or real(*a, **k))
    threaded, _ = read(data)
    serial, ctx = read(data, parse_threads=False)
    assert serial == threaded and len(serial) and ctx.quarantined == 0
    assert True in seen and False in seen      # both ways were taken


def test_chunking_blocks_and_batches_do_not_change_rows(monkeypatch):
    data = (REAL / "masscan_show_closed.json").read_bytes()
    whole, _ = read(data)
    assert read(data, chunk=7)[0] == whole
    assert read(data, batch_rows=10)[0] == whole
    monkeypatch.setattr(mj, "BLOCK_BYTES", 300)  # many blocks, lines straddling chunks
    assert read(data, chunk=1)[0] == whole


def test_legacy_json_with_trailing_commas_and_finished_marker():
    data = (REAL / "masscan.json").read_bytes()
    records = [ln for ln in data.split(b"\n") if ln.startswith(b"{")]
    legacy = b"".join(r + b",\n" for r in records) + b"{finished: 1}\n"
    rows, ctx = read(legacy)
    assert ctx.quarantined == 0 and ctx.damages == [] and ctx.facts["footer"] is True
    assert strip_offsets(rows) == strip_offsets(read(data)[0])


def test_crlf_and_blank_lines():
    data = (REAL / "masscan.ndjson").read_bytes()
    crlf = data.replace(b"\n", b"\r\n\r\n")
    rows, ctx = read(crlf)
    assert ctx.quarantined == 0 and strip_offsets(rows) == strip_offsets(read(data)[0])
    assert all(crlf[r["source_offset"]:].startswith(b'{"ip":"' + r["ip"].encode()) for r in rows)


# -- damage --------------------------------------------------------------------

def test_ndjson_cut_in_last_line():
    data = (REAL / "masscan.ndjson").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    rows, ctx = read(data[:last + 40])
    assert len(rows) == 36 and [q["reason"] for q in ctx.q] == [QR.TRUNCATED_RECORD.value]
    assert ctx.q[0]["source_offset"] == last
    assert [(d.kind, d.offset) for d in ctx.damages] == [(DamageKind.PARTIAL_LAST_RECORD, last)]


def test_json_without_closing_bracket_keeps_every_record():
    data = (REAL / "masscan.json").read_bytes()
    assert data.endswith(b"}\n]\n")
    rows, ctx = read(data[:-2])
    assert len(rows) == 37 and ctx.quarantined == 0 and ctx.facts["footer"] is False
    assert [d.kind for d in ctx.damages] == [DamageKind.MISSING_FOOTER]
    rows, ctx = read(data[:-3])  # also no newline after the last record: still complete
    assert len(rows) == 37 and [d.kind for d in ctx.damages] == [DamageKind.MISSING_FOOTER]


def test_json_cut_inside_a_record():
    data = (REAL / "masscan.json").read_bytes()
    cut = data.index(b"\n{", len(data) // 2) + 1
    rows, ctx = read(data[:cut + 30])
    assert [(q["reason"], q["source_offset"]) for q in ctx.q] == [(QR.TRUNCATED_RECORD.value, cut)]
    assert {d.kind for d in ctx.damages} == {DamageKind.PARTIAL_LAST_RECORD, DamageKind.MISSING_FOOTER}
    assert strip_offsets(rows) == strip_offsets(read(data)[0][:len(rows)])


_ND = b'{"ip":"1.2.3.4","timestamp":"1","port":%s,"proto":"tcp","rec_type":%s,"data":%s}'
_OJ = b'{   "ip": %s,   "timestamp": %s, "ports": %s }'
BAD_LINES = [
    ("masscan.ndjson", b"this is not json", QR.MALFORMED_RECORD),
    ("masscan.ndjson", b'{"ip":"198.18.0.9","timestamp":"17955', QR.MALFORMED_RECORD),
    ("masscan.ndjson", _ND % (b'"80"', b'"status"', b'{"status":"open"}'), QR.INVALID_PORT),
    ("masscan.ndjson", _ND % (b"99999", b'"status"', b'{"status":"open"}'), QR.INVALID_PORT),
    ("masscan.ndjson", _ND % (b"80", b'"status"', b"{}"), QR.MISSING_FIELD),
    ("masscan.ndjson", _ND % (b"80", b'"oops"', b"{}"), QR.UNKNOWN_RECORD_TYPE),
    ("masscan.ndjson", _ND % (b"80", b'"banner"', b'{"service_name":"x","banner":"\xff"}'),
     QR.MALFORMED_RECORD),
    ("masscan.ndjson", _ND % (b"80", b'"banner"', b'{"service_name":"x","banner":"\\ud800"}'),
     QR.MALFORMED_RECORD),   # a lone surrogate is not text, in an all-ASCII file too
    ("masscan.ndjson", _ND % (b"80", b'"status"', b'{"status":"open"}') + b" {}", QR.MALFORMED_RECORD),
    ("masscan.ndjson", b'{"timestamp":"1","port":80,"proto":"tcp","rec_type":"status","data":{"status":"open"}}',
     QR.MISSING_FIELD),
    ("masscan.ndjson", b'{"ip":"1.2.3.4","timestamp":"soon","port":80,"proto":"tcp","rec_type":"status",'
                       b'"data":{"status":"open"}}', QR.INVALID_TIMESTAMP),
    ("masscan.ndjson", (b'{"ip":"1.2.3.4","timestamp":"1234567890123","port":80,"proto":"tcp","rec_type":"status",'
                        b'"data":{"status":"open"}}'), QR.INVALID_TIMESTAMP),   # 13 digits: beyond _TS
    ("masscan.json", b"this is not json", QR.MALFORMED_RECORD),
    ("masscan.json", b'{   "ip": "198.18.0.9",   "timestamp": "17955', QR.MALFORMED_RECORD),
    ("masscan.json", _OJ % (b"5", b'"1"', b'[ {"port": 80, "proto": "tcp", "status": "open"} ]'), QR.INVALID_IP),
    ("masscan.json", _OJ % (b'"1.2.3.4"', b'"1"', b'[ {"port": "80", "proto": "tcp", "status": "open"} ]'),
     QR.INVALID_PORT),
    ("masscan.json", _OJ % (b'"1.2.3.4"', b'"1"', b"[ ]"), QR.MISSING_FIELD),
    ("masscan.json", _OJ % (b'"1.2.3.4"', b'"1"', b'[ {"port": 80, "proto": "tcp"} ]'), QR.MISSING_FIELD),
    ("masscan.json", _OJ % (b'"1.2.3.4"', b'"1"', b'[ {"port": 80, "proto": "tcp", "service": {"name": "x"}} ]'),
     QR.MISSING_FIELD),
    ("masscan.json", _OJ % (b'"1.2.3.4"', b'"x1"', b'[ {"port": 80, "proto": "tcp", "status": "open"} ]'),
     QR.INVALID_TIMESTAMP),
    ("masscan.json", _OJ % (b'"1.2.3.4"', b'"1"', b'[ {"port": 80, "proto": "tcp", "service": '
                                                  b'{"name": "x", "banner": "\xff"}} ]'), QR.MALFORMED_RECORD),
    ("masscan.json", _OJ % (b'"1.2.3.4"', b'"1"', (b'[ {"port": 80, "proto": "tcp", "service": '
                                                   b'{"name": "x", "banner": "\\udc00"}} ]')), QR.MALFORMED_RECORD),
]


@pytest.mark.parametrize("name,garbage,reason", BAD_LINES)
def test_one_bad_line_in_the_middle_costs_only_itself(name, garbage, reason):
    data = (REAL / name).read_bytes()
    lines = data.split(b"\n")
    k = 11  # a record line in both files
    assert lines[k].startswith(b"{")
    bad_offset = sum(len(ln) + 1 for ln in lines[:k])
    rows, ctx = read(b"\n".join(lines[:k] + [garbage] + lines[k:]), fmt=fmt_of(data))
    assert [(q["reason"], q["source_offset"]) for q in ctx.q] == [(reason.value, bad_offset)]
    assert strip_offsets(rows) == strip_offsets(read(data)[0])
    assert ctx.q[0]["excerpt"].isascii() and ctx.q[0]["excerpt"].isprintable()


def test_number_timestamp_is_taken_as_written():
    line = b'{"ip":"1.2.3.4","timestamp":1700000000,"port":80,"proto":"tcp","rec_type":"status","data":{"status":"open","reason":"syn-ack","ttl":64}}\n'
    rows, ctx = read(line, fmt=mj.FORMATS[0])  # the sniffer only knows masscan's own layout
    assert ctx.quarantined == 0 and rows[0]["timestamp"] == 1700000000 and rows[0]["ttl"] == 64


def _banner_line(banner: str) -> bytes:
    return (b'{"ip":"1.2.3.4","timestamp":"1","port":80,"proto":"tcp","rec_type":"banner",'
            b'"data":{"service_name":"http","banner":"' + banner.encode() + b'"}}\n')


def test_banner_limits():
    ok = _banner_line("A" * MAX_BANNER_BYTES)
    big = _banner_line("A" * (MAX_BANNER_BYTES + 1))
    escaped = _banner_line("\\u00ff" * (MAX_BANNER_BYTES + 1))  # a 393 kB line, 64 kB + 1 decoded
    huge = _banner_line("\\u0041" * (1 << 20))                  # a 1 MB banner: a 6 MB line
    rows, ctx = read(ok + big + escaped + huge + ok)
    assert [len(r["banner"]) for r in rows] == [MAX_BANNER_BYTES] * 2
    assert [q["reason"] for q in ctx.q] == [QR.OVERSIZED_RECORD.value] * 3
    assert sorted(q["source_offset"] for q in ctx.q) == [len(ok), len(ok + big), len(ok + big + escaped)]
    assert rows[1]["source_offset"] == len(ok + big + escaped + huge)


def test_oversized_line_without_newline_at_the_end():
    ok = _banner_line("x")
    rows, ctx = read(ok + b'{"ip":"' + b"9" * (3 << 20), chunk=1 << 16)
    assert len(rows) == 1 and [(q["reason"], q["source_offset"]) for q in ctx.q] == \
        [(QR.OVERSIZED_RECORD.value, len(ok))]


def test_line_longer_than_a_block_is_skipped_to_its_newline():
    ok = _banner_line("x")
    long = b'{"ip":"' + b"9" * (5 << 20) + b'"}\n'
    rows, ctx = read(ok + long + ok, chunk=1 << 16)
    assert [r["source_offset"] for r in rows] == [0, len(ok + long)]
    assert [(q["reason"], q["source_offset"]) for q in ctx.q] == [(QR.OVERSIZED_RECORD.value, len(ok))]


def test_timing_one_million_ndjson_lines():
    """Not an assertion on speed: prints the throughput for the report (pytest -s)."""
    lines = (REAL / "masscan.ndjson").read_bytes().splitlines(keepends=True)
    data = b"".join(lines[i % len(lines)] for i in range(1_000_000))
    chunks = (data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20))
    ctx = ReadContext(source="bench")
    t0 = time.perf_counter()
    n = sum(b.num_rows for b in mj.read_ndjson(chunks, ctx))
    dt = time.perf_counter() - t0
    print(f"\nmasscan ndjson: {n} lines, {len(data) / 1e6:.0f} MB in {dt:.2f} s "
          f"({n / dt / 1e6:.2f} M lines/s, {len(data) / dt / 1e6:.0f} MB/s)")
    assert n == 1_000_000 and ctx.quarantined == 0
