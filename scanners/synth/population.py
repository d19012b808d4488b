"""A seeded, 2013-shaped Internet population: who answers on which port, and
with what banner, SSH host key or database handshake.

``build_population(seed)`` returns hosts drawn from real routed IPv4 space
(plus ~2% IPv6), each playing a role (Linux server, Windows box, home
router, mail relay, ...) that decides its open ports and software. It adds
one "single responder" /24 (a NAT box answering every address with the same
bytes), a few tarpits answering every port, and hostile banners.

Banners that name hosts, e-mail addresses or IP literals record them in
``Service.params['names'|'emails'|'ips']`` so that the demo truth can list
every private-looking string a privacy check must never find in the output.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import random

from scanners.synth import content as c
from scanners.synth import ageing, keys

SCANNER_IP = "198.51.100.7"   # the scanning host: a documentation address, no real party

# (role, weight, {port: probability}); port 500 is udp, the rest tcp.
ROLES = (
    ("linux", 30, {22: 1.0, 80: .55, 443: .3, 21: .12, 25: .08, 3306: .1, 5432: .04, 11211: .04}),
    ("web", 24, {80: 1.0, 443: .45, 22: .3, 21: .12, 3306: .06}),
    ("windows", 10, {80: .7, 443: .4, 21: .15, 1433: .3, 1723: .1}),
    ("cpe", 18, {80: .8, 22: .35, 1723: .25, 500: .2, 21: .05}),
    ("mail", 6, {25: 1.0, 22: .5, 80: .4, 443: .3, 21: .1, 389: .05}),
    ("vpn", 4, {500: 1.0, 1723: .5, 443: .4}),
    ("dc", 2, {88: 1.0, 389: 1.0, 80: .2, 1433: .15}),
    ("ldap", 2, {389: 1.0, 22: .5, 88: .1}),
    ("db", 4, {3306: .7, 5432: .35, 22: .6, 1433: .1}),
    ("cache", 1.5, {11211: 1.0, 22: .7, 80: .3}),
)
FLAVOR = {"linux": "nix", "web": "nix", "mail": "nix", "ldap": "nix", "db": "nix", "cache": "nix",
          "windows": "win", "dc": "win", "cpe": "emb", "vpn": "emb"}
KIND = {22: "ssh", 80: "http", 443: "tls", 21: "ftp", 25: "smtp", 11211: "memcached",
        3306: "mysql", 5432: "postgres", 1433: "mssql", 1723: "pptp", 500: "ike",
        88: "silent", 389: "silent"}

# /8s the RIRs had allocated and that were routed in 2013, weighted by region
# (ARIN, RIPE, APNIC, LACNIC, AfriNIC). Addresses are drawn uniformly inside
# and kept only if ipaddress calls them global, so GeoIP gives real countries.
_V4_FIRST = (
    [(o, 3) for o in (12, 24, 66, 68, 74)] + [(o, 2) for o in (50, 64, 65, 67, 69, 70, 71, 72, 75, 76, 98, 108, 173, 174, 184, 208, 216)]
    + [(o, 1) for o in (63, 73, 96, 97, 99, 107, 199, 204, 205, 206, 207, 209)]
    + [(o, 2) for o in (5, 31, 37, 46, 62, *range(77, 96), 109, 176, 178, 188, 212, 213, 217)] + [(o, 1) for o in (2, 193, 194, 195)]
    + [(o, 3) for o in (58, 61)] + [(o, 2) for o in (14, 27, 49, 59, 60, *range(110, 126), 175, 180, 182, 183, 202, 210, 211, *range(218, 223))]
    + [(o, 1) for o in (1, 36, 39, 42, 101, 203)]
    + [(o, 2) for o in (177, 186, 187, 189, 190, 200, 201)] + [(o, 1) for o in (179, 181)]
    + [(41, 2), (105, 1), (154, 1), (196, 1), (197, 1)])
# Networks that the MaxMind *test* databases know, so that lookups against
# those tiny DBs find countries too (real allocations, all of them).
_GEO_TEST_V4 = ("2.125.160.216/29", "50.114.0.0/22", "67.43.156.0/24", "81.2.69.144/28", "81.2.69.160/27",
                "89.160.20.128/25", "111.235.160.0/22", "202.196.224.0/20", "216.160.83.56/29", "217.65.48.0/29")
_V6_NETS = ("2001:218::/32", "2001:220::/32", "2001:240::/32", "2001:250::/31", "2001:288::/32",
            "2001:2e0::/32", "2001:480::/43", "2a02:cf40::/29", "2a02:d0c0::/29", "2a02:d100::/29",
            "2a02:d180::/29", "2a02:d3c0::/29", "2a02:d5c0::/29")


@dataclasses.dataclass
class Service:
    """One open (or answering) port. ``kind`` says what answers; ``params``
    hold the fixed facts its banners are rendered from."""

    ip: str
    port: int
    transport: str
    kind: str
    ttl: int
    params: dict = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.ip, self.port, self.transport)


@dataclasses.dataclass
class Population:
    services: dict          # (port, transport) -> list[Service], in draw order
    single_responder: str   # the /24 where every address answers 22 and 80 alike
    tarpits: list           # hosts answering every port
    ssh_keys: dict          # ip -> keys.HostKey for hosts zgrab2 grabs on 22
    key_facts: dict         # shared-key / shared-prime bookkeeping for the truth
    pool: AddressPool     # for drawing further addresses (RST responders, ...)


class AddressPool:
    """Unique, global addresses, drawn from a seeded ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self._octets = [o for o, _ in _V4_FIRST]
        self._weights = [wt for _, wt in _V4_FIRST]

    def _take(self, ip: ipaddress._BaseAddress) -> str | None:
        text = ip.compressed
        if not ip.is_global or ip.is_multicast or text in self.used:
            return None
        self.used.add(text)
        return text

    def v4(self) -> str:
        while True:
            if self.rng.random() < 0.03:
                net = ipaddress.ip_network(self.rng.choice(_GEO_TEST_V4))
                ip = net[self.rng.randrange(net.num_addresses)]
            else:
                first = self.rng.choices(self._octets, self._weights)[0]
                ip = ipaddress.IPv4Address((first << 24) | self.rng.getrandbits(24))
            text = self._take(ip)
            if text:
                return text

    def v6(self) -> str:
        while True:
            net = ipaddress.ip_network(self.rng.choice(_V6_NETS))
            subnet = self.rng.getrandbits(16) << 64
            # Servers mostly sit on short, hand-picked interface IDs (::1, ::25);
            # the rest are SLAAC-style random 64-bit IDs.
            iid = self.rng.randrange(1, 0x100) if self.rng.random() < 0.6 else self.rng.getrandbits(64)
            text = self._take(net.network_address + subnet + iid)
            if text:
                return text

    def free_v4_slash24(self) -> ipaddress.IPv4Network:
        """A whole /24, every address global and not yet drawn, now taken."""
        while True:
            first = self.rng.choices(self._octets, self._weights)[0]
            net = ipaddress.ip_network(((first << 24) | (self.rng.getrandbits(16) << 8), 24))
            if all(a.is_global and a.compressed not in self.used for a in net):
                self.used.update(a.compressed for a in net)
                return net


