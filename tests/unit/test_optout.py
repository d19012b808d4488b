"""Opt-out list: masscan --excludefile grammar, merging, vectorized membership.

Expected answers come from the real masscan run (fixtures) or from a
brute-force reference built with ``ipaddress``, never from the code under test."""
from __future__ import annotations

import ipaddress
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from pipelines.optout import OptOutError, OptOutList, load_optout, merge_intervals, parse_exclude_text

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"


def columns(texts: list[str]) -> tuple[pa.Array, np.ndarray]:
    packed, vers = [], []
    for t in texts:
        a = ipaddress.ip_address(t)
        packed.append(b"\0" * 10 + b"\xff\xff" + a.packed if a.version == 4 else a.packed)
        vers.append(a.version)
    return pa.array(packed, pa.binary(16)), np.array(vers, np.int8)


def contains(optout: OptOutList, texts: list[str]) -> list[bool]:
    ip16, ver = columns(texts)
    out = optout.contains(ip16, ver)
    assert isinstance(out, pa.BooleanArray) and out.null_count == 0
    return out.to_pylist()


def hosts_of(listing: Path) -> set[str]:
    """Hosts in a masscan -oL file ('open tcp 22 198.18.0.2 1795567020')."""
    return {line.split()[3] for line in listing.read_text().splitlines() if line and not line.startswith("#")}


# -- the real masscan run ------------------------------------------------------
def test_real_exclude_file_matches_what_masscan_excluded():
    optout = load_optout(str(REAL / "masscan_exclude.txt"))
    scanned = sorted(hosts_of(REAL / "masscan.list"))
    kept_by_masscan = hosts_of(REAL / "masscan_excluded.list")
    flags = contains(optout, scanned)
    assert {h for h, f in zip(scanned, flags) if not f} == kept_by_masscan
    assert [h for h, f in zip(scanned, flags) if f] == ["198.18.0.3"]
    s = optout.summary()
    assert (s["entries"], s["ipv4_addresses"], s["ipv6_addresses"]) == (1, 1, "0")
    import hashlib
    assert s["sha256"] == hashlib.sha256((REAL / "masscan_exclude.txt").read_bytes()).hexdigest()


# -- grammar (cases from masscan's own massip-parse.c selftest and more) -----------
@pytest.mark.parametrize("text, first, last", [
    ("1.2.3.4", "1.2.3.4", "1.2.3.4"),
    ("1.2.3.4/24\n", "1.2.3.0", "1.2.3.255"),                 # host bits masked, as masscan
    (" 1.2.3.4-1.2.3.5\n", "1.2.3.4", "1.2.3.5"),
    ("#test\n  97.86.162.161\x9697.86.162.175\n", "97.86.162.161", "97.86.162.175"),  # cp1252 dash
    ("10.0.0.1\u201310.0.0.9", "10.0.0.1", "10.0.0.9"),        # en dash from copy/paste
    ("010.001.002.003", "10.1.2.3", "10.1.2.3"),               # masscan reads octets as decimal
    ("[1::1]/126", "1::", "1::3"),
    ("1::1/126", "1::", "1::3"),
    ("[1::1]-[2::3]", "1::1", "2::3"),
    ("1::1-2::3", "1::1", "2::3"),
    ("2a03:9060:0:400::2", "2a03:9060:0:400::2", "2a03:9060:0:400::2"),
    ("0.0.0.0/0", "0.0.0.0", "255.255.255.255"),
])
def test_single_entries(text, first, last):
    (e,) = parse_exclude_text(text.encode("utf-8") if "\u2013" in text else text.encode("latin-1"))
    assert (e.first, e.last) == (int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last)))
    assert e.version == ipaddress.ip_address(first).version


def test_several_entries_per_line_comments_and_blank_lines():
    text = (b"# header\n\n; other comment\n// and this\n"
            b"0.0.1.0/24,0.0.3.0-0.0.4.0 0.0.9.9\t0.0.10.1 # trailing\r\n"
            b"   \n2001:db8::/32 ; ipv6\n")
    got = [(e.line, e.version, e.first, e.last) for e in parse_exclude_text(text)]
    assert got == [(5, 4, 0x100, 0x1FF), (5, 4, 0x300, 0x400), (5, 4, 0x909, 0x909), (5, 4, 0xA01, 0xA01),
                   (7, 6, 0x20010DB8 << 96, (0x20010DB8 << 96) | ((1 << 96) - 1))]


