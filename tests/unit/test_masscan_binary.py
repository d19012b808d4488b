"""masscan -oB reader: real fixture, cross-format equality, synthetic record
types and damage. Synthetic records are built here by hand from the layout in
masscan's src/out-binary.c, independently of the reader."""
from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.schema import DamageKind, QuarantineReason as R
from scanners.base import ReadContext
from scanners.formats.masscan_binary import read_binary
from scanners.formats.masscan_text import read_grepable, read_list
from scanners.formats.masscan_xml import read_xml
from tests.helpers import quarantine_reasons, read_in_chunks

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
TITLE_A = 'Fixture A &amp; "quoted" café'.encode("utf-8")
HEADER = b"masscan/1.1\ns:1795567034\n".ljust(99, b"\0")
TRAILER = b"masscan/1.1".ljust(99, b"\0")
TS = (1795567034).to_bytes(4, "big")
IP = bytes([10, 0, 0, 1])
IP6 = bytes.fromhex("20010db8000000000000000000000001")


def rec(rtype: int, payload: bytes) -> bytes:
    n = len(payload)
    length = bytes([n]) if n < 128 else bytes([0x80 | (n >> 7), n & 0x7F])
    return bytes([rtype]) + length + payload


def run(reader, data: bytes, chunk: int = 64):
    ctx = ReadContext(source="f", batch_rows=5)
    return read_in_chunks(reader, data, ctx, chunk).to_pylist(), ctx


def kinds(ctx):
    return [d.kind for d in ctx.damages]


def test_fixture_counts_and_facts():
    rows, ctx = run(read_binary, (REAL / "masscan.bin").read_bytes())
    assert ctx.quarantined == 0 and ctx.damages == []
    assert sum(r["status"] == "open" for r in rows) == 15
    assert sum(r["banner"] is not None for r in rows) == 22
    assert ctx.facts["footer"] is True and ctx.facts["scan_start"] == 1795567034
    assert ctx.facts["tool_version"] == "1.3.x (binary v1.1)"
    assert rows[0]["source_offset"] == 99  # first record right after the 99-byte header
    by = {(r["ip"], r["port"], r["service"]): r["banner"] for r in rows if r["banner"] is not None}
    assert by[("198.18.0.1", 80, "title")] == TITLE_A
    assert len(by[("198.18.0.1", 443, "X509")]) == 1148  # two-byte length field
    udp = [(r["status"], r["reason"], r["ttl"], r["banner"]) for r in rows if r["transport"] == "udp"]
    assert [u[:3] for u in udp] == [(None, None, 64), ("open", "none", 0)] * 2
    assert udp[0][3].startswith(b"uptime=46 ") and udp[2][3] == b""


# -- one scan, five formats ---------------------------------------------------

FIELDS = ("ip", "port", "transport", "status", "reason", "ttl", "timestamp", "service", "banner")


def project(rows, fields):
    return sorted((tuple((f, r[f]) for f in fields) for r in rows), key=repr)


def bin_rows():
    rows, _ = run(read_binary, (REAL / "masscan.bin").read_bytes())
    return rows


def test_binary_equals_readscan_xml_on_every_field():
    xml, ctx = run(read_xml, (REAL / "masscan_readscan.xml").read_bytes())
    assert ctx.quarantined == 0
    assert project(bin_rows(), FIELDS) == project(xml, FIELDS)


def test_binary_equals_readscan_list_where_list_carries_the_field():
    lst, _ = run(read_list, (REAL / "masscan_readscan.list").read_bytes())
    fields = ("ip", "port", "transport", "status", "timestamp", "service", "banner")
    assert project(bin_rows(), fields) == project(lst, fields)


def test_binary_equals_readscan_grepable_where_grepable_carries_the_field():
    grep, _ = run(read_grepable, (REAL / "masscan_readscan.grepable").read_bytes())
    fields = ("ip", "port", "status", "service", "banner")
    assert project(bin_rows(), fields) == project(grep, fields)
    status = ("ip", "port", "transport", "status", "timestamp")
    assert (project([r for r in bin_rows() if r["status"]], status)
            == project([r for r in grep if r["status"]], status))


def test_binary_equals_readscan_json_decoded_by_stdlib():
    expected = []
    for obj in json.loads((REAL / "masscan_readscan.json").read_bytes()):
        (p,) = obj["ports"]
        svc = p.get("service", {})
        expected.append((obj["ip"], p["port"], p["proto"], p.get("status"), p.get("reason"),
                         int(obj["timestamp"]), svc.get("name"),
                         svc["banner"].encode("latin-1") if svc else None))
    got = [(r["ip"], r["port"], r["transport"], r["status"], r["reason"],
            int(r["timestamp"].timestamp()), r["service"], r["banner"]) for r in bin_rows()]
    assert got == expected  # same order too: --readscan keeps record order
    status_ttls = [r["ttl"] for r in bin_rows() if r["status"]]
    assert status_ttls == [p["ttl"] for o in json.loads((REAL / "masscan_readscan.json").read_bytes())
                           for p in o["ports"] if "status" in p]


# -- every record type --------------------------------------------------------

