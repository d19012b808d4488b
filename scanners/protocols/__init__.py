"""Protocol knowledge: a banner in, its protocol, public form and product out.

One module per protocol (``ssh.py``, ``http.py``, ...), one line in
``PROTOCOLS`` below, one rule file ``rules/<name>.toml`` when the protocol has
product rules. Every module provides

* ``NAME`` -- the protocol name used in the output (``"ssh"``);
* ``parse(banner, banner_type=None)`` -- pure, never raises, reads at most
  ``rules.MAX_PARSE_CHARS`` characters, and returns a frozen dataclass with
  at least ``subject`` (the string the protocol's rules match; ``""`` when
  the banner says nothing about the product) and ``public`` (the redacted
  public form, see ``redact.py``). ``banner`` is text as in the clean rows'
  ``banners`` map (bytes are accepted too).

``identify.py`` puts it together over Arrow columns.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
from types import ModuleType


@dataclasses.dataclass(frozen=True)
class ProtocolInfo:
    name: str
    module: str
    banner_types: tuple[str, ...]          # banner types it reads, most telling first
    ports: tuple[tuple[int, str], ...]     # IANA/default (port, transport), for rows without a banner


PROTOCOLS: tuple[ProtocolInfo, ...] = (
    ProtocolInfo("ssh", "scanners.protocols.ssh", ("ssh",), ((22, "tcp"), (2222, "tcp"))),
    ProtocolInfo("http", "scanners.protocols.http", ("http.server", "http", "title"),
                 ((80, "tcp"), (8080, "tcp"), (8000, "tcp"), (8008, "tcp"), (8888, "tcp"))),
    ProtocolInfo("tls", "scanners.protocols.tls", ("ssl", "X509", "X509CA"),
                 ((443, "tcp"), (8443, "tcp"), (465, "tcp"), (993, "tcp"), (995, "tcp"))),
    ProtocolInfo("ftp", "scanners.protocols.ftp", ("ftp",), ((21, "tcp"),)),
    ProtocolInfo("smtp", "scanners.protocols.smtp", ("smtp",), ((25, "tcp"), (587, "tcp"))),
    ProtocolInfo("mysql", "scanners.protocols.mysql", ("mysql",), ((3306, "tcp"),)),
    ProtocolInfo("mssql", "scanners.protocols.mssql", ("mssql",), ((1433, "tcp"),)),
    ProtocolInfo("postgres", "scanners.protocols.postgres", ("postgres",), ((5432, "tcp"),)),
    ProtocolInfo("memcached", "scanners.protocols.memcached", ("memcached",),
                 ((11211, "tcp"), (11211, "udp"))),
    ProtocolInfo("pptp", "scanners.protocols.pptp", ("pptp",), ((1723, "tcp"),)),
    ProtocolInfo("ike", "scanners.protocols.ike", ("isakmp", "ike"), ((500, "udp"), (4500, "udp"))),
    ProtocolInfo("kerberos", "scanners.protocols.kerberos", ("kerberos",), ((88, "udp"), (88, "tcp"))),
    ProtocolInfo("ldap", "scanners.protocols.ldap", ("ldap",), ((389, "tcp"), (389, "udp"))),
)

# Which banner of a row is its *primary* banner: the first type in this order
# that the row has. Product-telling banners come before the generic ones
# (an HTTPS port has both ``ssl`` and ``http.server``; the server name tells
# more than the cipher). Types not listed rank after these, by name.
PRIMARY_ORDER: tuple[str, ...] = (
    "ssh", "http.server", "smtp", "ftp", "mysql", "mssql", "postgres",
    "memcached", "pptp", "isakmp", "ike", "kerberos", "ldap", "http", "ssl",
    "title", "X509", "X509CA",
)

_BY_NAME = {p.name: p for p in PROTOCOLS}
_BY_TYPE = {t: p for p in PROTOCOLS for t in p.banner_types}
_BY_PORT: dict[tuple[int, str], ProtocolInfo] = {}
for _p in PROTOCOLS:
    for _key in _p.ports:
        _BY_PORT.setdefault(_key, _p)


def names() -> tuple[str, ...]:
    return tuple(p.name for p in PROTOCOLS)


def info(name: str) -> ProtocolInfo:
    return _BY_NAME[name]


def by_banner_type(banner_type: str | None) -> ProtocolInfo | None:
    return _BY_TYPE.get(banner_type) if banner_type else None


def by_port(port: int | None, transport: str | None) -> ProtocolInfo | None:
    if port is None or transport is None:
        return None
    return _BY_PORT.get((int(port), transport.lower()))


@functools.cache
def module(name: str) -> ModuleType:
    """The protocol's module (imported on first use)."""
    return importlib.import_module(_BY_NAME[name].module)