@pytest.mark.parametrize("text, line, reason", [
    (b"1.2.3.4\n257.1.1.1\n", 2, "octet above 255"),
    (b"#bad\n 1.1.1.1.1\n", 2, "not an IPv4/IPv6 address"),
    (b"1.2.3.4 - 1.2.3.9\n", 1, "separated from its address"),
    (b"10.0.0.0/\n", 1, "prefix length"),
    (b"10.0.0.0/33\n", 1, "prefix length"),
    (b"2001:db8::/129\n", 1, "prefix length"),
    (b"1.2.3.9-1.2.3.4\n", 1, "start is after its end"),
    (b"1.2.3.4-2001::1\n", 1, "mix IPv4 and IPv6"),
    (b"::ffff:1.2.3.4\n", 1, "dotted IPv4 tail"),
    (b"1.2.3.4#comment\n", 1, "not an IPv4/IPv6 address"),
    (b"example.com\n", 1, "not an IPv4/IPv6 address"),
    (b"fe80::1%eth0\n", 1, "not an IPv4/IPv6 address"),
    (b"1.2.3.4\n\n\n\xff\xfe\x00evil\n", 4, "non-ASCII"),
    (b"1:2:3:4:5:6:7:8:9\n", 1, "not an IPv4/IPv6 address"),
])
def test_bad_lines_name_file_line_and_reason(text, line, reason):
    with pytest.raises(OptOutError) as exc:
        parse_exclude_text(text, "optout.txt")
    msg = str(exc.value)
    assert msg.startswith(f"optout.txt:{line}: ") and reason in msg and "\n" not in msg


def test_unreadable_file(tmp_path):
    with pytest.raises(OptOutError, match="cannot read"):
        load_optout(str(tmp_path / "missing.txt"))


# -- membership -------------------------------------------------------------------
def test_overlapping_and_adjacent_ranges_merge():
    text = b"10.0.0.0/24 10.0.0.128-10.0.1.5 10.0.1.6 10.0.3.0/24\n2001:db8::/64 2001:db8::ffff-2001:db8:0:1::\n"
    o = OptOutList.from_bytes(text)
    s = o.summary()
    # 10.0.0.0-10.0.1.6 (263 addresses) and 10.0.3.0/24
    assert s["ipv4_ranges"] == 2 and s["ipv4_addresses"] == 263 + 256
    assert s["ipv6_ranges"] == 1 and s["ipv6_addresses"] == str(2**64 + 1)
    assert contains(o, ["10.0.0.0", "10.0.1.6", "10.0.1.7", "10.0.2.255", "10.0.3.0", "10.0.3.255", "10.0.4.0",
                        "2001:db8::", "2001:db8:0:1::", "2001:db8:0:1::1", "2001:db8::1:0:0:0"]) == \
        [True, True, False, False, True, True, False, True, True, False, True]


def test_ipv4_entries_match_ipv4_hosts_only_and_mapped_rows():
    o = OptOutList.from_bytes(b"198.51.100.0/24\n2001:db8::/32\n")
    ip16, _ = columns(["198.51.100.7", "::ffff:198.51.100.7", "198.51.101.1"])
    # the same bytes as an IPv4 row and as an IPv6 row written ::ffff:
    got = o.contains(ip16, np.array([4, 6, 4], np.int8)).to_pylist()
    assert got == [True, True, False]
    # ::/0 covers every IPv6 row but must not swallow IPv4 hosts
    assert contains(OptOutList.from_bytes(b"::/0\n"), ["1.2.3.4", "2001:db8::1"]) == [False, True]


def test_nulls_and_invalid_versions_are_false():
    o = OptOutList.from_bytes(b"0.0.0.0/0\n")
    ip16 = pa.array([b"\0" * 10 + b"\xff\xff\x01\x02\x03\x04", None, b"\0" * 10 + b"\xff\xff\x01\x02\x03\x04"],
                    pa.binary(16))
    assert o.contains(ip16, pa.array([4, 4, None], pa.int8())).to_pylist() == [True, False, False]
    assert o.contains(ip16.slice(1), np.array([4, 0], np.int8)).to_pylist() == [False, False]


