"""Protocol modules on real fixtures, the registry sweep, and identify_table."""
from __future__ import annotations

import base64
import json
import pathlib

import pyarrow as pa
import pytest

from scanners import protocols
from scanners.protocols import (
    ftp,
    http,
    ike,
    kerberos,
    ldap,
    memcached,
    mssql,
    mysql,
    postgres,
    pptp,
    smtp,
    ssh,
    tls,
)
from scanners.protocols import identify as ident_mod
from scanners.protocols.identify import IDENTIFY_SCHEMA, identify_table, primary_banners
from scanners.protocols.rules import load_rules

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIXTURES / "real"
ZGRAB2 = FIXTURES / "zgrab2"
MAP = pa.map_(pa.string(), pa.string())


def masscan_banners(name: str = "masscan.ndjson") -> list[dict]:
    """Banner records of a masscan ndjson file, banner text as the clean rows hold it.

    masscan writes every byte as its own \\u00XX, so code points are bytes."""
    out = []
    for line in (REAL / name).read_text().splitlines():
        rec = json.loads(line)
        if rec["rec_type"] == "banner":
            raw = bytes(ord(c) for c in rec["data"]["banner"])
            out.append({"ip": rec["ip"], "port": rec["port"], "transport": rec["proto"],
                        "type": rec["data"]["service_name"],
                        "text": raw.decode("utf-8", "backslashreplace")})
    return out


def zgrab2(name: str) -> dict:
    doc = json.loads((ZGRAB2 / name).read_text())
    (module,) = doc["data"].values()
    return module["result"]


# -- registry sweep ---------------------------------------------------------------
# Where each registered protocol is exercised on real tool output. A protocol
# added to the registry without an entry here fails test_every_protocol_has_fixture_or_examples.
REAL_SOURCES = {
    "ssh": "masscan.ndjson, zgrab2 ssh-ssh.json",
    "http": "masscan.ndjson, zgrab2 http-http.json",
    "tls": "masscan.ndjson",
    "ftp": "masscan.ndjson, zgrab2 ftp-*.json",
    "smtp": "masscan.ndjson, zgrab2 smtp-*.json",
    "mysql": "zgrab2 mysql-*.json",
    "mssql": "zgrab2 mssql-2017-linux.json",
    "postgres": "zgrab2 postgres-*.json",
    "memcached": "masscan.ndjson, zgrab2 memcached-*.json",
}
# No capture in tests/fixtures: covered by rule examples and hand-built wire messages.
EXAMPLE_ONLY = {"pptp", "ike", "kerberos", "ldap"}
NO_RULES = {"tls", "kerberos"}


def test_every_protocol_has_fixture_or_examples():
    assert set(protocols.names()) == set(REAL_SOURCES) | EXAMPLE_ONLY
    for name in protocols.names():
        rules = load_rules(name)
        if name in NO_RULES:
            assert rules.rules == ()
        else:
            assert rules.examples > 0, name
        if name in EXAMPLE_ONLY and name not in NO_RULES:
            assert rules.examples >= 3, name


@pytest.mark.parametrize("name", protocols.names())
def test_module_contract(name):
    mod = protocols.module(name)
    assert mod.NAME == name
    for banner_type in protocols.info(name).banner_types:
        for banner in ("", None, b"\xff\xfe", "x"):
            parsed = mod.parse(banner, banner_type)
            assert isinstance(parsed.subject, str) and isinstance(parsed.public, str)
    assert protocols.by_banner_type(protocols.info(name).banner_types[0]).name == name


def test_registry_lookups():
    assert protocols.by_port(2222, "tcp").name == "ssh"
    assert protocols.by_port(11211, "udp").name == "memcached"
    assert protocols.by_port(500, "udp").name == "ike"
    assert protocols.by_port(500, "tcp") is None
    assert protocols.by_port(None, "tcp") is None
    assert protocols.by_banner_type("vnc") is None


# -- ssh ---------------------------------------------------------------------------
def test_ssh_real_fixtures():
    got = {b["ip"]: ssh.parse(b["text"]) for b in masscan_banners() if b["type"] == "ssh"}
    a, b, h7 = got["198.18.0.1"], got["198.18.0.2"], got["198.18.0.7"]
    assert (a.proto_version, a.software, a.comments) == ("2.0", "OpenSSH_9.2p1", "Debian-2+deb12u10")
    assert (b.software, b.comments, b.subject) == ("OpenSSH_9.2p1", None, "OpenSSH_9.2p1")
    assert h7.comments == "Debian-2+deb12u10 fixture-host-7"
    assert h7.public == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10 <comment>"
    z = ssh.parse(zgrab2("ssh-ssh.json")["server_id"]["raw"])
    assert (z.proto_version, z.software, z.comments) == ("2.0", "OpenSSH_7.2p2", "Ubuntu-4ubuntu2.4")


