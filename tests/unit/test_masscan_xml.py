"""masscan -oX reader against the real fixtures and hostile input."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.schema import DamageKind, QuarantineReason as R
from scanners.base import ReadContext
from scanners.formats.masscan_xml import read_xml, sniff_xml
from tests.helpers import quarantine_reasons, read_in_chunks

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
TITLE_A = 'Fixture A &amp; "quoted" café'.encode("utf-8")
HEAD = (b'<?xml version="1.0"?>\r\n<!-- masscan v1.0 scan -->\r\n'
        b'<nmaprun scanner="masscan" start="1795567013" version="1.0-BETA"  xmloutputversion="1.03">\r\n'
        b'<scaninfo type="syn" protocol="tcp" />\r\n')
TAIL = (b'<runstats>\r\n<finished time="1795567020" timestr="2026-11-25 00:37:00" elapsed="7" />\r\n'
        b'<hosts up="13" down="0" total="13" />\r\n</runstats>\r\n</nmaprun>\r\n')


def host(banner: bytes | None = None, ip=b"10.0.0.1", port=b"80", ts=b"1795567013") -> bytes:
    port_el = (b'<state state="open" reason="syn-ack" reason_ttl="64"/>' if banner is None else
               b'<state state="open" reason="response" reason_ttl="63" />'
               b'<service name="http" banner="' + banner + b'"></service>')
    return (b'<host endtime="' + ts + b'"><address addr="' + ip + b'" addrtype="ipv4"/><ports>'
            b'<port protocol="tcp" portid="' + port + b'">' + port_el + b'</port></ports></host>\r\n')


def run(data: bytes, chunk: int = 64):
    ctx = ReadContext(source="f", batch_rows=5)
    return read_in_chunks(read_xml, data, ctx, chunk).to_pylist(), ctx


def test_fixtures_parse_completely():
    for name in ("masscan.xml", "masscan_readscan.xml"):
        rows, ctx = run((REAL / name).read_bytes())
        assert ctx.quarantined == 0 and ctx.damages == [] and ctx.facts["footer"] is True
        status = [r for r in rows if r["status"] is not None]
        banners = [r for r in rows if r["banner"] is not None]
        assert (len(status), len(banners)) == (15, 22)
        assert sum(r["transport"] == "tcp" for r in status) == 13
        assert all(r["reason"] == "syn-ack" and r["ttl"] == 64 for r in status if r["transport"] == "tcp")
        assert all(r["reason"] is None and r["status"] is None and r["service"] for r in banners)
        assert ctx.facts.get("tool_version") is None and ctx.facts["nmaprun_version"] == "1.0-BETA"


def test_title_and_memcached_udp_pair():
    rows, _ = run((REAL / "masscan.xml").read_bytes())
    title = [r["banner"] for r in rows if (r["ip"], r["port"], r["service"]) == ("198.18.0.1", 80, "title")]
    assert title == [TITLE_A]
    udp = [(r["status"], r["reason"], r["ttl"], r["banner"]) for r in rows if r["transport"] == "udp"]
    assert [u[:3] for u in udp] == [(None, None, 64), ("open", "none", 0)] * 2
    assert udp[0][3] == b"uptime=25 time=1795567013 version=1.6.18 " and udp[2][3] == b""
    first = rows[0]
    assert first["source_offset"] == 183 and first["timestamp"].timestamp() == 1795567013


def test_entities_and_backslash_escapes_both_undone():
    rows, ctx = run(HEAD + host(b"a &amp; b &lt;&#233;&#x41;&bogus; \\x22q\\x22 caf\\xc3\\xa9") + TAIL)
    assert ctx.quarantined == 0
    assert rows[0]["banner"] == b'a & b <\xc3\xa9A&bogus; "q" caf\xc3\xa9'
    assert rows[0]["ttl"] == 63 and rows[0]["status"] is None


def test_missing_footer_and_cut_host():
    data = HEAD + host() + host(b"x", ip=b"10.0.0.2") + host(ip=b"10.0.0.3")
    rows, ctx = run(data)
    assert [r["ip"] for r in rows] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [d.kind for d in ctx.damages] == [DamageKind.MISSING_FOOTER]
    rows, ctx = run(data[:-40])
    assert [r["ip"] for r in rows] == ["10.0.0.1", "10.0.0.2"]
    assert quarantine_reasons(ctx) == [R.TRUNCATED_RECORD]
    assert [d.kind for d in ctx.damages] == [DamageKind.PARTIAL_LAST_RECORD, DamageKind.MISSING_FOOTER]


def test_last_host_without_crlf_is_complete():
    rows, ctx = run(HEAD + host().rstrip(b"\r\n"))
    assert len(rows) == 1 and quarantine_reasons(ctx) == []
    assert [d.kind for d in ctx.damages] == [DamageKind.MISSING_FOOTER]


def test_foreign_layout_and_bad_values_are_quarantined():
    pretty = b'<host endtime="1795567013">\r\n  <address addr="10.0.0.9" addrtype="ipv4"/>\r\n</host>\r\n'
    data = (HEAD + host(port=b"70000") + host(ts=b"-1") + host(ip=b"") + pretty
            + host(b"\\x" + b"41" * 2, ip=b"10.0.0.5") + TAIL)
    rows, ctx = run(data)
    assert [(r["ip"], r["banner"]) for r in rows] == [("10.0.0.5", b"A41")]
    assert quarantine_reasons(ctx) == [R.INVALID_PORT, R.INVALID_TIMESTAMP, R.INVALID_IP,
                                       R.MALFORMED_RECORD, R.MALFORMED_RECORD, R.MALFORMED_RECORD]
    assert ctx.damages == [] and ctx.facts["footer"] is True


def test_sniff_rejects_nmap_xml():
    assert sniff_xml((REAL / "masscan_readscan.xml").read_bytes()[:4096])
    assert not sniff_xml((REAL / "nmap_sV.xml").read_bytes()[:65536])
    assert not sniff_xml(b'<nmaprun scanner="masscan">')  # no XML declaration


@settings(max_examples=150, deadline=None)
@given(tail=st.lists(st.sampled_from([host(), host(b"\\x00&amp;"), TAIL, b"\r\n", b"<host", b"&#99999999;"])
                     | st.binary(max_size=80), max_size=10),
       chunk=st.integers(1, 64))
def test_arbitrary_bytes_never_raise(tail, chunk):
    rows, _ = run(HEAD + b"".join(tail), chunk=chunk)
    assert all(r["timestamp"] is not None and r["port"] == 80 for r in rows)
