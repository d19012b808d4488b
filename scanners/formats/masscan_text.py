"""masscan ``-oL`` (list) and ``-oG`` (grepable) readers.

Both are line formats written by masscan's ``src/out-text.c`` and
``src/out-grepable.c``; banners pass through ``normalize_string``, so every
byte that is not printable ASCII (and ``< > & \\ " '``) is written ``\\xNN``.
A raw tab, CR or LF can therefore never be part of a field, which is why a
trailing ``\\r`` is dropped as a line-ending artefact.

``-oL`` (``masscan.list``)::

    #masscan
    open tcp 80 198.18.0.1 1795567020
    banner tcp 80 198.18.0.1 1795567027 title Fixture A \\x26amp; caf\\xc3\\xa9
    # end

``open``/``closed`` lines are status records (no reason, no TTL in this
format); ``banner`` lines split with maxsplit because the banner keeps its
spaces (an ``ssl`` banner `` ALERT(0x0250) `` gives two spaces after ``ssl``).

``-oG`` (``masscan.grepable``)::

    # Masscan 1.3.2 scan initiated Wed Nov 25 00:37:07 2026
    Timestamp: 1795567027<TAB>Host: 198.18.0.3 ()<TAB>Ports: 11211/open/udp//unknown//
    Host: 198.18.0.3 ()<TAB>Port: 11211<TAB>Service: memcached<TAB>Banner: uptime=39 ...
    # Masscan done at Wed Nov 25 00:37:14 2026

Grepable banner lines carry **no timestamp and no protocol**, so the reader
derives them (the values are approximations, documented here):

* timestamp: that of the most recent status line of the same ip:port earlier
  in the file, else the latest status timestamp seen so far, else the
  header's scan-start time (UTC, masscan writes it with ``gmtime``); a banner
  with none of these is quarantined ``invalid_timestamp``.
* transport: ``udp`` if the file's status lines show that ip:port only as
  udp, else ``tcp``. A banner whose ip:port has not yet been seen as tcp is
  held back until the end of the file (or until ``MAX_PENDING_BANNERS`` are
  waiting) because a later status line may change the answer. Consequence:
  when one ip:port is open on both tcp and udp (memcached 11211 in the
  fixtures), its udp banners are labelled ``tcp``.

Both readers set ``ctx.facts["footer"]`` (``# end`` / ``# Masscan done``);
a missing footer is ``missing_footer`` damage and every record is kept. An
empty file is what masscan writes when nothing answered: no damage.
"""
from __future__ import annotations

import calendar
import re
from typing import Iterable, Iterator

import pyarrow as pa

from pipelines.schema import TRANSPORTS, DamageKind, QuarantineReason
from scanners.base import MAX_BANNER_BYTES, RawColumns, ReadContext, lines_with_offsets
from scanners.escapes import unescape_backslash_x
from scanners.registry import Format

Q = QuarantineReason

# Grepable banners waiting for their transport; beyond this the oldest is
# decided with what is known so far (bounded memory on hostile input).
MAX_PENDING_BANNERS = 100_000
# ip:port entries remembered for the grepable timestamp/transport rules; the
# oldest is forgotten first (banners follow their status within seconds).
MAX_TRACKED_PORTS = 1_000_000
MAX_EPOCH = 2**32 - 1  # masscan prints timestamps as 32-bit unsigned
STATUSES = {b"open": "open", b"closed": "closed"}


