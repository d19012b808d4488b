"""find_identifiers / find_addresses (scanners/protocols/leakscan.py): every
spelling of issue 14 is found, version numbers and dates are not."""
import pytest
from hypothesis import assume, given, strategies as st

from scanners.protocols.leakscan import (address_spellings, candidate_addresses, find_addresses,
                                         find_identifiers)

SHAPED = [
    ("ip10.20.16.40", "ipv4"), ("10.20.15.40.21", "ipv4"), ("ec2-10-20-5-40", "ipv4_dashed"),
    ("dynamic-ip-10-20-6-40", "ipv4_dashed"), ("ip_10_20_7_40", "ipv4_dashed"),
    ("0x0a140a28", "ipv4_hex"), ("0x0a.0x14.0x0c.0x28", "ipv4_hex"), ("0010.0020.0003.0040", "ipv4"),
    ("\uff11\uff10.\uff12\uff10.\uff13.\uff14\uff10", "ipv4"), ("host:2001:db8::40", "ipv6"),
    ("v2001:db8::40", "ipv6"), ("2001-db8-77-a--40", "ipv6_dashed"), ("MAC:00:0c:29:ab:cd:ef", "mac"),
    ("CN=dc01,OU=Servers,DC=corp,DC=example", "dn"), ("postmaster(at)corp(dot)com", "email"),
    ("root@corp.example", "email"), ("550e8400-e29b-41d4-a716-446655440000", "uuid"),
]


@pytest.mark.parametrize("text,shape", SHAPED)
def test_each_spelling_is_found(text, shape):
    assert shape in {h.shape for h in find_identifiers(f"220 welcome {text} ready")}


@pytest.mark.parametrize("text", ["SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7", "Apache/2.4.41 (Ubuntu)",
                                  "Microsoft-IIS/6.0.3790.4675", "Mon, 01 Jan 2024 10:00:00 GMT",
                                  "TLS/1.2 cipher:0xc02f", "vsFTPd 2.2.2", "a-b-c-d-e"])
def test_software_is_not_an_identifier(text):
    assert find_identifiers(text) == []


@given(st.ip_addresses(v=4), st.sampled_from(["x", "ip", "host-", "", "[", "addr="]))
def test_known_address_found_in_every_spelling(ip, prefix):
    # glued to a word, 0.x.x.x spells a package revision ("0ubuntu0.20.04.1")
    assume(ip.packed[0] > 0 or prefix in ("", "[", "addr=", "host-"))
    for sp in address_spellings(str(ip)):
        assert find_addresses(f"banner {prefix}{sp} tail", [str(ip)]) == [str(ip)], sp


@given(st.ip_addresses(v=6))
def test_known_ipv6_found(ip):
    # "::" and "::1" name no scanned host; the shapes need two groups
    assume(sum(1 for g in ip.compressed.split(":") if g) >= 2 and any(c.isdigit() for c in ip.compressed))
    for sp in address_spellings(str(ip)):
        assert str(ip) in candidate_addresses(f"v{sp} ok"), sp


def test_find_addresses_ignores_other_addresses():
    assert find_addresses("from 10.1.2.3", ["10.1.2.4"]) == []
