"""masscan ``-oB`` binary reader (``src/out-binary.c``, read back by masscan's
own ``src/in-binary.c``).

The file is a stream of records ``[type][length][payload]``. ``type`` and
``length`` are big-endian base-128 numbers (high bit = more bytes follow;
masscan writes one byte for the type and one or two for the length). The
file starts and ends with a pseudo-record of type ``'m'`` (0x6d) and length
``'a'`` (97), so ``masscan/1.1\\ns:<epoch>\\n`` is both magic and record::

    6d 61 "sscan/1.1\\ns:1795567034\\n" 00 ...   header (99 bytes in all)
    06 0d <ts:4><ipv4:4><proto:1><port:2><reason:1><ttl:1>           open
    09 37 <ts:4><ipv4:4><proto:1><port:2><app:2><ttl:1><banner...>   banner
    6d 61 "sscan/1.1" 00 ...                     trailer (the footer)

All integers are big-endian. Record types (payload layout as in-binary.c):

====  =========================================================  ==========
type  payload                                                     status
====  =========================================================  ==========
1, 2  ts ipv4 port reason ttl (transport guessed from the port)   open/closed
3     ts ipv4 port app banner (always tcp, no ttl)                banner
4     like 5 but one byte longer than its length says (sic)       banner
5     ts ipv4 proto port app banner (no ttl)                      banner
6, 7  ts ipv4 proto port reason ttl                               open/closed
9     ts ipv4 proto port app ttl banner                           banner
10,11 ts proto port reason ttl ipver(6) ipv6:16                   open/closed
13    ts proto port app ttl ipver(6) ipv6:16 banner               banner
8, 12 ARP (v4/v6): written by masscan, read by nothing; quarantined
====  =========================================================  ==========

``reason`` is the TCP flags byte, printed nmap-style (``syn-ack``, ``rst-ack``,
``none`` for 0) exactly as masscan's text writers do. ``app`` is masscan's
``enum ApplicationProtocol``; see ``APP_NAMES_1_3``.

Damage: an unknown type byte means the stream is lost (the length that follows
cannot be trusted), so it is ``bad_record_type`` damage, that record is
quarantined ``unknown_record_type`` (as far as its declared length reaches)
and everything after it as ONE ``unreadable_data`` record. A record cut by the
end of the file is ``truncated_record`` + ``partial_last_record``; a file
without the trailer is ``missing_footer``. Every record before is kept.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable, Iterator

import pyarrow as pa

from pipelines.schema import DamageKind, QuarantineReason
from scanners.base import EXCERPT_BYTES, MAX_BANNER_BYTES, MAX_RECORD_BYTES, RawColumns, ReadContext
from scanners.registry import Format

Q = QuarantineReason

MAGIC = b"masscan/1.1"
PSEUDO = 0x6D  # 'm': header/trailer pseudo-record
MAX_VARINT_BYTES = 4  # masscan writes at most 2; more means corruption
_COMPACT_AT = 1 << 20

# masscan's enum ApplicationProtocol -> masscan_app_to_string(), as in every
# release up to 1.3.2 (checked against tests/fixtures/real/masscan.bin, where
# 3=ssh 4=http 5=ftp 9=ssl 11=smtp 15=X509 16=title 24=memcached 30=http.server).
# Later git versions insert X509CA at 16 and shift 16.. by one; files from
# them cannot be told apart by header, so ids are named with this table and
# an id beyond it is written "(N)" as masscan itself does.
APP_NAMES_1_3 = (
    "unknown", "unknown", "ssh", "ssh", "http", "ftp", "dns-ver", "snmp", "nbtstat",
    "ssl", "smb", "smtp", "pop", "imap", "zeroaccess", "X509", "title", "html", "ntp",
    "vuln", "heartbleed", "ticketbleed", "vnc", "safe", "memcached", "scripting",
    "versioning", "coap", "telnet", "rdp", "http.server",
)
IP_PROTOS = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
_TCP_FLAGS = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")
# Old type 1/2 records have no protocol byte; in-binary.c guesses from the port.
_V1_UDP_PORTS = {53, 123, 137, 161}
_V1_SCTP_PORTS = {36422, 36412, 2905}


class _Bad(Exception):
    def __init__(self, reason: QuarantineReason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def reason_string(flags: int) -> str:
    """TCP flags byte -> masscan's nmap-style reason (``reason_string`` in output.c)."""
    names = [n for i, n in enumerate(_TCP_FLAGS) if flags & (1 << i)]
    return "-".join(names) if names else "none"


def app_name(app: int) -> str:
    return APP_NAMES_1_3[app] if app < len(APP_NAMES_1_3) else f"({app})"


def _u(p: bytes, a: int, n: int) -> int:
    return int.from_bytes(p[a:a + n], "big")


def _ipv4(p: bytes, a: int) -> str:
    return ".".join(str(b) for b in p[a:a + 4])