def test_ssh_rfc4253_details():
    v199 = ssh.parse("SSH-1.99-Cisco-1.25\r\n")
    assert v199.supports == (1, 2) and v199.software == "Cisco-1.25" and v199.comments is None
    assert ssh.parse("SSH-2.0-x").supports == (2,)
    assert ssh.parse("SSH-1.5-x").supports == (1,)
    pre = ssh.parse("Please wait\r\nSSH-2.0-OpenSSH_8.4p1 Debian-5\r\n")
    assert pre.valid and pre.subject == "OpenSSH_8.4p1 Debian-5\nos=Debian 11"
    bad = ssh.parse("HTTP/1.1 400 Bad Request")
    assert not bad.valid and bad.software is None


# -- ftp / smtp ------------------------------------------------------------------------
def test_ftp_real_fixtures():
    got = {b["ip"]: ftp.parse(b["text"]) for b in masscan_banners() if b["type"] == "ftp"}
    vs = got["198.18.0.2"]
    assert (vs.greeting_code, vs.subject, vs.auth_tls_code) == (220, "(vsFTPd 3.0.3)", 530)
    assert got["198.18.0.4"].auth_tls_code == 500
    z = ftp.parse(zgrab2("ftp-default.json")["banner"])
    assert (z.greeting_code, z.subject, z.auth_tls_code) == (220, "(vsFTPd 3.0.3)", None)


def test_ftp_multiline_greeting_is_one_reply():
    text = ("220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\r\n"
            "220-You are user number 1 of 50 allowed.\r\n"
            "220 You will be disconnected after 15 minutes of inactivity.\r\n234 AUTH TLS OK.\r\n")
    got = ftp.parse(text)
    assert len(got.replies) == 2 and len(got.replies[0].lines) == 3
    assert got.offers_tls
    assert got.subject.splitlines()[0] == "--------- Welcome to Pure-FTPd [privsep] [TLS] ----------"
    assert ftp.parse("220 alpha.example.org FTP server (Version 6.00LS) ready.").public == \
        "220 <host> FTP server (Version 6.00LS) ready."


def test_smtp_real_fixtures():
    (b,) = [b for b in masscan_banners() if b["type"] == "smtp"]
    got = smtp.parse(b["text"])
    assert (got.greeting_code, got.domain, got.subject) == (220, "localhost", "Python SMTP 1.4.3")
    assert got.extensions == ("8BITMIME", "HELP") and got.starttls_code == 454
    # the public form is the greeting only: the EHLO reply answers the scanner
    assert got.public == "220 <host> Python SMTP 1.4.3"
    z = zgrab2("smtp-ehlo.04.json")
    zg = smtp.parse(z["banner"] + z["ehlo"])
    assert zg.domain == "ba06a6536f7e" and zg.extensions == ("PIPELINING", "8BITMIME")
    assert "ba06a6536f7e" not in zg.public and "172.17.0.4" not in zg.public


def test_smtp_example_from_the_issue():
    assert smtp.parse("220 mx1.example.org ESMTP Postfix").public == "220 <host> ESMTP Postfix"
    assert smtp.parse("220 [192.0.2.1] ESMTP\r\n").public == "220 <ip> ESMTP"


# -- http / tls --------------------------------------------------------------------------
def test_http_header_block():
    block = next(b for b in masscan_banners() if b["type"] == "http" and b["ip"] == "198.18.0.3")
    got = http.parse(block["text"], "http")
    assert (got.status_code, got.server, got.subject) == (200, "nginx/1.22.1", "nginx/1.22.1")
    assert got.header_names[:3] == ("server", "date", "content-type")
    assert got.public == "HTTP/1.1 200 OK\nServer: nginx/1.22.1"
    assert http.parse("Fixture A &amp; x", "title").subject == ""
    z = zgrab2("http-http.json")["response"]["headers"]["server"][0]
    assert http.parse(z, "http.server").subject == "lighttpd/1.4.35"


