"""Public Internet only: every block of both IANA special-purpose registries
(pipelines/data/special_purpose.toml) against an independent oracle."""
import ipaddress

import numpy as np
import pyarrow as pa
import pytest

from pipelines.iputil import parse_ips
from pipelines.normalize import Limits, normalize_batch
from pipelines.special_purpose import SpecialPurpose, excluded_ranges, registry
from tests.helpers import raw_batch

FACTS, BLOCKS = registry()
T = 1_379_000_000

# The blocks the IANA registries list (IPv4 and IPv6) plus multicast: a row lost from
# the data file must fail here.
EXPECTED = {
    "0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32",
    "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.88.99.2/32", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64",
    "2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:2::/48",
    "2001:3::/32", "2001:4:112::/48", "2001:10::/28", "2001:20::/28", "2001:30::/28", "2001:db8::/32",
    "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
}


def oracle(addr: ipaddress._BaseAddress) -> bool:
    """The most specific block containing ``addr`` decides; none: public."""
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped          # read as the IPv4 host it names
    hits = [b for b in BLOCKS if b.network.version == addr.version and addr in b.network]
    return max(hits, key=lambda b: b.network.prefixlen).exclude if hits else False


def probe(addrs) -> np.ndarray:
    ips = parse_ips(pa.array([str(a) for a in addrs]))
    assert ips.valid.all()
    return SpecialPurpose().contains(ips.ip16, ips.version)


def test_the_data_file_holds_every_registry_block_with_its_facts():
    assert {b.cidr for b in BLOCKS} == EXPECTED
    for b in BLOCKS:
        assert b.network.with_prefixlen == b.cidr or str(b.network) == b.cidr   # canonical, no host bits
        assert b.rfc.startswith("RFC") and len(b.allocated) == 7 and b.name
        assert b.globally_reachable in ("true", "false", "n/a")
        if b.globally_reachable != "n/a":
            # The decision is the registry's column, inverted.
            assert b.exclude == (b.globally_reachable == "false"), b.cidr
        else:
            assert b.why, f"{b.cidr}: an n/a row must say why it is (not) excluded"
    assert "transcribed" in FACTS


def _edges():
    for b in BLOCKS:
        net = b.network
        first, last = net.network_address, net.broadcast_address
        yield b.cidr, first
        yield b.cidr, last
        if int(first) > 0:
            yield b.cidr, first - 1
        if int(last) < (1 << net.max_prefixlen) - 1:
            yield b.cidr, last + 1


EDGES = list(_edges())


def test_first_last_and_neighbours_of_every_block():
    got = probe([a for _, a in EDGES])
    want = np.array([oracle(a) for _, a in EDGES])
    bad = [(c, str(a), g) for (c, a), g, w in zip(EDGES, got, want) if g != w]
    assert not bad
    # The oracle is not vacuous: the edges of an excluded block are excluded, and
    # the addresses just outside a lone excluded block are not.
    by = dict(zip((str(a) for _, a in EDGES), got))
    assert by["10.0.0.0"] and by["10.255.255.255"] and not by["9.255.255.255"] and not by["11.0.0.0"]
    assert by["fe80::"] and not by["fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
    assert by["2001:db8::"] and not by["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"]


@pytest.mark.parametrize("addr,excluded", [
    ("8.8.8.8", False), ("1.1.1.1", False), ("100.63.255.255", False), ("100.64.0.1", True),
    ("172.15.255.255", False), ("172.31.255.255", True), ("172.32.0.0", False),
    ("192.0.0.9", False), ("192.0.0.10", False), ("192.0.0.11", True),       # reachable /32s in a non-reachable /24
    ("192.88.99.1", True), ("192.88.99.2", False), ("198.20.0.0", False), ("198.19.255.255", True),
    ("224.0.0.1", True), ("239.255.255.255", True), ("223.255.255.255", False),
    ("::ffff:10.1.2.3", True), ("::ffff:8.8.8.8", False),                  # IPv4-mapped: its IPv4 decides
    ("2001::1", False), ("2001:1::1", False), ("2001:1::4", True), ("2001:2::1", True),
    ("2001:3::1", False), ("2001:1ff::1", True), ("2001:200::1", False), ("2002:808:808::1", False),
    ("2a00:1450::1", False), ("64:ff9b::808:808", False), ("64:ff9b:1::1", True), ("ff02::1", True),
])
def test_known_addresses(addr, excluded):
    assert bool(probe([ipaddress.ip_address(addr)])[0]) is excluded
    assert oracle(ipaddress.ip_address(addr)) is excluded


def test_random_addresses_agree_with_the_oracle():
    rng = np.random.default_rng(15)
    v4 = [ipaddress.IPv4Address(int(x)) for x in rng.integers(0, 1 << 32, 20_000, dtype=np.uint64)]
    # IPv6: random addresses inside and around the registry's blocks.
    v6 = []
    for b in BLOCKS:
        if b.network.version == 6:
            base = int(b.network.network_address)
            span = b.network.num_addresses
            for r in rng.integers(0, 1 << 62, 40, dtype=np.uint64):
                v6.append(ipaddress.IPv6Address((base + int(r) % (span * 2 + 1) - min(base, span // 2))
                                                % (1 << 128)))
    addrs = v4 + v6
    got = probe(addrs)
    want = np.array([oracle(a) for a in addrs])
    assert (got == want).all()
    assert 0 < got[:len(v4)].sum() < len(v4)


def test_ranges_are_disjoint_and_sorted():
    for version in (4, 6):
        r = excluded_ranges(BLOCKS, version)
        assert all(a <= b for a, b in r) and all(r[i][1] + 1 < r[i + 1][0] for i in range(len(r) - 1))


def test_normalize_counts_special_purpose_as_excluded_never_kept():
    rows = [dict(ip=ip, port=80, transport="tcp", status="open", timestamp=T, source_file=f)
            for ip, f in (("8.8.8.8", "a"), ("10.1.2.3", "a"), ("192.168.1.1", "b"), ("2001:db8::1", "b"),
                          ("2a00:1450::1", "b"), ("127.0.0.1", "a"))]
    res = normalize_batch(raw_batch(rows), Limits())
    assert res.work.column("ip").to_pylist() == ["8.8.8.8", "2a00:1450::1"]
    assert res.special == {"a": 2, "b": 2} and res.excluded == {} and res.quarantine is None
    kept = normalize_batch(raw_batch(rows), Limits(exclude_special_purpose=False))
    assert kept.work.num_rows == 6 and kept.special == {}
