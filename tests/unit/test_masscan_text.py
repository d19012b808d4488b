"""masscan -oL and -oG readers against the real fixtures and hostile input."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.schema import DamageKind, QuarantineReason as R
from scanners.base import ReadContext
from scanners.formats import masscan_binary, masscan_xml
from scanners.formats.masscan_text import read_grepable, read_list, sniff_grepable, sniff_list
from tests.helpers import quarantine_reasons, read_in_chunks

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
TITLE_A = 'Fixture A &amp; "quoted" café'.encode("utf-8")
# tests/fixtures/real/README.md: 13 open TCP ports (+ 198.18.0.3:11211/udp).
OPEN_TCP = {("198.18.0.1", 22), ("198.18.0.1", 80), ("198.18.0.1", 443),
            ("198.18.0.2", 21), ("198.18.0.2", 22),
            ("198.18.0.3", 80), ("198.18.0.3", 443), ("198.18.0.3", 11211),
            ("198.18.0.4", 21), ("198.18.0.5", 25), ("198.18.0.6", 80),
            ("198.18.0.7", 2222), ("198.18.0.7", 11211)}


def run(reader, data: bytes, chunk: int = 64, batch_rows: int = 5):
    ctx = ReadContext(source="f", batch_rows=batch_rows)
    return read_in_chunks(reader, data, ctx, chunk).to_pylist(), ctx


def kinds(ctx):
    return [d.kind for d in ctx.damages]


def clean(path: str, reader):
    rows, ctx = run(reader, (REAL / path).read_bytes())
    assert ctx.quarantined == 0 and ctx.damages == [] and ctx.facts["footer"] is True
    return rows, ctx


# -- -oL ----------------------------------------------------------------------

def test_list_fixture_counts_and_ground_truth():
    rows, _ = clean("masscan.list", read_list)
    status = [r for r in rows if r["status"] is not None]
    banners = [r for r in rows if r["banner"] is not None]
    assert (len(status), len(banners)) == (13, 20)
    assert {(r["ip"], r["port"]) for r in status} == OPEN_TCP
    assert all(r["status"] == "open" and r["transport"] == "tcp" for r in status)
    assert all(r["service"] is None and r["reason"] is None and r["ttl"] is None for r in status)
    assert all(r["status"] is None and r["service"] for r in banners)
    first = rows[0]
    assert (first["ip"], first["port"], first["source_offset"]) == ("198.18.0.3", 11211, 9)
    assert first["timestamp"].timestamp() == 1795567020


def test_list_banner_values_are_original_bytes():
    rows, _ = clean("masscan.list", read_list)
    by = {(r["ip"], r["port"], r["service"]): r["banner"] for r in rows if r["banner"] is not None}
    assert by[("198.18.0.1", 80, "title")] == TITLE_A
    assert by[("198.18.0.3", 443, "ssl")] == b" ALERT(0x0250) "       # both spaces kept
    assert by[("198.18.0.7", 11211, "memcached")].endswith(b"version=1.6.18 ")
    assert by[("198.18.0.4", 21, "ftp")] == (b'220 pyftpdlib 1.5.7 ready.\n'
                                             b'500 Command "AUTH" not understood.')
    assert by[("198.18.0.1", 80, "http")].endswith(b"Accept-Ranges: bytes\r\n\r")


def test_excluded_list_has_nothing_for_the_excluded_host():
    rows, _ = clean("masscan_excluded.list", read_list)
    assert sum(r["status"] == "open" for r in rows) == 10
    assert sum(r["banner"] is not None for r in rows) == 15
    assert "198.18.0.3" not in {r["ip"] for r in rows}


def test_readscan_list_has_the_memcached_udp_pair():
    rows, _ = clean("masscan_readscan.list", read_list)
    assert len(rows) == 37
    udp = [(r["status"], r["banner"]) for r in rows if r["transport"] == "udp"]
    assert len(udp) == 4
    assert udp[0][1].startswith(b"uptime=46 ") and udp[2] == (None, b"")
    assert udp[1] == udp[3] == ("open", None)


def test_list_missing_footer_keeps_records():
    data = (REAL / "masscan.list").read_bytes()
    rows, ctx = run(read_list, data[:data.rindex(b"# end")])
    assert len(rows) == 33 and ctx.facts["footer"] is False
    assert kinds(ctx) == [DamageKind.MISSING_FOOTER]


def test_list_cut_mid_line():
    data = (REAL / "masscan.list").read_bytes()
    cut = data.index(b"open tcp 22 198.18.0.2") + 10
    rows, ctx = run(read_list, data[:cut])
    assert len(rows) == 2
    assert quarantine_reasons(ctx) == [R.TRUNCATED_RECORD]
    assert kinds(ctx) == [DamageKind.PARTIAL_LAST_RECORD, DamageKind.MISSING_FOOTER]


def test_list_bad_lines_get_their_reason():
    data = (b"#masscan\n"
            b"open tcp 80 10.0.0.1 1795567020\n"
            b"open tcp 99999 10.0.0.1 1795567020\n"
            b"open tcp 80 10.0.0.1 17955x\n"
            b"open xtp 80 10.0.0.1 1795567020\n"
            b"ajar tcp 80 10.0.0.1 1795567020\n"
            b"banner tcp 80 10.0.0.1\n"
            b"open tcp 80 10.0.0.1 1795567020 extra\n"
            b"open tcp 80 \xff\xfe 1795567020\n"
            b"closed udp 53 10.0.0.2 1795567021\n"
            b"# end\n")
    rows, ctx = run(read_list, data)
    assert [(r["ip"], r["status"], r["transport"]) for r in rows] == [
        ("10.0.0.1", "open", "tcp"), ("10.0.0.2", "closed", "udp")]
    assert quarantine_reasons(ctx) == [R.INVALID_PORT, R.INVALID_TIMESTAMP, R.INVALID_TRANSPORT,
                                       R.MALFORMED_RECORD, R.MISSING_FIELD, R.MALFORMED_RECORD, R.INVALID_IP]
    assert ctx.damages == []


def test_empty_file_is_not_damaged():
    rows, ctx = run(read_list, b"")
    assert rows == [] and ctx.damages == [] and ctx.facts["footer"] is None


# -- -oG ----------------------------------------------------------------------

def test_grepable_fixture_counts_version_and_timestamps():
    rows, ctx = clean("masscan.grepable", read_grepable)
    status = [r for r in rows if r["status"] is not None]
    banners = [r for r in rows if r["banner"] is not None]
    assert (len(status), len(banners)) == (15, 22)
    assert ctx.facts["tool_version"] == "1.3.2"
    assert {(r["ip"], r["port"]) for r in status if r["transport"] == "tcp"} == OPEN_TCP
    assert [(r["ip"], r["port"]) for r in status if r["transport"] == "udp"] == [
        ("198.18.0.3", 11211)] * 2
    assert {r["timestamp"].timestamp() for r in rows} == {1795567027}
    assert all(r["tool_version"] == "1.3.2" for r in rows)


def test_grepable_title_and_transport_rule_on_fixture():
    rows, _ = clean("masscan_readscan.grepable", read_grepable)
    by = {(r["ip"], r["port"], r["service"]): r for r in rows if r["banner"] is not None}
    assert by[("198.18.0.1", 80, "title")]["banner"] == TITLE_A
    # 198.18.0.3:11211 has tcp AND udp status lines, so by the documented
    # rule its (really udp) memcached banners are labelled tcp.
    mem = [r for r in rows if r["ip"] == "198.18.0.3" and r["port"] == 11211 and r["banner"] is not None]
    assert [r["banner"][:10] for r in mem] == [b"uptime=46 ", b"", b"uptime=48 "]
    assert {r["transport"] for r in mem} == {"tcp"}


G_HEAD = b"# Masscan 1.3.2 scan initiated Wed Nov 25 00:37:07 2026\n"
G_END = b"# Masscan done at Wed Nov 25 00:37:14 2026\n"


def test_grepable_banner_timestamp_and_transport_rules():
    data = (G_HEAD
            + b"Host: 10.0.0.9 ()\tPort: 22\tService: ssh\tBanner: before-any-status\n"
            + b"Host: 10.0.0.1 ()\tPort: 161\tService: snmp\tBanner: udp-first\n"
            + b"Timestamp: 1795567100\tHost: 10.0.0.1 ()\tPorts: 161/open/udp//snmp//\n"
            + b"Timestamp: 1795567200\tHost: 10.0.0.2 ()\tPorts: 80/open/tcp//http//\n"
            + b"Host: 10.0.0.1 ()\tPort: 161\tService: snmp\tBanner: udp-after\n"
            + b"Host: 10.0.0.3 ()\tPort: 8080\tService: http\tBanner: no-status\\x0d\\x0a\n"
            + b"Host: 10.0.0.2 ()\tPort: 80\tService: http\tBanner: tcp\n"
            + G_END)
    rows, ctx = run(read_grepable, data)
    got = {r["banner"]: (r["transport"], int(r["timestamp"].timestamp())) for r in rows
           if r["banner"] is not None}
    header_ts = 1795567027  # Wed Nov 25 00:37:07 2026 UTC
    assert got == {b"before-any-status": ("tcp", header_ts),
                   b"udp-first": ("udp", header_ts),
                   b"udp-after": ("udp", 1795567100),
                   b"no-status\r\n": ("tcp", 1795567200),   # latest seen so far
                   b"tcp": ("tcp", 1795567200)}
    assert ctx.quarantined == 0 and ctx.facts["footer"] is True


def test_grepable_udp_and_tcp_status_make_banner_tcp():
    data = (G_HEAD
            + b"Host: 10.0.0.1 ()\tPort: 53\tService: dns-ver\tBanner: x\n"
            + b"Timestamp: 1795567100\tHost: 10.0.0.1 ()\tPorts: 53/open/udp//domain//\n"
            + b"Timestamp: 1795567101\tHost: 10.0.0.1 ()\tPorts: 53/open/tcp//domain//\n")
    rows, ctx = run(read_grepable, data)
    assert [r["transport"] for r in rows if r["banner"] is not None] == ["tcp"]
    assert kinds(ctx) == [DamageKind.MISSING_FOOTER]


def test_grepable_without_any_timestamp_source_quarantines():
    data = (b"Host: 10.0.0.1 ()\tPort: 22\tService: ssh\tBanner: x\n"
            b"Host: 10.0.0.1 ()\tPorts: 22/open/tcp////\n" + G_END)
    rows, ctx = run(read_grepable, data)
    assert rows == []
    assert quarantine_reasons(ctx) == [R.INVALID_TIMESTAMP, R.INVALID_TIMESTAMP]


def test_grepable_missing_footer_and_bad_lines():
    data = (REAL / "masscan.grepable").read_bytes()
    data = (data[:data.rindex(b"# Masscan done")]
            + b"Host: 1.2.3.4 ()\tgarbage\nHost: 1.2.3.4 ()\tPorts: x/open/tcp\n")
    rows, ctx = run(read_grepable, data)
    assert len(rows) == 37
    assert quarantine_reasons(ctx) == [R.MALFORMED_RECORD, R.INVALID_PORT]
    assert kinds(ctx) == [DamageKind.MISSING_FOOTER]


# -- sniffing -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["masscan.list", "masscan.grepable", "masscan.xml", "masscan.bin",
                                  "masscan.json", "masscan.ndjson", "nmap_sV.gnmap", "zmap_p22.csv"])
def test_sniffers_are_precise(name):
    head = (REAL / name).read_bytes()[:65536]
    assert sniff_list(head) == name.endswith(".list")
    assert sniff_grepable(head) == (name == "masscan.grepable")
    assert masscan_xml.sniff_xml(head) == (name == "masscan.xml")
    assert masscan_binary.sniff_binary(head) == (name == "masscan.bin")


# -- hostile ------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(tail=st.binary(max_size=400), chunk=st.integers(1, 50))
def test_list_arbitrary_bytes_never_raise(tail, chunk):
    run(read_list, b"#masscan\nopen tcp 80 10.0.0.1 1795567020\n" + tail, chunk=chunk)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.sampled_from([
    b"Timestamp: 1795567100\tHost: 10.0.0.1 ()\tPorts: 161/open/udp//snmp//",
    b"Host: 10.0.0.1 ()\tPort: 161\tService: snmp\tBanner: a\\x00b",
    b"Timestamp: 1795567100\tHost: 10.0.0.1 ()\tPorts: 161/open/tcp//snmp//",
    b"# Masscan done at Wed Nov 25 00:37:14 2026", b"\t", b"Host: ", b"",
]) | st.binary(max_size=60), max_size=12), chunk=st.integers(1, 50))
def test_grepable_arbitrary_lines_never_raise(lines, chunk):
    rows, _ = run(read_grepable, G_HEAD + b"\n".join(lines), chunk=chunk)
    assert all(r["transport"] in ("tcp", "udp") for r in rows)


def test_chunking_does_not_change_rows():
    data = (REAL / "masscan.grepable").read_bytes()
    a, _ = run(read_grepable, data, chunk=1)
    b, _ = run(read_grepable, data, chunk=1 << 20, batch_rows=1000)
    assert a == b