def test_tls_masscan_summaries():
    got = {b["ip"]: b for b in masscan_banners() if b["type"] == "ssl"}
    a = tls.parse(got["198.18.0.1"]["text"], "ssl")
    assert (a.version, a.cipher, a.names) == ("TLS/1.1", 0xC014, ("fixture-a.test",))
    assert a.public == "TLS/1.1 cipher:0xc014, <host>"
    c = tls.parse(got["198.18.0.3"]["text"], "ssl")
    assert (c.alert_level, c.alert_description, c.public) == (2, 0x50, "ALERT(0x0250)")
    assert tls.parse("MIIBIjANBgkq", "X509").public == "<certificate>"


# -- databases, memcached ------------------------------------------------------------------
def test_mysql_versions_and_raw_packet():
    for name, version in (("mysql-5.5.json", "5.5.58"), ("mysql-8.0.json", "8.0.3-rc-log")):
        result = zgrab2(name)
        assert mysql.parse(result["server_version"]).version == version
        raw = base64.b64decode(result["raw_packets"][0])
        assert mysql.parse(raw).version == version
    maria = mysql.parse("5.5.5-10.3.34-MariaDB-0ubuntu0.20.04.1")
    assert (maria.version, maria.flavor) == ("10.3.34-MariaDB-0ubuntu0.20.04.1", "MariaDB")
    refused = mysql.parse(b"\x17\x00\x00\x00\xff\x6a\x04Host '192.0.2.9' is not allowed")
    assert (refused.error_code, refused.public) == (1130, "error 1130")


def test_mssql_and_postgres_from_zgrab2():
    assert mssql.parse(zgrab2("mssql-2017-linux.json")["version"]).subject == "14.0.3015"
    assert mssql.parse("8.00.2039").subject == "8.0.2039"
    ranges = {}
    for path in sorted(ZGRAB2.glob("postgres-*.json")):
        got = postgres.parse(zgrab2(path.name)["supported_versions"])
        ranges[path.name.split("-")[1]] = (got.protocol_min, got.protocol_max)
        assert got.public.startswith("FATAL protocol ")
    assert ranges == {"9.3": ("1.0", "3.0"), "9.4": ("1.0", "3.0"), "9.5": ("1.0", "3.0"),
                      "9.6": ("1.0", "3.0"), "10.1": ("2.0", "3.0")}
    wire = postgres.parse(b"E\x00\x00\x00\x40SFATAL\x00C28000\x00Mno pg_hba.conf entry for host "
                          b"\"192.0.2.1\", user \"alice\"\x00Fauth.c\x00L481\x00\x00")
    assert (wire.code, wire.file, wire.line) == ("28000", "auth.c", 481)
    assert wire.public == "FATAL 28000" and "alice" not in wire.public


def test_memcached_all_forms():
    real = [memcached.parse(b["text"]) for b in masscan_banners() if b["type"] == "memcached"]
    assert {r.version for r in real} == {"1.6.18", None}          # UDP's second banner is empty
    full = next(r for r in real if r.version)
    assert full.uptime is not None and full.public == "version=1.6.18"
    assert memcached.parse(zgrab2("memcached-1.6.38.json")["version"]).version == "1.6.38"


# -- binary protocols ----------------------------------------------------------------------
def _krb_error(realm: bytes, code: int) -> bytes:
    def tlv(tag, body):
        return bytes([tag, len(body)]) + body

    def ctx(n, body):
        return tlv(0xA0 + n, body)

    fields = (ctx(0, tlv(0x02, b"\x05")) + ctx(1, tlv(0x02, b"\x1e"))
              + ctx(4, tlv(0x18, b"20240101120000Z")) + ctx(5, tlv(0x02, b"\x01"))
              + ctx(6, tlv(0x02, bytes([code]))) + ctx(9, tlv(0x1B, realm))
              + ctx(10, tlv(0x30, ctx(0, tlv(0x02, b"\x02")))))
    return tlv(0x7E, tlv(0x30, fields))


def test_kerberos_krb_error():
    msg = _krb_error(b"CORP.EXAMPLE.COM", 25)
    for form in (msg, msg.hex(), len(msg).to_bytes(4, "big") + msg):
        got = kerberos.parse(form)
        assert (got.message, got.pvno, got.error_code) == ("KRB-ERROR", 5, 25)
        assert got.realm == "CORP.EXAMPLE.COM" and got.stime == "20240101120000Z"
        assert got.public == "krb5 KRB-ERROR KDC_ERR_PREAUTH_REQUIRED"
    assert kerberos.parse(msg[:-5]).valid is False                # truncated: outer length lies
    assert kerberos.parse(b"\x7e\x85\xff\xff\xff\xff\xff").valid is False


