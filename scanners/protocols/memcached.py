"""memcached versions.

Input: the ``memcached`` banner, one of

* masscan's summary of the ``stats`` reply: ``uptime=11 time=1795566999
  version=1.6.18 `` (trailing blank; over UDP the second datagram gives an
  empty banner);
* zgrab2's ``version``: ``1.6.38\\r`` (the CR of the ``VERSION`` line kept);
* a raw ``VERSION 1.6.38\\r\\n`` line or ``STAT version 1.6.18`` stats block.

The subject is the version (``1.6.18``). Public form: ``version=1.6.18`` --
the same whichever tool saw it; uptime and clock values identify a host's
boot and are dropped.
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols.redact import redact
from scanners.protocols.rules import as_text

NAME = "memcached"

_NUMBER = r"(\d{1,3}\.\d{1,3}(?:\.\d{1,4})?(?:[-.~+][\w.~+-]{0,40})?)"
_PREFIXED = re.compile(rf"(?:^|\s)(?:version=|VERSION |STAT version ){_NUMBER}(?=\s|$)")
_BARE = re.compile(_NUMBER)
_KV = re.compile(r"(?:^|\s)(uptime|time)=(\d{1,20})(?=\s|$)")


@dataclasses.dataclass(frozen=True)
class MemcachedBanner:
    version: str | None
    uptime: int | None      # seconds since start (never public)
    time: int | None        # server clock, epoch seconds (never public)
    subject: str
    public: str


def parse(banner: str | bytes | None, banner_type: str | None = None) -> MemcachedBanner:
    text = as_text(banner)
    m = _PREFIXED.search(text) or _BARE.fullmatch(text.strip())
    values = {k: int(v) for k, v in _KV.findall(text)}
    version = m.group(1) if m else None
    return MemcachedBanner(version, values.get("uptime"), values.get("time"),
                           version or "", f"version={redact(version, free=True)}" if version else "")