def _ttl(rng: random.Random, flavor: str) -> int:
    initial = {"nix": 64, "win": 128, "emb": rng.choice((64, 255))}[flavor]
    return initial - rng.randrange(4, 26)


_ROLE_NAMES = [r[0] for r in ROLES]
_ROLE_WEIGHTS = [r[1] for r in ROLES]
_ROLE_PORTS = {r[0]: r[2] for r in ROLES}


def draw_host(rng: random.Random, pool: AddressPool, services: dict) -> None:
    """One host: a role, an address, and the services the role opens."""
    role = rng.choices(_ROLE_NAMES, _ROLE_WEIGHTS)[0]
    flavor = FLAVOR[role]
    ip = pool.v6() if rng.random() < 0.02 else pool.v4()
    ttl = _ttl(rng, flavor)
    ctx = c.HostContext(ip=ip, domain=c.domain(rng), flavor=flavor, scanner_ip=SCANNER_IP)
    for port, prob in _ROLE_PORTS[role].items():
        if rng.random() < prob:
            kind = KIND[port]
            svc = Service(ip, port, "udp" if port == 500 else "tcp", kind, ttl, c.service_params(kind, rng, ctx))
            services.setdefault((svc.port, svc.transport), []).append(svc)


def build_population(seed: int, hosts: int = 12000, age: int = 0) -> Population:
    """The demo week's hosts and services, a pure function of ``seed`` and
    ``age``: the number of weeks the first week's population has aged
    (scanners/synth/ageing.py; 0 = the first week itself)."""
    rng = random.Random(f"portcensus-synth/{seed}/population")
    pool = AddressPool(rng)
    services: dict = {}

    def add(svc: Service) -> None:
        services.setdefault((svc.port, svc.transport), []).append(svc)

    for _ in range(hosts):
        draw_host(rng, pool, services)
    if age:
        ageing.age_services(services, pool, seed, age, draw_host)
    # Hostile and awkward banners: a few web servers send them.
    web = [s for s in services[(80, "tcp")] if s.params.get("title") is not None]
    for svc, (title, server) in zip(rng.sample(web, len(c.HOSTILE_HTTP)), c.HOSTILE_HTTP):
        svc.params.update(title=title, names=[])   # the old title (and any name in it) is gone
        if server is not None:
            svc.params["server"] = server

    # One /24 behind a NAT box that forwards every address to one device.
    net = pool.free_v4_slash24()
    box = c.single_responder_params(rng)
    for addr in net:
        for port, kind in ((22, "ssh"), (80, "http")):
            add(Service(addr.compressed, port, "tcp", kind, 52, dict(box[kind], single_responder=True)))
    # Tarpits: SYN-ACK on every port, never a byte of payload.
    tarpits = [pool.v4() for _ in range(4)]

    ssh_keys, key_facts = keys.assign_host_keys(seed, rng, services, net)
    return Population(services, str(net), tarpits, ssh_keys, key_facts, pool)
