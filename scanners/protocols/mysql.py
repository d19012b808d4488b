"""MySQL / MariaDB server versions.

Input: the ``mysql`` banner -- zgrab2's ``server_version`` (``5.5.58``,
``8.0.3-rc-log``), or the raw initial handshake packet a plain banner grab
gets (3-byte length, sequence number, protocol version 10, then the
NUL-terminated version string; see the MySQL "Protocol::HandshakeV10" docs),
with or without that 4-byte header (zgrab2's ``raw_packets`` lack it). A raw
``0xff`` error packet (``Host '...' is not allowed to connect``) has no
version; its message names the scanner's address, so only its error code is
public.

MariaDB 10+ prefixes its version with ``5.5.5-`` because old MySQL clients
refuse a major version above 5; the prefix is removed:
``5.5.5-10.3.34-MariaDB-0ubuntu0.20.04.1`` -> ``10.3.34-MariaDB-0ubuntu0.20.04.1``.
That de-prefixed string is the rule subject. Distribution builds append their
package revision (``-0ubuntu0.20.04.1``, ``-0+deb11u1``, ``-1:10.6.12+maria~ubu2004``);
when ``os_releases.py`` maps it to a release, a second subject line
``os=<release>`` follows (``10.3.39-MariaDB-0+deb10u1\nos=Debian 10``), which
the rules template into os_release -- so that value is always the table's.

An error packet's subject is ``error <code>`` plus `` MySQL`` or `` MariaDB``
when its message names the server (``Host '...' is not allowed to connect to
this MariaDB server``): the message itself, and the host in it, never is.

Public form: the (de-prefixed) version string, redacted.
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols import os_releases
from scanners.protocols.redact import redact
from scanners.protocols.rules import as_bytes, as_text

NAME = "mysql"

_VERSION = re.compile(r"\d{1,3}\.\d{1,3}(?:\.\d{1,5})?[\w.+~:-]{0,120}")
_MARIADB_PREFIX = "5.5.5-"


@dataclasses.dataclass(frozen=True)
class MysqlBanner:
    server_version: str | None      # as sent (with any 5.5.5- prefix)
    version: str | None             # de-prefixed
    flavor: str | None              # "MariaDB", "MySQL" (when the string, or an error message, says so)
    error_code: int | None          # raw 0xff error packet
    subject: str
    public: str


def _from_packet(data: bytes) -> tuple[str | None, int | None]:
    """(version, error code) from a raw handshake or error packet, with or
    without its 4-byte header (zgrab2's ``raw_packets`` omit it)."""
    body = _body(data)
    if len(body) < 2:
        return None, None
    if body[0] == 0x0A:
        end = body.find(b"\x00", 1)
        raw = body[1:end if end > 0 else None][:128]
        return raw.decode("ascii", "replace"), None
    if body[0] == 0xFF and len(body) >= 3:
        return None, int.from_bytes(body[1:3], "little")
    return None, None


def _body(data: bytes) -> bytes:
    return data[4:] if len(data) > 5 and data[4] in (0x0A, 0xFF) else data


# Which server an error message names; only this word reaches the subject.
_NAMES_SERVER = re.compile(rb"\b(MariaDB|MySQL)\b")


def _error_server(data: bytes) -> str | None:
    body = _body(data)
    m = _NAMES_SERVER.search(body[3:512]) if body[:1] == b"\xff" else None
    return m.group(1).decode() if m else None


def parse(banner: str | bytes | None, banner_type: str | None = None) -> MysqlBanner:
    text = as_text(banner)
    error = None
    candidate = text.strip()
    if not _VERSION.fullmatch(candidate):
        version_raw, error = _from_packet(as_bytes(banner))
        candidate = (version_raw or "").strip()
    if not candidate or not _VERSION.fullmatch(candidate):
        if error is None:
            return MysqlBanner(None, None, None, None, "", "")
        server = _error_server(as_bytes(banner))
        subject = f"error {error} {server}" if server else f"error {error}"
        return MysqlBanner(None, None, server, error, subject, f"error {error}")
    version = candidate
    # MariaDB Enterprise puts its build between: 5.5.5-10.6.16-11-MariaDB-enterprise
    if version.startswith(_MARIADB_PREFIX) and re.match(r"\d+\.\d+\.\d+-(?:\d+-)?MariaDB", version[6:]):
        version = version[len(_MARIADB_PREFIX):]
    flavor = "MariaDB" if "MariaDB" in version else "MySQL"
    release = os_releases.revision_release(version)
    subject = f"{version}\nos={release}" if release else version
    return MysqlBanner(candidate, version, flavor, None, subject, redact(version, free=True))
