import ipaddress

import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.iputil import ip16_to_hilo, ip16_to_text, parse_ips


def test_ipv4_ipv6_and_invalid():
    values = ["198.18.0.1", "0.0.0.0", "255.255.255.255", "2001:DB8::1", "::ffff:8.8.8.8",
              "256.1.1.1", "01.2.3.4", "1.2.3", " 1.2.3.4", "fe80::1%eth0", "", None, "1.2.3.4.5", "::"]
    p = parse_ips(pa.array(values))
    assert p.valid.tolist() == [True, True, True, True, True,
                                False, False, False, False, False, False, False, False, True]
    assert p.version.tolist()[:5] == [4, 4, 4, 6, 4]
    # canonical text: IPv6 lower-case compressed, mapped IPv4 as dotted quad
    assert p.text.to_pylist()[:5] == ["198.18.0.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "8.8.8.8"]
    assert p.ip16[0].as_py() == bytes(10) + b"\xff\xff" + bytes([198, 18, 0, 1])
    assert p.ip16[3].as_py() == ipaddress.IPv6Address("2001:db8::1").packed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), min_size=1, max_size=50))
def test_matches_ipaddress(addrs):
    p = parse_ips(pa.array([str(a) for a in addrs]))
    assert p.valid.all()
    for a, b16, text, ver in zip(addrs, p.ip16.to_pylist(), p.text.to_pylist(), p.version.tolist()):
        if a.version == 6 and a.ipv4_mapped is not None:
            a = a.ipv4_mapped
        assert ver == a.version
        assert text == (a.compressed if a.version == 6 else str(a))
        assert ip16_to_text(b16) == text


@given(st.text(max_size=40))
def test_arbitrary_text_never_raises(s):
    p = parse_ips(pa.array([s]))
    if p.valid[0]:
        ipaddress.ip_address(p.text[0].as_py())


def test_hilo_halves():
    p = parse_ips(pa.array(["1.2.3.4", "2001:db8::ff"]))
    hi, lo = ip16_to_hilo(p.ip16)
    assert hi.dtype == np.uint64
    assert int(lo[0]) == 0xFFFF01020304 and int(hi[0]) == 0
    assert (int(hi[1]) << 64 | int(lo[1])) == int(ipaddress.IPv6Address("2001:db8::ff"))
    # sliced arrays keep their offset
    hi2, lo2 = ip16_to_hilo(p.ip16.slice(1))
    assert int(lo2[0]) == int(lo[1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), min_size=1, max_size=40))
def test_ip16_text_inverts_parse(addrs):
    from pipelines.iputil import ip16_text
    p = parse_ips(pa.array([str(a) for a in addrs]))
    assert ip16_text(p.ip16, p.version).to_pylist() == p.text.to_pylist()
    assert ip16_text(p.ip16.slice(1), p.version[1:]).to_pylist() == p.text.to_pylist()[1:]
