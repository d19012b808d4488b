"""TLS: masscan's ``ssl`` summary and its ``X509`` certificate banners.

masscan builds the ``ssl`` banner from the ServerHello and the certificate
(``src/proto-ssl.c``): ``TLS/1.1 cipher:0xc014, fixture-a.test`` -- the
version (``SSLv3``, ``TLS/1.0`` .. ``TLS/1.3`` or ``SSLver[M,m]``), the
chosen cipher suite in hex, then ``, name`` for the subject CN and each
subjectAltName. A refused handshake gives `` ALERT(0x0250) `` (level 2,
description 0x50), with the blanks. ``X509``/``X509CA`` are the DER
certificates in base64, without PEM lines.

TLS has no product rules: the subject is the version (or ``ALERT``).

Public form: version and cipher kept, every certificate name is a host
(single-label names like ``router`` too), so they collapse to one
``, <host>``; a certificate banner becomes ``<certificate>``.
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols.redact import redact
from scanners.protocols.rules import as_text

NAME = "tls"

_VERSION = re.compile(r"(SSLv[23]|TLS/1\.[0-3]|SSLver\[\d{1,3},\d{1,3}\])")
_CIPHER = re.compile(r"cipher:0x([0-9a-fA-F]{1,4})")
_ALERT = re.compile(r"ALERT\(0x([0-9a-fA-F]{4})\)")


@dataclasses.dataclass(frozen=True)
class TlsBanner:
    version: str | None          # "TLS/1.2"
    cipher: int | None           # 0xc014
    names: tuple[str, ...]       # certificate CN/SAN names (host names: never public)
    alert_level: int | None
    alert_description: int | None
    is_certificate: bool
    subject: str
    public: str


def parse(banner: str | bytes | None, banner_type: str | None = None) -> TlsBanner:
    text = as_text(banner)
    if banner_type in ("X509", "X509CA"):
        return TlsBanner(None, None, (), None, None, True, "",
                         "<certificate>" if text.strip() else "")
    stripped = text.strip()
    alert = _ALERT.search(stripped)
    if alert:
        value = int(alert.group(1), 16)
        return TlsBanner(None, None, (), value >> 8, value & 0xFF, False, "ALERT",
                         f"ALERT(0x{value:04x})")
    version = _VERSION.match(stripped)
    cipher = _CIPHER.search(stripped)
    _, _, tail = stripped.partition(",")
    names = tuple(n.strip() for n in tail.split(",") if n.strip()) if cipher else ()
    if not version:
        return TlsBanner(None, None, (), None, None, False, "", redact(stripped))
    parts = [version.group(1)]
    if cipher:
        parts.append(f"cipher:0x{int(cipher.group(1), 16):x}")
    public = " ".join(parts) + (", <host>" if names else "")
    return TlsBanner(version.group(1), int(cipher.group(1), 16) if cipher else None,
                     names, None, None, False, version.group(1), public)