def test_empty_list_and_pickling(tmp_path):
    p = tmp_path / "ex.txt"
    p.write_bytes(b"# nobody yet\n")
    o = OptOutList(str(p))
    clone = pickle.loads(pickle.dumps(o))
    assert contains(clone, ["1.2.3.4", "::1"]) == [False, False]
    assert clone.summary()["entries"] == 0


# -- Hypothesis ------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_optouterror(data):
    try:
        entries = parse_exclude_text(data, "f")
    except OptOutError as exc:
        assert str(exc).startswith("f:") and "\n" not in str(exc)
        return
    for e in entries:
        assert e.version in (4, 6) and 0 <= e.first <= e.last < 2 ** (32 if e.version == 4 else 128)


def _v4_entry():
    addr = st.integers(0, 2**32 - 1)
    return st.one_of(
        st.tuples(st.just("cidr"), addr, st.integers(8, 32)),
        st.tuples(st.just("range"), addr, st.integers(0, 5000)),
        st.tuples(st.just("single"), addr, st.just(0)))


def _v6_entry():
    addr = st.integers(0, 2**128 - 1)
    return st.one_of(
        st.tuples(st.just("cidr6"), addr, st.integers(64, 128)),
        st.tuples(st.just("range6"), addr, st.integers(0, 2**70)))


def _text(a) -> str:
    # Python writes ::ffff:a.b.c.d with a dotted tail, which is not masscan syntax
    if a.version == 6 and "." in str(a):
        return ":".join(f"{(int(a) >> (112 - 16 * i)) & 0xFFFF:x}" for i in range(8))
    return str(a)


def _render(kind, addr, n):
    """Text and the ipaddress networks it means (the reference)."""
    cls = ipaddress.IPv6Address if kind.endswith("6") else ipaddress.IPv4Address
    if kind in ("cidr", "cidr6"):
        net = ipaddress.ip_network((cls(addr), n), strict=False)
        return f"{_text(cls(addr)) if kind == 'cidr' else '[' + _text(cls(addr)) + ']'}/{n}", [net]
    first, last = cls(addr), cls(min(addr + n, 2**(32 if cls is ipaddress.IPv4Address else 128) - 1))
    if kind == "single":
        return _text(first), [ipaddress.ip_network(first)]
    return f"{_text(first)}-{_text(last)}", list(ipaddress.summarize_address_range(first, last))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_v4_entry(), _v6_entry()), max_size=12),
       st.lists(st.sampled_from([" ", ",", "\t", "\n", " # note\n", "\r\n"]), min_size=12, max_size=12),
       st.lists(st.integers(0, 2**32 - 1), max_size=20), st.lists(st.integers(0, 2**128 - 1), max_size=10))
def test_matches_brute_force_reference(specs, seps, probes4, probes6):
    parts, nets = [], []
    for (kind, addr, n), sep in zip(specs, seps):
        text, ref = _render(kind, addr, n)
        parts.append(text + sep)
        nets += ref
    o = OptOutList.from_bytes(("# generated\n" + "".join(parts)).encode())
    # probes: random addresses plus both edges of every network and their neighbours
    addrs = [ipaddress.IPv4Address(p) for p in probes4] + [ipaddress.IPv6Address(p) for p in probes6]
    for net in nets:
        top = 2**net.max_prefixlen - 1
        for v in (int(net.network_address) - 1, int(net.network_address), int(net.broadcast_address),
                  int(net.broadcast_address) + 1):
            if 0 <= v <= top:
                addrs.append(type(net.network_address)(v))
    texts = [str(a) for a in addrs]
    expected = [any(a in n for n in nets if n.version == a.version) or
                (a.version == 6 and a.ipv4_mapped is not None and
                 any(a.ipv4_mapped in n for n in nets if n.version == 4)) for a in addrs]
    if texts:
        assert contains(o, texts) == expected
    s = o.summary()
    for version, key in ((4, "ipv4_addresses"), (6, "ipv6_addresses")):
        union = list(ipaddress.collapse_addresses(n for n in nets if n.version == version))
        assert str(s[key]) == str(sum(n.num_addresses for n in union))
    assert s["entries"] == len(specs)


def test_merge_intervals_is_minimal():
    assert merge_intervals([(5, 9), (1, 2), (3, 4), (11, 12), (8, 10)]) == [(1, 12)]
    assert merge_intervals([(1, 2), (4, 5)]) == [(1, 2), (4, 5)]
