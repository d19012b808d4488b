"""Kerberos 5 KDC replies (RFC 4120 section 5.9.1).

A KDC answers an AS-REQ probe on port 88 with KRB-ERROR (``[APPLICATION
30]``, DER tag ``0x7e``) or, when pre-authentication is off, AS-REP
(``[APPLICATION 11]``, ``0x6b``). Over TCP the message has a 4-byte length
prefix. KRB-ERROR is a SEQUENCE of context-tagged fields: ``[0]`` pvno,
``[1]`` msg-type, ``[4]`` stime (the KDC clock), ``[6]`` error-code, ``[9]``
realm (the Kerberos realm, usually the DNS domain in capitals), ``[10]``
sname, ``[12]`` e-data.

Input (the ``kerberos`` banner): the raw reply as bytes, ``\\xNN``-escaped
text or a hex dump (zmap's UDP ``data`` field).

Kerberos has no product rules: KDC implementations answer alike. Subject and
public form: ``krb5 KRB-ERROR KDC_ERR_PREAUTH_REQUIRED`` (message and error
name). The realm and the KDC time are never public.
"""
from __future__ import annotations

import dataclasses

from scanners.protocols.rules import as_bytes

NAME = "kerberos"

MAX_DER_ITEMS = 64      # fields walked in one SEQUENCE; KRB-ERROR has 13

MESSAGES = {0x6B: "AS-REP", 0x6D: "TGS-REP", 0x7E: "KRB-ERROR"}
ERROR_NAMES = {   # RFC 4120 section 7.5.9 (the ones a probe meets)
    6: "KDC_ERR_C_PRINCIPAL_UNKNOWN", 7: "KDC_ERR_S_PRINCIPAL_UNKNOWN",
    12: "KDC_ERR_POLICY", 14: "KDC_ERR_ETYPE_NOSUPP", 18: "KDC_ERR_CLIENT_REVOKED",
    24: "KDC_ERR_PREAUTH_FAILED", 25: "KDC_ERR_PREAUTH_REQUIRED",
    37: "KRB_AP_ERR_SKEW", 41: "KRB_AP_ERR_MODIFIED", 52: "KRB_ERR_RESPONSE_TOO_BIG",
    60: "KRB_ERR_GENERIC", 68: "KDC_ERR_WRONG_REALM",
}


@dataclasses.dataclass(frozen=True)
class KerberosBanner:
    valid: bool
    message: str | None        # "KRB-ERROR", "AS-REP"
    pvno: int | None
    error_code: int | None
    error_name: str | None
    realm: str | None          # never public
    stime: str | None          # KDC clock, "20240101120000Z" (never public)
    subject: str
    public: str


def _tlv(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, value start, value end) of the DER item at pos, or None."""
    if pos + 2 > len(data):
        return None
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            return None
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        return None
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> dict[int, tuple[int, int, int]]:
    """Context-tagged children [n] of a SEQUENCE body -> their inner item."""
    out: dict[int, tuple[int, int, int]] = {}
    pos = start
    for _ in range(MAX_DER_ITEMS):
        if pos >= end:
            break
        item = _tlv(data[:end], pos)
        if item is None:
            break
        tag, vs, ve = item
        if 0xA0 <= tag <= 0xBF:
            inner = _tlv(data[:ve], vs)
            if inner:
                out.setdefault(tag - 0xA0, inner)
        pos = ve
    return out


def _int(data: bytes, item) -> int | None:
    if item is None or item[0] != 0x02 or not 0 < item[2] - item[1] <= 4:
        return None
    return int.from_bytes(data[item[1]:item[2]], "big", signed=True)


def _text(data: bytes, item) -> str | None:
    if item is None or item[0] not in (0x1B, 0x18, 0x16, 0x0C):
        return None
    return data[item[1]:item[2]][:256].decode("latin-1")


def parse(banner: str | bytes | None, banner_type: str | None = None) -> KerberosBanner:
    data = as_bytes(banner)
    if len(data) > 4 and data[4] in MESSAGES and int.from_bytes(data[:4], "big") == len(data) - 4:
        data = data[4:]                     # TCP record-marking prefix
    outer = _tlv(data, 0)
    if outer is None or outer[0] not in MESSAGES:
        return KerberosBanner(False, None, None, None, None, None, None, "", "")
    message = MESSAGES[outer[0]]
    seq = _tlv(data[:outer[2]], outer[1])
    fields = _children(data, seq[1], seq[2]) if seq and seq[0] == 0x30 else {}
    pvno = _int(data, fields.get(0))
    code = _int(data, fields.get(6)) if message == "KRB-ERROR" else None
    name = ERROR_NAMES.get(code, f"error-{code}") if code is not None else None
    realm = _text(data, fields.get(9 if message == "KRB-ERROR" else 1))
    stime = _text(data, fields.get(4)) if message == "KRB-ERROR" else None
    subject = " ".join(x for x in ("krb5", message, name) if x)
    return KerberosBanner(True, message, pvno, code, name, realm, stime, subject, subject)