def test_pptp_zgrab2_banner_with_replacement_char():
    # zgrab2's JSON "Banner": the 0x9c length byte came back as U+FFFD.
    banner = ("\x00\ufffd\x00\x01\x1a+<M\x00\x02\x00\x00\x01\x00\x01\x00" + "\x00" * 8
              + "\x00\x01\x00\x01" + "TP-LINK_SMB_TL-ER604W(UN)".ljust(64, "\x00")
              + "TP-LINK".ljust(64, "\x00"))
    got = pptp.parse(banner)
    assert (got.valid, got.vendor, got.hostname, got.firmware) == (True, "TP-LINK", "TP-LINK_SMB_TL-ER604W(UN)", 1)
    assert got.public == "vendor=TP-LINK firmware=1"


def test_ike_header_vendor_ids_and_notify():
    notify = ike.parse("112233445566778899aabbccddeeff000b10050000000000000000280000000c000000010100000e")
    assert (notify.version, notify.exchange_type, notify.notify_types) == ("1.0", 5, (14,))
    assert "1122334455667788" not in notify.public               # cookies are per session
    assert ike.parse(b"\x00" * 27).valid is False


def test_ldap_root_dse_forms():
    text = "dnsHostName: dc01.corp.example.com\nsupportedCapabilities: 1.2.840.113556.1.4.800\n" \
           "domainControllerFunctionality: 7\nnamingContexts: DC=corp,DC=example,DC=com\n"
    got = ldap.parse(text)
    assert (got.directory, got.dc_functionality) == ("1", 7)
    assert "example" not in got.public and "corp" not in got.public
    assert ldap.parse('{"other_attributes": {"objectClass": ["OpenLDAProotDSE"]}}').object_classes == ("OpenLDAProotDSE",)
    assert ldap.parse("{" + "[" * 5000).subject == ""


# -- identify_table ----------------------------------------------------------------------------
def clean_rows_from_masscan() -> tuple[pa.Array, pa.Array, pa.Array, list[tuple]]:
    rows: dict[tuple, dict] = {}
    for line in (REAL / "masscan.ndjson").read_text().splitlines():
        rec = json.loads(line)
        key = (rec["ip"], rec["port"], rec["proto"])
        row = rows.setdefault(key, {})
        if rec["rec_type"] == "banner":
            raw = bytes(ord(c) for c in rec["data"]["banner"]).decode("utf-8", "backslashreplace")
            name = rec["data"]["service_name"]
            if name not in row or not row[name]:      # as the merge keeps the non-empty one
                row[name] = raw
    keys = sorted(rows)
    return (pa.array([k[1] for k in keys], pa.uint16()), pa.array([k[2] for k in keys]),
            pa.array([list(rows[k].items()) for k in keys], MAP), keys)


