"""IKE / ISAKMP responses (RFC 2408 section 3, RFC 7296 section 3).

masscan's ``isakmp`` banner (``src/proto-isakmp.c``) is the raw UDP 500
reply to its Main Mode probe, written byte for byte (so in the clean rows it
is ``\\xNN``-escaped text; a hex dump or bytes are accepted as well).

The 28-byte header is initiator cookie, responder cookie, next payload,
version (major << 4 | minor), exchange type, flags, message id, length; then
a chain of payloads, each ``next payload, flags, length (16 bit)`` plus
data. Vendor ID payloads (type 13 in IKEv1, 43 in IKEv2) carry vendor
constants -- mostly MD5 hashes of a vendor string, e.g. MD5("strongSwan"),
MD5("MS NT5 ISAKMPOAKLEY") followed by a 4-byte version, MD5("RFC 3947").
Notify payloads (11 / 41) give the refusal reason.

Subject: ``IKEv1.0 exchange=2`` then `` vid=<hex>`` per Vendor ID and
`` notify=<n>`` per notification, in order. Cookies, SPIs and message ids
are per-session values and never appear. Public form = the subject.
"""
from __future__ import annotations

import dataclasses

from scanners.protocols.rules import as_bytes

NAME = "ike"

MAX_PAYLOADS = 32          # a real reply has a handful; stop walking after this
_VENDOR_ID = {13, 43}
_NOTIFY = {11, 41}


@dataclasses.dataclass(frozen=True)
class IkeBanner:
    valid: bool
    version: str | None            # "1.0", "2.0"
    exchange_type: int | None      # 2 = Main Mode, 4 = Aggressive, 34 = IKE_SA_INIT
    vendor_ids: tuple[str, ...]    # lower-case hex
    notify_types: tuple[int, ...]
    subject: str
    public: str


def parse(banner: str | bytes | None, banner_type: str | None = None) -> IkeBanner:
    data = as_bytes(banner)
    if len(data) < 28:
        return IkeBanner(False, None, None, (), (), "", "")
    major, minor = data[17] >> 4, data[17] & 0x0F
    if major not in (1, 2):
        return IkeBanner(False, None, None, (), (), "", "")
    exchange = data[18]
    vids: list[str] = []
    notifies: list[int] = []
    payload, pos = data[16], 28
    for _ in range(MAX_PAYLOADS):
        if payload == 0 or pos + 4 > len(data):
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 4 or pos + length > len(data):
            break              # truncated or lying length: keep what was read
        body = data[pos + 4:pos + length]
        if payload in _VENDOR_ID:
            vids.append(body[:32].hex())
        elif payload in _NOTIFY:
            # v1: DOI(4) protocol(1) spi size(1) type(2); v2: protocol(1) spi size(1) type(2)
            at = 6 if payload == 11 else 2
            if len(body) >= at + 2:
                notifies.append(int.from_bytes(body[at:at + 2], "big"))
        payload, pos = data[pos], pos + length
    version = f"{major}.{minor}"
    subject = " ".join([f"IKEv{version} exchange={exchange}",
                        *(f"vid={v}" for v in vids), *(f"notify={n}" for n in notifies)])
    return IkeBanner(True, version, exchange, tuple(vids), tuple(notifies), subject, subject)