class BadRecord(Exception):
    """One unusable record: carries the quarantine reason and a fixed detail."""

    def __init__(self, reason: QuarantineReason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# -- field parsing shared by the masscan text-like formats (-oL, -oG, -oX) ----

def parse_port(tok: bytes) -> int:
    if not (tok.isdigit() and len(tok) <= 5) or int(tok) > 65535:
        raise BadRecord(Q.INVALID_PORT, "port is not an integer in 0..65535")
    return int(tok)


def parse_epoch_us(tok: bytes) -> int:
    """Epoch seconds as written -> microseconds."""
    if not (tok.isdigit() and len(tok) <= 10) or int(tok) > MAX_EPOCH:
        raise BadRecord(Q.INVALID_TIMESTAMP, "timestamp is not 32-bit epoch seconds")
    return int(tok) * 1_000_000


def parse_transport(tok: bytes) -> str:
    t = tok.decode("ascii", "replace")
    if t not in TRANSPORTS:
        raise BadRecord(Q.INVALID_TRANSPORT, "transport is not tcp/udp/sctp/icmp")
    return t


def parse_ip(tok: bytes) -> str:
    # Kept as written (validated later); only text that cannot be an address
    # at all is refused here, because the column must be valid UTF-8.
    if not tok or len(tok) > 64 or not tok.isascii() or any(c <= 0x20 for c in tok):
        raise BadRecord(Q.INVALID_IP, "address field is empty or not ASCII text")
    return tok.decode("ascii")


def parse_service(tok: bytes) -> str:
    if not tok or len(tok) > 64 or not tok.isascii() or any(c < 0x20 for c in tok):
        raise BadRecord(Q.MALFORMED_RECORD, "banner type is empty or not ASCII text")
    return tok.decode("ascii")


def parse_banner(escaped: bytes) -> bytes:
    """Original banner bytes from masscan's ``\\xNN`` text."""
    if len(escaped) > 4 * MAX_BANNER_BYTES:
        raise BadRecord(Q.OVERSIZED_RECORD, f"banner longer than {MAX_BANNER_BYTES} bytes")
    banner = unescape_backslash_x(escaped)
    if len(banner) > MAX_BANNER_BYTES:
        raise BadRecord(Q.OVERSIZED_RECORD, f"banner longer than {MAX_BANNER_BYTES} bytes")
    return banner


def strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def finish(ctx: ReadContext, footer: bool | None, partial: list) -> None:
    """Common end-of-file bookkeeping: partial last line and footer."""
    for off, data in partial:
        ctx.quarantine(off, Q.TRUNCATED_RECORD, "file ends inside this line", data)
        ctx.damage(DamageKind.PARTIAL_LAST_RECORD, off, "last line has no newline")
    ctx.facts["footer"] = footer
    if footer is False:
        ctx.damage(DamageKind.MISSING_FOOTER, None, "file ends without masscan's footer line")


# -- -oL ---------------------------------------------------------------------

def _list_record(cols: RawColumns, off: int, line: bytes) -> None:
    kind = line.split(b" ", 1)[0]
    if kind == b"banner":
        parts = line.split(b" ", 6)
        if len(parts) < 6:
            raise BadRecord(Q.MISSING_FIELD, "banner line has fewer than 6 fields")
        escaped = parts[6] if len(parts) == 7 else b""  # "... <service> " + empty banner
        status, service, banner = None, parse_service(parts[5]), parse_banner(escaped)
    elif kind in STATUSES:
        parts = line.split(b" ")
        if len(parts) != 5:
            raise BadRecord(Q.MALFORMED_RECORD, "status line does not have 5 fields")
        status, service, banner = STATUSES[kind], None, None
    else:
        raise BadRecord(Q.MALFORMED_RECORD, "line is not open/closed/banner")
    transport = parse_transport(parts[1])
    port = parse_port(parts[2])
    ip = parse_ip(parts[3])
    ts = parse_epoch_us(parts[4])
    cols.add(ip=ip, port=port, transport=transport, status=status, timestamp_us=ts,
             service=service, banner=banner, offset=off)


def read_list(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """masscan ``-oL`` -> RAW_SCHEMA batches (see module docstring)."""
    cols = RawColumns(ctx, "masscan")
    footer: bool | None = None  # None: no content at all
    partial: list = []
    for off, line in lines_with_offsets(chunks, ctx, lambda o, d: partial.append((o, d))):
        line = strip_cr(line)
        if not line.strip():
            continue
        if line.startswith(b"#"):
            # "#masscan" header, "# end" footer; no other comment is written.
            footer = line.rstrip() == b"# end"
            continue
        footer = False
        try:
            _list_record(cols, off, line)
        except BadRecord as e:
            ctx.quarantine(off, e.reason, e.detail, line)
        yield from cols.maybe_flush()
    if partial and strip_cr(partial[0][1]).rstrip() == b"# end":
        footer, partial = True, []  # footer without its newline: nothing lost
    elif partial and partial[0][1].startswith(b"#"):
        footer, partial = False, []  # a cut comment line is no record
    elif partial:
        footer = False
    finish(ctx, footer, partial)
    yield from cols.flush()


# -- -oG ---------------------------------------------------------------------

_G_HEADER = re.compile(rb"# Masscan (\S+) scan initiated (.*)")
_G_HOST = re.compile(rb"Host: (\S+) \([^)]*\)")
_MONTHS = {m.encode(): i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def parse_ctime(text: bytes) -> int | None:
    """``Wed Nov 25 00:37:07 2026`` (strftime ``%c``, C locale, UTC) -> µs."""
    p = text.split()
    if len(p) != 5 or p[1] not in _MONTHS or not p[2].isdigit() or not p[4].isdigit():
        return None
    hms = p[3].split(b":")
    if len(hms) != 3 or not all(x.isdigit() and len(x) <= 2 for x in hms):
        return None
    try:
        secs = calendar.timegm((int(p[4]), _MONTHS[p[1]], int(p[2]),
                                int(hms[0]), int(hms[1]), int(hms[2])))
    except (ValueError, OverflowError):
        return None
    return secs * 1_000_000 if 0 <= secs <= MAX_EPOCH else None


class _Grepable:
    """State of one -oG file: the timestamp/transport rules need memory."""

    def __init__(self, ctx: ReadContext):
        self.ctx = ctx
        self.cols = RawColumns(ctx, "masscan")
        self.header_ts: int | None = None
        self.latest_ts: int | None = None
        self.ports: dict = {}    # (ip, port) -> [last status ts, set of transports]
        self.pending: list = []  # banners waiting for their transport

    def remember(self, key, ts: int, transport: str) -> None:
        entry = self.ports.pop(key, None) or [ts, set()]
        entry[0] = ts
        entry[1].add(transport)
        self.ports[key] = entry  # re-insert: dict order = least recently seen first
        if len(self.ports) > MAX_TRACKED_PORTS:
            del self.ports[next(iter(self.ports))]

    def transport_of(self, key) -> str:
        entry = self.ports.get(key)
        return "udp" if entry and entry[1] == {"udp"} else "tcp"

    def status(self, off: int, ts: int | None, ip: str, field: bytes) -> None:
        parts = field[len(b"Ports: "):].split(b"/")
        if len(parts) < 3:
            raise BadRecord(Q.MISSING_FIELD, "Ports: field lacks port/status/proto")
        port = parse_port(parts[0])
        if parts[1] not in STATUSES:
            raise BadRecord(Q.MALFORMED_RECORD, "port state is not open/closed")
        transport = parse_transport(parts[2])
        if ts is None:  # masscan before 1.3 wrote no Timestamp: field
            ts = self.latest_ts if self.latest_ts is not None else self.header_ts
            if ts is None:
                raise BadRecord(Q.INVALID_TIMESTAMP, "no timestamp in line or file header")
        self.latest_ts = ts if self.latest_ts is None else max(self.latest_ts, ts)
        self.remember((ip, port), ts, transport)
        self.cols.add(ip=ip, port=port, transport=transport, status=STATUSES[parts[1]],
                      timestamp_us=ts, offset=off)

    def banner(self, off: int, ip: str, fields: list) -> None:
        port = parse_port(fields[1][len(b"Port: "):])
        service = parse_service(fields[2][len(b"Service: "):])
        banner = parse_banner(fields[3][len(b"Banner: "):])
        entry = self.ports.get((ip, port))
        ts = entry[0] if entry else (self.latest_ts if self.latest_ts is not None
                                     else self.header_ts)
        if ts is None:
            raise BadRecord(Q.INVALID_TIMESTAMP, "no status line or header to date this banner")
        row = dict(ip=ip, port=port, timestamp_us=ts, service=service, banner=banner, offset=off)
        if entry and "tcp" in entry[1]:
            self.cols.add(transport="tcp", **row)  # a later line cannot make it udp-only
        else:
            self.pending.append(row)
            if len(self.pending) > MAX_PENDING_BANNERS:
                self.release(1)

    def release(self, n: int | None = None) -> None:
        n = len(self.pending) if n is None else n
        todo, self.pending = self.pending[:n], self.pending[n:]
        for row in todo:
            self.cols.add(transport=self.transport_of((row["ip"], row["port"])), **row)

    def line(self, off: int, line: bytes) -> None:
        fields = line.split(b"\t")
        ts = None
        if fields[0].startswith(b"Timestamp: "):
            ts = parse_epoch_us(fields.pop(0)[len(b"Timestamp: "):])
        m = _G_HOST.fullmatch(fields[0]) if fields else None
        if m is None:
            raise BadRecord(Q.MALFORMED_RECORD, "line has no 'Host: <ip> ()' field")
        ip = parse_ip(m.group(1))
        if len(fields) == 2 and fields[1].startswith(b"Ports: "):
            self.status(off, ts, ip, fields[1])
        elif (len(fields) == 4 and fields[1].startswith(b"Port: ")
              and fields[2].startswith(b"Service: ") and fields[3].startswith(b"Banner: ")):
            self.banner(off, ip, fields)
        else:
            raise BadRecord(Q.MALFORMED_RECORD, "line is neither a Ports: nor a Banner: line")


def read_grepable(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """masscan ``-oG`` -> RAW_SCHEMA batches (see module docstring)."""
    g = _Grepable(ctx)
    footer: bool | None = None
    partial: list = []
    for off, line in lines_with_offsets(chunks, ctx, lambda o, d: partial.append((o, d))):
        line = strip_cr(line)
        if not line.strip():
            continue
        if line.startswith(b"#"):
            footer = line.startswith(b"# Masscan done at ")
            m = _G_HEADER.fullmatch(line)
            if m:
                ctx.facts["tool_version"] = m.group(1).decode("ascii", "replace")[:32]
                g.header_ts = parse_ctime(m.group(2))
            continue
        footer = False
        try:
            g.line(off, line)
        except BadRecord as e:
            ctx.quarantine(off, e.reason, e.detail, line)
        yield from g.cols.maybe_flush()
    if partial and partial[0][1].startswith(b"#"):
        footer = partial[0][1].startswith(b"# Masscan done at ")
        partial = []
    elif partial:
        footer = False
    g.release()
    finish(ctx, footer, partial)
    yield from g.cols.flush()


def sniff_list(head: bytes) -> bool:
    return head.startswith((b"#masscan\n", b"#masscan\r\n"))


def sniff_grepable(head: bytes) -> bool:
    return _G_HEADER.match(head.split(b"\n", 1)[0]) is not None


FORMATS = (
    Format("masscan-list", "masscan", sniff_list, read_list),
    Format("masscan-grepable", "masscan", sniff_grepable, read_grepable),
)