# Ground truth from tests/fixtures/real/README.md, written out by hand.
EXPECTED = {
    ("198.18.0.1", 22, "tcp"): ("ssh", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10", "OpenSSH", "9.2p1", "Debian 12"),
    ("198.18.0.2", 22, "tcp"): ("ssh", "SSH-2.0-OpenSSH_9.2p1", "OpenSSH", "9.2p1", None),
    ("198.18.0.7", 2222, "tcp"): ("ssh", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10 <comment>", "OpenSSH", "9.2p1", "Debian 12"),
    ("198.18.0.2", 21, "tcp"): ("ftp", "220 (vsFTPd 3.0.3)", "vsftpd", "3.0.3", None),
    ("198.18.0.4", 21, "tcp"): ("ftp", "220 pyftpdlib 1.5.7 ready.", "pyftpdlib", "1.5.7", None),
    ("198.18.0.5", 25, "tcp"): ("smtp", "220 <host> Python SMTP 1.4.3", "aiosmtpd", "1.4.3", None),
    ("198.18.0.1", 80, "tcp"): ("http", "nginx/1.22.1", "nginx", "1.22.1", None),
    ("198.18.0.3", 80, "tcp"): ("http", "nginx/1.22.1", "nginx", "1.22.1", None),
    ("198.18.0.6", 80, "tcp"): ("http", "SimpleHTTP/0.6 Python/3.11.2", "Python http.server", "3.11.2", None),
    ("198.18.0.1", 443, "tcp"): ("tls", "TLS/1.1 cipher:0xc014, <host>", None, None, None),
    ("198.18.0.3", 443, "tcp"): ("tls", "ALERT(0x0250)", None, None, None),
    ("198.18.0.3", 11211, "tcp"): ("memcached", "version=1.6.18", "memcached", "1.6.18", None),
    ("198.18.0.7", 11211, "tcp"): ("memcached", "version=1.6.18", "memcached", "1.6.18", None),
    ("198.18.0.3", 11211, "udp"): ("memcached", "version=1.6.18", "memcached", "1.6.18", None),
}


def test_identify_table_on_real_masscan_output():
    port, transport, banners, keys = clean_rows_from_masscan()
    table = identify_table(port, transport, banners)
    assert table.schema == IDENTIFY_SCHEMA and table.num_rows == len(keys) == 14
    got = {k: r for k, r in zip(keys, table.to_pylist())}
    assert set(got) == set(EXPECTED)
    for key, (protocol, public, product, version, release) in EXPECTED.items():
        row = got[key]
        assert (row["protocol"], row["banner_public"], row["product"], row["version"],
                row["os_release"]) == (protocol, public, product, version, release), key
    for row in table.to_pylist():
        assert "198.18." not in row["banner_public"] and "fixture-" not in row["banner_public"]


def test_each_distinct_key_is_identified_once(monkeypatch):
    calls = []
    real = ident_mod.describe
    monkeypatch.setattr(ident_mod, "describe", lambda *a: calls.append(a) or real(*a))
    ident_mod._describe_cached.cache_clear()
    pool = [[("ssh", "SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5")], [("http.server", "nginx")],
            [("title", "t"), ("http.server", "nginx")], None, []]
    maps = [pool[i % 5] for i in range(500)]
    ports = [22 if i % 3 else 80 for i in range(500)]
    table = identify_table(pa.array(ports, pa.int32()), pa.array(["tcp"] * 500),
                           pa.array(maps, MAP))
    ptype, ptext = primary_banners(pa.array(maps, MAP))
    distinct = set(zip(ports, ptype.to_pylist(), ptext.to_pylist()))
    assert len(calls) == len(distinct) < 20
    assert table.num_rows == 500
    assert table.column("product").to_pylist()[:2] == ["OpenSSH", "nginx"]
    # Another bucket of the same week: its banners were seen, nothing is identified again,
    # and the answer is the same table.
    again = identify_table(pa.array(ports[::-1], pa.int32()), pa.array(["tcp"] * 500),
                           pa.array(maps[::-1], MAP))
    assert len(calls) == len(distinct)
    assert again.to_pylist() == table.to_pylist()[::-1]


def test_long_banners_are_not_remembered(monkeypatch):
    calls = []
    real = ident_mod.describe
    monkeypatch.setattr(ident_mod, "describe", lambda *a: calls.append(a) or real(*a))
    ident_mod._describe_cached.cache_clear()
    long = "HTTP/1.1 200 OK\r\nServer: nginx\r\n" + "x" * (ident_mod._CACHE_TEXT + 1)
    maps = [[("http.server", long)]] * 3
    for _ in range(2):
        identify_table(pa.array([80] * 3, pa.int32()), pa.array(["tcp"] * 3), pa.array(maps, MAP))
    assert len(calls) == 2                        # once per call: never cached
    assert ident_mod._describe_cached.cache_info().currsize == 0


def test_identify_table_edge_cases():
    empty = identify_table(pa.array([], pa.int32()), pa.array([], pa.string()), pa.array([], MAP))
    assert empty.num_rows == 0 and empty.schema == IDENTIFY_SCHEMA
    banners = pa.array([[("vnc", "RFB 003.008")], [("ssh", "SSH-2.0-dropbear_2019.78")], None], MAP)
    sliced = identify_table(pa.array([5900, 22, 22]).slice(1), pa.array(["tcp"] * 3).slice(1),
                            banners.slice(1))
    assert sliced.column("product").to_pylist() == ["Dropbear SSH", None]
    assert sliced.column("protocol").to_pylist() == ["ssh", "ssh"]
    chunked = identify_table(pa.chunked_array([[5900], [22]]), pa.chunked_array([["tcp"], ["tcp"]]),
                             pa.chunked_array([banners.slice(0, 1), banners.slice(1, 1)]))
    assert chunked.column("banner_public").to_pylist() == ["RFB 003.008", "SSH-2.0-dropbear_2019.78"]
    assert chunked.column("protocol").to_pylist() == [None, "ssh"]
    with pytest.raises(ValueError):
        identify_table(pa.array([1]), pa.array([]), pa.array([], MAP))
