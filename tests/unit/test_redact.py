"""The public form: what is redacted, what is kept, on real fixtures and hostile text."""
from __future__ import annotations

import json
import pathlib

import pytest

from scanners import protocols
from scanners.protocols.identify import describe
from scanners.protocols.redact import PLACEHOLDERS, redact, redact_host
from scanners.protocols.rules import MAX_PARSE_CHARS

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"

# Host-identifying strings that occur in the fixtures and must never be public.
SECRETS = ("198.18.", "172.17.", "fixture-a.test", "fixture-host-7", "localhost",
           "ba06a6536f7e", "develooper.com", "1795566", "Nov 2026", "6b062d8e")


@pytest.mark.parametrize("text,public", [
    ("220 mx1.example.org ESMTP Postfix", "220 <host> ESMTP Postfix"),
    ("Hi Unknown [172.17.0.4]", "Hi Unknown [<ip>]"),
    ("from ::ffff:192.0.2.1 and fe80::1%eth0 and [2001:db8::7]", "from <ip> and <ip> and [<ip>]"),
    ("literal IPv6:2001:db8::1", "literal IPv6:<ip>"),
    ("mail Tim.Kosse@gmx.de or <a@[192.0.2.5]>", "mail <email> or <<email>>"),
    ("Date: Wed, 25 Nov 2026 00:36:41 GMT", "Date: <date>"),
    ("ready at  Mon, 1 Jan 2024 10:00:00 +0100", "ready at  <date>"),
    ("Sun Nov  6 08:49:37 1994 x", "<date> x"),
    ("at 2026-11-25T00:38:32.735+0000.", "at <date>."),
    ("Local time is now 10:50. Server port: 21.", "Local time is now <date>. Server port: 21."),
    ("mac 02:00:00:00:00:01 cisco 0000.0c12.3456", "mac <mac> cisco <mac>"),
    ("uptime=11 time=1795566999 version=1.6.18 ", "uptime=<n> time=<n> version=1.6.18"),
    ("id 550e8400-e29b-41d4-a716-446655440000", "id <serial>"),
    ('ETag: "6b062d8e-58"', 'ETag: "<serial>-58"'),
    ("1.2.3.4.static.isp.example.net says hi", "<host> says hi"),
    ("ip-10-0-0-1 ready", "<host> ready"),
    ("localhost.localdomain ESMTP", "<host> ESMTP"),
    # four octets are an address even as a version: over-redaction, never a leak
    ("nginx/1.2.3.4", "nginx/<ip>"),
])
def test_redacts(text, public):
    assert redact(text) == public


@pytest.mark.parametrize("token", [
    "Postfix", "ESMTP", "OpenSSH_5.3", "Apache/2.2.22 (Ubuntu)",
    "Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready", "OpenSSL/1.0.2k-fips",
    "ProFTPD 1.3.5e Server (Debian)", "FreeBSD-20080901", "Debian-2+deb12u10", "(vsFTPd 3.0.3)",
    "Boa/0.94.14rc21", "ASP.NET", "GET /index.html", "Jetty(9.4.43.v20210629)", "cipher:0xc014",
    "SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.4", "MariaDB-0ubuntu0.20.04.1", "Python/3.11.2",
])
def test_keeps_product_tokens(token):
    assert redact(token) == token


def test_hostile_idn_long_nested():
    assert redact("Welcome to bücher.example and 例え.テスト") == "Welcome to <host> and <host>"
    assert redact("xn--bcher-kva.example") == "<host>"
    nested = "see http://user:pw@www.example.com:8080/p?next=http://10.0.0.1/&to=bob@mail.example.org"
    out = redact(nested)
    assert "example" not in out and "10.0.0.1" not in out and "bob" not in out
    long_label = "a" * 63 + "." + "b" * 63 + ".example"
    assert redact(f"host {long_label} ok") == "host <host> ok"
    assert redact("a." * 1000 + "com") == "<host>"
    huge = "x" * (MAX_PARSE_CHARS + 10)
    assert redact(huge).endswith("<truncated>") and len(redact(huge)) == MAX_PARSE_CHARS + 11
    # A host name split by the cut is dropped, not published half.
    split = "y" * (MAX_PARSE_CHARS - 8) + " mail.example.org rest"
    assert redact(split) == "y" * (MAX_PARSE_CHARS - 8) + "<truncated>"
    assert redact("a\x00b\x1bc\r\nd") == "a\\u0000b\\u001bc\nd"


def test_redact_host_positions():
    assert redact_host("mx1") == "<host>"
    assert redact_host("[192.0.2.1]") == "<ip>"
    assert redact_host("[IPv6:2001:db8::1]") == "<ip>"


def test_idempotent_on_every_case_above():
    for text in ["220 mx1.example.org ESMTP Postfix", "uptime=11 time=1795566999 version=1.6.18 ",
                 "Date: Wed, 25 Nov 2026 00:36:41 GMT", "from ::ffff:192.0.2.1", "a\x00b"]:
        once = redact(text)
        assert redact(once) == once
        assert set(PLACEHOLDERS) >= {p for p in PLACEHOLDERS if p in once}


def _masscan_texts():
    for path in sorted((FIXTURES / "real").glob("masscan*.ndjson")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("rec_type") == "banner":
                raw = bytes(ord(c) for c in rec["data"]["banner"]).decode("utf-8", "backslashreplace")
                yield rec["port"], rec["proto"], rec["data"]["service_name"], raw


def _zgrab2_texts():
    picks = {"ftp": ("banner",), "smtp": ("banner", "ehlo", "help", "quit", "helo"),
             "mysql": ("server_version",), "mssql": ("version",), "memcached": ("version",),
             "postgres": ("supported_versions",)}
    for path in sorted((FIXTURES / "zgrab2").glob("*.json")):
        doc = json.loads(path.read_text())
        for module, body in doc["data"].items():
            result = body.get("result") or {}
            for key in picks.get(module, ()):
                if isinstance(result.get(key), str):
                    yield module, result[key]
            if module == "ssh":
                yield "ssh", result["server_id"]["raw"]
            if module == "http":
                yield "http.server", result["response"]["headers"]["server"][0]


def test_no_fixture_secret_survives():
    seen = 0
    for port, transport, banner_type, text in _masscan_texts():
        public = describe(port, transport, banner_type, text)[1]
        for secret in SECRETS:
            assert secret not in public, (banner_type, public)
        seen += 1
    for banner_type, text in _zgrab2_texts():
        proto = protocols.by_banner_type(banner_type)
        public = protocols.module(proto.name).parse(text, banner_type).public
        generic = redact(text)
        for secret in SECRETS:
            assert secret not in public, (banner_type, public)
            assert secret not in generic, (banner_type, generic)
        seen += 1
    assert seen > 60


def test_generic_redaction_of_zgrab2_smtp_help():
    help_text = next(t for bt, t in _zgrab2_texts() if bt == "smtp" and "develooper" in t)
    out = redact(help_text)
    assert "<email>" in out and "<host>" in out and "develooper" not in out


def test_country_code_domains_that_look_like_file_extensions_are_redacted():
    from scanners.protocols.redact import redact
    for banner in ("220 mx3.lumenzephyr.pl FTP server ready.", "220-Welcome to srv8.harbornimbus.pl",
                   "220 mail.example.com.py ESMTP"):
        out = redact(banner)
        assert ".pl" not in out and ".py" not in out, out
