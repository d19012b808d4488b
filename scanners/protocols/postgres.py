"""PostgreSQL: no version string, but the refusal tells the protocol range.

PostgreSQL never announces its version before authentication. zgrab2 sends a
startup packet for protocol 255.255 (and 0.0), which the server rejects with
an ErrorResponse naming the range it supports:
``FATAL:  unsupported frontend protocol 0.0: server supports 1.0 to 3.0``.
That range changed with major releases -- ``1.0 to 3.0`` up to 9.6,
``2.0 to 3.0`` in 10-13, ``3.0 to 3.0`` from 14 (protocol 2 removed),
``3.0 to 3.2`` from 18 (protocol 3.2 added) -- so it dates the server.

Input (the ``postgres`` banner), any of:

* zgrab2's ``supported_versions`` text, as above;
* a raw ErrorResponse (``E``, int32 length, then fields ``S``everity,
  ``C``ode, ``M``essage, ``F``ile, ``L``ine, ``R``outine, each a type byte and
  a NUL-terminated string; PostgreSQL "Message Formats");
* those fields without the ``E``/length header.

The subject is ``protocol MIN-MAX`` (empty when the range is unknown).
Public form: ``SEVERITY CODE protocol MIN-MAX`` -- never the message text,
which can quote user, database and client address (``no pg_hba.conf entry
for host "192.0.2.1", user "x"``).
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols.rules import as_bytes, as_text

NAME = "postgres"

_RANGE = re.compile(r"server supports (\d{1,2}\.\d{1,2}) to (\d{1,2}\.\d{1,2})")
_SEVERITY = re.compile(r"^(FATAL|ERROR|PANIC|WARNING|LOG)\b")
_SEVERITIES = frozenset({"FATAL", "ERROR", "PANIC", "WARNING", "NOTICE", "LOG"})
_FIELD_TYPES = b"SVCMDHPpqWstcdnFLR"


@dataclasses.dataclass(frozen=True)
class PostgresBanner:
    severity: str | None
    code: str | None                # SQLSTATE, e.g. "0A000"
    message: str | None             # never public
    file: str | None                # e.g. "postmaster.c"
    line: int | None
    routine: str | None
    protocol_min: str | None        # "1.0"
    protocol_max: str | None        # "3.0"
    subject: str
    public: str


def _fields(data: bytes) -> dict[str, str]:
    """ErrorResponse fields (the ``E``+length header optional); {} when not one."""
    body = data[5:] if data[:1] == b"E" and data[5:6] in _FIELD_TYPES else data
    if b"\x00" not in body or body[:1] not in _FIELD_TYPES or not body[:1]:
        return {}
    out: dict[str, str] = {}
    for part in body.split(b"\x00"):
        if not part:
            break
        out.setdefault(chr(part[0]), part[1:].decode("utf-8", "replace"))
    return out


def parse(banner: str | bytes | None, banner_type: str | None = None) -> PostgresBanner:
    text = as_text(banner)
    f = _fields(as_bytes(banner))
    message = f.get("M") if f else text.strip()
    severity = f.get("V") or f.get("S") if f else None
    if not f and message and (m := _SEVERITY.match(message)):
        severity = m.group(1)
        message = message[m.end():].lstrip(": ").strip()
    rng = _RANGE.search(message or "")
    lo, hi = (rng.group(1), rng.group(2)) if rng else (None, None)
    line = f.get("L", "")
    subject = f"protocol {lo}-{hi}" if rng else ""
    # Only vocabulary goes public: a known severity and a well-formed SQLSTATE.
    code = f.get("C") if re.fullmatch(r"[0-9A-Z]{5}", f.get("C", "")) else None
    public = " ".join(x for x in (severity if severity in _SEVERITIES else None, code, subject) if x)
    return PostgresBanner(severity, f.get("C"), message or None, f.get("F"),
                          int(line) if re.fullmatch(r"[0-9]{1,9}", line) else None,
                          f.get("R"), lo, hi, subject, public)