def _ipv6(p: bytes, a: int) -> str:
    if p[a] != 6:
        raise _Bad(Q.MALFORMED_RECORD, "IPv6 record whose ip version byte is not 6")
    return str(ipaddress.IPv6Address(p[a + 1:a + 17]))


def _transport(proto: int) -> str:
    if proto not in IP_PROTOS:
        raise _Bad(Q.INVALID_TRANSPORT, "IP protocol is not icmp/tcp/udp/sctp")
    return IP_PROTOS[proto]


# type -> (minimum payload length, decoder). A decoder returns add() kwargs.
def _status_v1(p: bytes, status: str) -> dict:
    port = _u(p, 8, 2)
    transport = "udp" if port in _V1_UDP_PORTS else "sctp" if port in _V1_SCTP_PORTS else "tcp"
    return dict(ts=_u(p, 0, 4), ip=_ipv4(p, 4), transport=transport, port=port,
                status=status, reason=reason_string(p[10]), ttl=p[11])


def _status_v2(p: bytes, status: str) -> dict:
    return dict(ts=_u(p, 0, 4), ip=_ipv4(p, 4), transport=_transport(p[8]), port=_u(p, 9, 2),
                status=status, reason=reason_string(p[11]), ttl=p[12])


def _status_v6(p: bytes, status: str) -> dict:
    return dict(ts=_u(p, 0, 4), transport=_transport(p[4]), port=_u(p, 5, 2),
                status=status, reason=reason_string(p[7]), ttl=p[8], ip=_ipv6(p, 9))


def _banner(ip: str, ts: int, proto: int, port: int, app: int, ttl, data: bytes) -> dict:
    if len(data) > MAX_BANNER_BYTES:
        raise _Bad(Q.OVERSIZED_RECORD, f"banner longer than {MAX_BANNER_BYTES} bytes")
    return dict(ts=ts, ip=ip, transport=_transport(proto), port=port, ttl=ttl,
                service=app_name(app), banner=data)


DECODERS = {
    1: (12, lambda p: _status_v1(p, "open")),
    2: (12, lambda p: _status_v1(p, "closed")),
    3: (12, lambda p: _banner(_ipv4(p, 4), _u(p, 0, 4), 6, _u(p, 8, 2), _u(p, 10, 2), None, p[12:])),
    4: (13, lambda p: _banner(_ipv4(p, 4), _u(p, 0, 4), p[8], _u(p, 9, 2), _u(p, 11, 2), None, p[13:])),
    5: (13, lambda p: _banner(_ipv4(p, 4), _u(p, 0, 4), p[8], _u(p, 9, 2), _u(p, 11, 2), None, p[13:])),
    6: (13, lambda p: _status_v2(p, "open")),
    7: (13, lambda p: _status_v2(p, "closed")),
    9: (14, lambda p: _banner(_ipv4(p, 4), _u(p, 0, 4), p[8], _u(p, 9, 2), _u(p, 11, 2), p[13], p[14:])),
    10: (26, lambda p: _status_v6(p, "open")),
    11: (26, lambda p: _status_v6(p, "closed")),
    13: (27, lambda p: _banner(_ipv6(p, 10), _u(p, 0, 4), p[4], _u(p, 5, 2), _u(p, 7, 2), p[9], p[27:])),
}
ARP_TYPES = {8, 12}


class _Stream:
    """Byte buffer over the chunk iterator, with absolute offsets."""

    def __init__(self, chunks: Iterable[bytes]):
        self._it = iter(chunks)
        self.buf = bytearray()
        self.pos = 0
        self.base = 0  # file offset of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def have(self, n: int) -> bool:
        """True once n bytes from pos are buffered; False at end of file."""
        while len(self.buf) - self.pos < n:
            chunk = next(self._it, None)
            if chunk is None:
                return False
            if self.pos >= _COMPACT_AT:
                del self.buf[:self.pos]
                self.base += self.pos
                self.pos = 0
            self.buf += chunk
        return True

    def varint(self, at: int) -> tuple[int | None, int]:
        """(value, size) of the number at pos+at; (None, 0) if cut, (None, -1) if too long."""
        value = 0
        for i in range(MAX_VARINT_BYTES):
            if not self.have(at + i + 1):
                return None, 0
            b = self.buf[self.pos + at + i]
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                return value, i + 1
        return None, -1

    def drain(self) -> tuple[int, bytes]:
        """Consume the rest of the file: (its length, its first bytes)."""
        head = bytes(self.buf[self.pos:self.pos + EXCERPT_BYTES])
        n = len(self.buf) - self.pos
        for chunk in self._it:
            if len(head) < EXCERPT_BYTES:
                head += chunk[:EXCERPT_BYTES - len(head)]
            n += len(chunk)
        self.buf, self.pos, self.base = bytearray(), 0, self.base + self.pos + n
        return n, head


