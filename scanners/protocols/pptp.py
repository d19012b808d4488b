"""PPTP Start-Control-Connection-Reply (RFC 2637 section 2.2).

zgrab2's ``pptp`` module sends a Start-Control-Connection-Request to TCP
1723 and records the reply: 156 bytes, big-endian -- length, message type 1,
magic cookie ``0x1A2B3C4D``, control message type 2, protocol version,
result and error code, framing and bearer capabilities, maximum channels,
firmware revision, then a 64-byte NUL-padded **host name** and a 64-byte
**vendor** string (``Microsoft``; ``linux`` with host ``local`` for Poptop;
``TP-LINK`` with host ``TP-LINK_SMB_TL-ER604W(UN)``).

Input (the ``pptp`` banner): the raw reply (bytes, ``\\xNN``-escaped text or
a hex dump), zgrab2's ``Banner`` string (JSON-decoded, so bytes >= 0x80 may
have become U+FFFD -- fields are therefore located relative to the magic
cookie, which follows the only such byte, in the length field), or zgrab2's
result object as JSON text (``{"Vendor": ..., "Hostname": ..., ...}``).

Subject: ``vendor=V;hostname=H;firmware=N``. Public form:
``vendor=V firmware=N`` -- the host name field is often a real host name.
"""
from __future__ import annotations

import dataclasses
import json
import re

from scanners.protocols.redact import redact
from scanners.protocols.rules import as_bytes, as_text

NAME = "pptp"

MAGIC = b"\x1a\x2b\x3c\x4d"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")


@dataclasses.dataclass(frozen=True)
class PptpBanner:
    valid: bool                  # a Start-Control-Connection-Reply was found
    protocol_version: int | None  # 0x0100
    result_code: int | None      # 1 = connection established
    firmware: int | None
    hostname: str | None         # never public
    vendor: str | None
    subject: str
    public: str


def _clean(raw: bytes | str) -> str:
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return _UNPRINTABLE.sub(" ", text.split("\x00", 1)[0]).strip()[:64]


def _from_reply(data: bytes) -> tuple | None:
    at = data.find(MAGIC)
    if at < 4 or len(data) < at + 152:
        return None
    body = data[at - 4:]
    if int.from_bytes(body[8:10], "big") != 2:    # not a Start-Control-Connection-Reply
        return None
    return (int.from_bytes(body[12:14], "big"), body[14], int.from_bytes(body[26:28], "big"),
            _clean(body[28:92]), _clean(body[92:156]))


def _from_json(text: str) -> tuple | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):   # deep nesting is hostile input, not a bug
        return None
    if not isinstance(obj, dict) or "Vendor" not in obj:
        return None

    def num(key):
        v = obj.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return (num("ProtocolVersion"), num("ResultCode"), num("FirmwareRevision"),
            _clean(str(obj.get("Hostname") or "")), _clean(str(obj.get("Vendor") or "")))


def parse(banner: str | bytes | None, banner_type: str | None = None) -> PptpBanner:
    text = as_text(banner)
    found = _from_reply(as_bytes(banner)) or _from_json(text)
    if found is None:
        return PptpBanner(False, None, None, None, None, None, "", "")
    version, result, firmware, hostname, vendor = found
    subject = f"vendor={vendor};hostname={hostname};firmware={'' if firmware is None else firmware}"
    public = f"vendor={redact(vendor, free=True)}" + (f" firmware={firmware}" if firmware is not None else "")
    return PptpBanner(True, version, result, firmware, hostname or None, vendor or None, subject, public)
