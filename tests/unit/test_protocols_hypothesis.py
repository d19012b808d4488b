"""Arbitrary input never raises, and every parser reads only the first
MAX_PARSE_CHARS characters (the bound that keeps hostile 1 MB banners cheap)."""
from __future__ import annotations

import ipaddress

import pyarrow as pa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scanners import protocols
from scanners.protocols.identify import IDENTIFY_SCHEMA, identify_table
from scanners.protocols.redact import redact
from scanners.protocols.rules import MAX_PARSE_CHARS, load_rules

PARSERS = [(name, bt) for name in protocols.names() for bt in protocols.info(name).banner_types]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text that looks like banners: protocol punctuation and digits, plus anything.
BANNERISH = st.text(alphabet=st.sampled_from(list("SH-2.0_ :@[]()/\r\n\x00\\x1a+<M=;%")
                                             + list("0123456789abcdefABCDEF")), max_size=300)
ANY_TEXT = st.one_of(st.text(max_size=300), BANNERISH)


def _check(name, banner_type, banner):
    parsed = protocols.module(name).parse(banner, banner_type)
    assert isinstance(parsed.subject, str) and isinstance(parsed.public, str)
    load_rules(name).identify(parsed.subject)
    return parsed


@SETTINGS
@given(st.sampled_from(PARSERS), ANY_TEXT)
def test_parsers_never_raise_on_text(parser, text):
    _check(*parser, text)


@SETTINGS
@given(st.sampled_from(PARSERS), st.binary(max_size=400))
def test_parsers_never_raise_on_bytes(parser, data):
    _check(*parser, data)


@SETTINGS
@given(st.sampled_from(PARSERS), st.text(min_size=1, max_size=8), st.text(max_size=40),
       st.text(max_size=40))
def test_parsers_read_only_the_first_chars(parser, unit, tail1, tail2):
    prefix = (unit * (MAX_PARSE_CHARS // len(unit) + 1))[:MAX_PARSE_CHARS]
    assert _check(*parser, prefix + tail1) == _check(*parser, prefix + tail2)


@SETTINGS
@given(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_redact_reads_only_the_first_chars(unit, tail1, tail2):
    prefix = (unit * (MAX_PARSE_CHARS // len(unit) + 1))[:MAX_PARSE_CHARS]
    assert redact(prefix + tail1) == redact(prefix + tail2)


@SETTINGS
@given(ANY_TEXT)
def test_redact_never_raises_and_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@SETTINGS
@given(st.ip_addresses(), st.sampled_from(["", " ", ",", ";", ":", "(", "[", "<", "=", "@", "-", "\n"]),
       st.sampled_from(["", " ", ",", ";", ":", ")", "]", ">", ".", "@", "-", "\n", "x", "z"]))
def test_ip_literals_never_survive(ip, left, right):
    assume(not (ip.version == 6 and ip.is_unspecified))    # "::" tells nothing and stays
    out = redact(f"seen {left}{ip}{right} ok")
    assert str(ip) not in out and "<ip>" in out
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        assert str(ip.ipv4_mapped) not in out


@SETTINGS
@given(st.emails())
def test_emails_never_survive(email):
    out = redact(f"contact {email} now")
    assert email not in out and "<email>" in out


ADVERSARIAL = ["a.", "1.", ":", "0:", "a-", "x@", "1.2.3.4.", "220-x\n", "SSH-", "\x00", "ÿ",
               "Mon, 1 Jan ", "[::", "IPv6:", "a" * 63 + ".", "=", "A1b2", "uptime=1 ", "{[", "\x7e\x84"]


def test_one_megabyte_inputs_are_read_to_the_limit_only():
    for unit in ADVERSARIAL:
        big = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
        clipped = big[:MAX_PARSE_CHARS]
        assert redact(big) == redact(clipped + "!")
        for name, banner_type in PARSERS:
            mod = protocols.module(name)
            assert mod.parse(big, banner_type) == mod.parse(clipped, banner_type), (name, unit)
            mod.parse(big.encode("utf-8", "surrogatepass"), banner_type)


MAP = pa.map_(pa.string(), pa.string())
TYPES = st.sampled_from(["ssh", "http.server", "http", "title", "ssl", "X509", "ftp", "smtp",
                         "mysql", "mssql", "postgres", "memcached", "pptp", "isakmp", "kerberos",
                         "ldap", "vnc", "unknown"])
ROW = st.one_of(st.none(), st.lists(st.tuples(TYPES, st.one_of(st.none(), ANY_TEXT)), max_size=4))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 65535), st.sampled_from(["tcp", "udp", "sctp", None]), ROW),
                max_size=30))
def test_identify_table_never_raises(rows):
    table = identify_table(pa.array([r[0] for r in rows], pa.int32()),
                           pa.array([r[1] for r in rows], pa.string()),
                           pa.array([r[2] for r in rows], MAP))
    assert table.schema == IDENTIFY_SCHEMA and table.num_rows == len(rows)
    assert set(table.column("protocol").to_pylist()) <= set(protocols.names()) | {None}
    for row, public in zip(rows, table.column("banner_public").to_pylist()):
        has_text = any(text is not None for _, text in (row[2] or ()))
        assert (public is not None) == has_text