def _pseudo(ctx: ReadContext, payload: bytes, is_header: bool) -> None:
    if not is_header:
        return
    text = (b"ma" + payload).split(b"\0", 1)[0].split(b"\n")
    version = text[0][len(b"masscan/"):].decode("ascii", "replace")
    ctx.facts["binary_version"] = version
    start = text[1][2:] if len(text) > 1 and text[1].startswith(b"s:") else b""
    if start.isdigit() and len(start) <= 10:
        ctx.facts["scan_start"] = int(start)
    # Only 1.3-era masscan writes exactly "masscan/1.1" plus an s: line
    # (older ones wrote "masscan/1.1.01" / "masscan/1.1.02"); nothing in the
    # file names the release itself.
    ctx.facts.setdefault("tool_version", "1.3.x (binary v1.1)" if version == "1.1" and start
                         else f"unknown (binary v{version[:16]})")


def _lost(ctx: ReadContext, st: _Stream, start: int, what: str, detail: str) -> None:
    """The stream cannot be followed past ``start``: quarantine the record
    there as far as its declared length goes, and the rest as one record."""
    ctx.damage(DamageKind.BAD_RECORD_TYPE, start, detail)
    _, n1 = st.varint(0)
    length, n2 = st.varint(max(n1, 0)) if n1 > 0 else (None, 0)
    size = n1 + n2 + length if length is not None and n2 > 0 else max(n1, 1)
    size = min(size, MAX_RECORD_BYTES)
    st.have(size)
    record = bytes(st.buf[st.pos:st.pos + size])
    st.pos += len(record)
    ctx.quarantine(start, Q.UNKNOWN_RECORD_TYPE, what, record)
    rest_at = st.offset
    n, head = st.drain()
    if n:
        ctx.quarantine(rest_at, Q.UNREADABLE_DATA,
                       f"{n} bytes after an unknown record type, not resynchronised", head)


def read_binary(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """masscan ``-oB`` -> RAW_SCHEMA batches (see module docstring)."""
    st = _Stream(chunks)
    cols = RawColumns(ctx, "masscan")
    footer: bool | None = None
    after_trailer = True  # the next 'm' record is a header
    while st.have(1):
        start = st.offset
        rtype, n1 = st.varint(0)
        length, n2 = st.varint(n1) if n1 > 0 else (None, n1)
        if rtype is not None and rtype not in DECODERS and rtype not in ARP_TYPES \
                and rtype != PSEUDO:
            _lost(ctx, st, start, f"record type {rtype} unknown",
                  f"unknown record type {rtype}; rest of file unreadable")
            footer = None  # the trailer may be among the unreadable bytes
            break
        if n1 < 0 or n2 < 0 or (length is not None and length > MAX_RECORD_BYTES):
            _lost(ctx, st, start, "record type or length field corrupt",
                  "record type or length field is corrupt; rest of file unreadable")
            footer = None
            break
        size = n1 + n2 + (length or 0) + (1 if rtype == 4 else 0)  # type 4: sic, see docstring
        if length is None or not st.have(size):
            n, head = st.drain()
            ctx.quarantine(start, Q.TRUNCATED_RECORD, "file ends inside this record", head)
            ctx.damage(DamageKind.PARTIAL_LAST_RECORD, start, f"last record cut after {n} bytes")
            footer = False
            break
        payload = bytes(st.buf[st.pos + n1 + n2:st.pos + size])
        st.pos += size
        if rtype == PSEUDO:
            if not payload.startswith(b"sscan/1.1"):
                st.pos -= size
                _lost(ctx, st, start, "'m' record without masscan magic",
                      "'m' record without masscan magic; rest of file unreadable")
                footer = None
                break
            _pseudo(ctx, payload, after_trailer)
            footer = not after_trailer
            after_trailer = footer
            continue
        footer, after_trailer = False, False
        if rtype in ARP_TYPES:
            ctx.quarantine(start, Q.UNKNOWN_RECORD_TYPE, "ARP record: no port observation",
                           payload)
            continue
        min_len, decode = DECODERS[rtype]
        try:
            if len(payload) < min_len:
                raise _Bad(Q.MALFORMED_RECORD, f"type {rtype} record shorter than {min_len} bytes")
            row = decode(payload)
        except _Bad as e:
            ctx.quarantine(start, e.reason, e.detail, payload)
            continue
        ts = row.pop("ts")
        cols.add(timestamp_us=ts * 1_000_000, offset=start, **row)
        yield from cols.maybe_flush()
    ctx.facts["footer"] = footer
    if footer is False:
        ctx.damage(DamageKind.MISSING_FOOTER, None, "file ends without masscan's trailer record")
    yield from cols.flush()


def sniff_binary(head: bytes) -> bool:
    return head.startswith(MAGIC)


FORMATS = (Format("masscan-binary", "masscan", sniff_binary, read_binary),)