def test_all_record_types():
    port = lambda n: n.to_bytes(2, "big")  # noqa: E731
    data = (HEADER
            + rec(1, TS + IP + port(53) + b"\x12\x40")                  # v1 open: udp by port
            + rec(2, TS + IP + port(23) + b"\x14\x3f")                  # v1 closed
            + rec(3, TS + IP + port(21) + port(5) + b"220 hi")           # always tcp
            + rec(4, TS + IP + b"\x06" + port(22) + port(3) + b"SS") + b"H"  # one byte more (sic)
            + rec(5, TS + IP + b"\x11" + port(161) + port(7) + b"snmp")
            + rec(7, TS + IP + b"\x84" + port(2905) + b"\x00\x00")      # sctp closed
            + rec(8, TS + bytes(4) + b"\x00" + bytes(4) + bytes(6))      # ARP
            + rec(9, TS + IP + b"\x06" + port(80) + port(99) + b"\x05x")  # app id beyond table
            + rec(10, TS + b"\x06" + port(443) + b"\x12\x39\x06" + IP6)
            + rec(11, TS + b"\x06" + port(444) + b"\x04\x39\x06" + IP6)
            + rec(13, TS + b"\x06" + port(443) + port(9) + b"\x39\x06" + IP6 + b"tls")
            + rec(10, TS + b"\x06" + port(443) + b"\x12\x39\x04" + IP6)   # ip version not 6
            + rec(6, TS + IP + b"\x06\x00")                               # too short
            + TRAILER)
    rows, ctx = run(read_binary, data, chunk=7)
    got = [(r["ip"], r["port"], r["transport"], r["status"], r["reason"], r["ttl"],
            r["service"], r["banner"]) for r in rows]
    assert got == [
        ("10.0.0.1", 53, "udp", "open", "syn-ack", 64, None, None),
        ("10.0.0.1", 23, "tcp", "closed", "rst-ack", 63, None, None),
        ("10.0.0.1", 21, "tcp", None, None, None, "ftp", b"220 hi"),
        ("10.0.0.1", 22, "tcp", None, None, None, "ssh", b"SSH"),
        ("10.0.0.1", 161, "udp", None, None, None, "snmp", b"snmp"),
        ("10.0.0.1", 2905, "sctp", "closed", "none", 0, None, None),
        ("10.0.0.1", 80, "tcp", None, None, 5, "(99)", b"x"),
        ("2001:db8::1", 443, "tcp", "open", "syn-ack", 57, None, None),
        ("2001:db8::1", 444, "tcp", "closed", "rst", 57, None, None),
        ("2001:db8::1", 443, "tcp", None, None, 57, "ssl", b"tls"),
    ]
    assert {int(r["timestamp"].timestamp()) for r in rows} == {1795567034}
    assert quarantine_reasons(ctx) == [R.UNKNOWN_RECORD_TYPE, R.MALFORMED_RECORD, R.MALFORMED_RECORD]
    assert ctx.damages == [] and ctx.facts["footer"] is True


# -- damage -------------------------------------------------------------------

def test_unknown_type_keeps_prior_records_and_quarantines_the_rest():
    data = (REAL / "masscan.bin").read_bytes()
    rows_all, _ = run(read_binary, data)
    cut = rows_all[5]["source_offset"]
    bad = data[:cut] + rec(0x3F, b"junk!") + data[cut:]
    rows, ctx = run(read_binary, bad)
    assert rows == rows_all[:5]
    q = ctx.take_quarantine().to_pylist()
    assert [(x["reason"], x["source_offset"]) for x in q] == [
        (R.UNKNOWN_RECORD_TYPE, cut), (R.UNREADABLE_DATA, cut + 7)]
    assert q[0]["excerpt"] == "?\\x05junk!"
    assert kinds(ctx) == [DamageKind.BAD_RECORD_TYPE] and ctx.facts["footer"] is None


def test_record_cut_midway_keeps_prior_records():
    data = (REAL / "masscan.bin").read_bytes()
    rows_all, _ = run(read_binary, data)
    x509 = next(r for r in rows_all if r["service"] == "X509")
    k = rows_all.index(x509)
    rows, ctx = run(read_binary, data[:x509["source_offset"] + 500])
    assert rows == rows_all[:k]
    assert quarantine_reasons(ctx) == [R.TRUNCATED_RECORD]
    assert kinds(ctx) == [DamageKind.PARTIAL_LAST_RECORD, DamageKind.MISSING_FOOTER]
    # cut inside the two-byte length field as well
    rows, ctx = run(read_binary, data[:x509["source_offset"] + 2])
    assert len(rows) == k and quarantine_reasons(ctx) == [R.TRUNCATED_RECORD]


def test_missing_trailer():
    data = (REAL / "masscan.bin").read_bytes()
    rows, ctx = run(read_binary, data[:-99])
    assert len(rows) == 37 and ctx.quarantined == 0
    assert kinds(ctx) == [DamageKind.MISSING_FOOTER] and ctx.facts["footer"] is False


def test_overlong_varint_is_stream_loss():
    good = rec(6, TS + IP + b"\x06\x00\x50\x12\x40")
    rows, ctx = run(read_binary, HEADER + good + b"\x86\x80\x80\x80\x01" + b"z" * 10)
    assert len(rows) == 1
    assert quarantine_reasons(ctx) == [R.UNKNOWN_RECORD_TYPE, R.UNREADABLE_DATA]
    assert kinds(ctx) == [DamageKind.BAD_RECORD_TYPE]


@settings(max_examples=200, deadline=None)
@given(tail=st.binary(max_size=300), chunk=st.integers(1, 40))
def test_arbitrary_bytes_after_header_never_raise(tail, chunk):
    rows, ctx = run(read_binary, HEADER + tail, chunk=chunk)
    assert all(0 <= r["port"] <= 65535 for r in rows)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(99, 3169), chunk=st.integers(1, 400))
def test_any_truncation_keeps_a_prefix(cut, chunk):
    data = (REAL / "masscan.bin").read_bytes()
    full, _ = run(read_binary, data, chunk=4096)
    rows, ctx = run(read_binary, data[:cut], chunk=chunk)
    assert rows == full[:len(rows)]
    assert ctx.quarantined <= 1
