"""Which reader reads a file: sniffed from its decompressed content.

Each format module in ``scanners/formats/`` exposes

* ``FORMATS``: a tuple of ``Format`` entries it provides, each with
  ``sniff(head: bytes) -> bool`` over the first ``SNIFF_BYTES`` of the
  decompressed file and ``read(chunks, ctx) -> Iterator[pa.RecordBatch]``.

Order matters: the first format whose ``sniff`` says yes reads the file, so
specific signatures (magic strings) come before loose ones (a bare IP list).
If none says yes at the first line, ``sniff_at`` tries the head from each
later line (junk before the first record is quarantined, not fatal); past
that window ``_sniff_further`` keeps looking, one bounded window at a time.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Iterable, Iterator

import pyarrow as pa

from pipelines.schema import DamageKind, QuarantineReason
from scanners.base import ReadContext
from scanners.compression import iter_decompressed
from scanners.rawbuf import Gap, Skipped

SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 512             # junk lines tried before a file is called unknown
BYTE_STREAM_FORMATS = frozenset({"masscan-binary"})   # not line-based: no junk head, no resync

# Module names, in sniffing order (most specific signatures first).
FORMAT_MODULES = (
    "scanners.formats.masscan_binary",
    "scanners.formats.masscan_xml",
    "scanners.formats.masscan_text",   # -oL, -oG
    "scanners.formats.masscan_json",   # ndjson/-oD and -oJ
    "scanners.formats.zgrab2",
    "scanners.formats.zmap",           # csv (with/without header), json, bare IP list
)


@dataclasses.dataclass(frozen=True)
class Format:
    name: str                 # e.g. "masscan-ndjson"
    tool: str                 # masscan / zmap / zgrab2
    sniff: Callable[[bytes], bool]
    read: Callable[[Iterable[bytes], ReadContext], Iterator[pa.RecordBatch]]


def all_formats() -> tuple[Format, ...]:
    out: list[Format] = []
    for mod in FORMAT_MODULES:
        out.extend(importlib.import_module(mod).FORMATS)
    return tuple(out)


def sniff_format(head: bytes) -> Format | None:
    for fmt in all_formats():
        if fmt.sniff(head):
            return fmt
    return None


def sniff_at(head: bytes) -> tuple[Format, int] | None:
    """(format, offset of its first line): the first line of ``head`` at
    which some format's sniffer says yes. Lines before it are junk (masscan's
    progress lines captured with ``2>&1``, a shell banner), never a reason to
    drop the file. Byte-stream formats are only recognised at offset 0."""
    fmt = sniff_format(head)
    if fmt is not None:
        return fmt, 0
    line_formats = [f for f in all_formats() if f.name not in BYTE_STREAM_FORMATS]
    pos, tried = 0, 0
    while tried < SNIFF_LINES:
        nl = head.find(b"\n", pos)
        if nl < 0 or nl + 1 >= len(head):
            return None
        pos = nl + 1
        rest = head[pos:]
        if not rest.strip(b" \t\r\n"):
            return None
        if head[pos:pos + 1] in (b"\n", b"\r"):
            continue
        tried += 1
        for fmt in line_formats:
            if fmt.sniff(rest):
                return fmt, pos
    return None


def _sniff_segments(segments: list[bytes]) -> tuple[Format, int, bool] | None:
    """(format, junk head length, found in the first segment) from the first
    undamaged stretch that names a format (a file whose first block is lost
    is still recognised by what follows)."""
    for i, seg in enumerate(segments):
        if not seg.strip():
            continue
        found = sniff_at(seg[:SNIFF_BYTES] if i == 0 else seg[seg.find(b"\n") + 1:][:SNIFF_BYTES])
        if found is not None:
            return found[0], found[1], i == 0
    return None


def read_file_chunks(raw_chunks: Iterable[bytes], ctx: ReadContext,
                     max_bytes: int | None = None) -> Iterator[pa.RecordBatch]:
    """Decompress, sniff and read one file's raw chunks into RAW_SCHEMA batches.

    Never raises on bad content: an unrecognised file is recorded as damage
    (``unknown_format``, its whole decompressed size as one range) with no
    records. ``ctx.facts`` gets ``format`` and ``tool``, and the byte counts
    of the byte identity (``scanners.compression``, ``scanners.lines``).
    ``max_bytes``: the file's decompression ceiling.
    """
    chunks = iter_decompressed(raw_chunks, ctx, max_bytes=max_bytes)
    ctx.facts["record_bytes"] = 0
    segments, buffered, held = [b""], [], 0
    for c in chunks:
        buffered.append(c)
        if isinstance(c, Gap):
            segments.append(b"")     # damage: each side is judged on its own
            continue
        segments[-1] += c
        held += len(c)
        if held >= SNIFF_BYTES:
            break
    found = _sniff_segments(segments)
    if found is None and len(segments) == 1 and held >= SNIFF_BYTES:
        # a junk head longer than the first window: look further (issue 13)
        fmt, junk, rest, pending = _sniff_further(segments[0], chunks)
        if fmt is not None:
            yield from _read_after_junk(fmt, junk, rest, chunks, ctx)
            return
        ctx.facts["format"] = "unknown"
        n = junk + _drained(pending, ctx) + _drained(chunks, ctx)
        ctx.damage(DamageKind.UNKNOWN_FORMAT, 0,
                   "content matches no masscan, zmap or zgrab2 output format", length=n)
        return
    if found is None:
        ctx.facts["format"] = "unknown"
        n = _drained(buffered, ctx) + _drained(chunks, ctx)   # drain: compression damage still counts
        if any(seg.strip() for seg in segments):
            ctx.damage(DamageKind.UNKNOWN_FORMAT, 0,
                       "content matches no masscan, zmap or zgrab2 output format", length=n)
        else:
            ctx.facts["record_bytes"] = n  # empty or blank: nothing in it to lose
        return
    head = segments[0]
    fmt, start, first = found
    if not first:
        start = 0           # recognised after a gap: the reader judges the bytes before it line by line
    ctx.facts["format"] = fmt.name
    ctx.facts["tool"] = fmt.tool
    if start:
        _junk_head(head[:start], fmt, ctx)
    if fmt.name in BYTE_STREAM_FORMATS:
        yield from fmt.read(_until_gap(buffered, chunks, ctx), ctx)
    else:
        yield from fmt.read(_replay(buffered, chunks, start), ctx)
    left = _drained(chunks, ctx)
    if left:
        ctx.facts["unread_bytes"] = left   # a reader that stops early: the byte identity shows it


def _scan(head: bytes, formats, mid_line: bool, final: bool) -> tuple[Format | None, int]:
    """(format, offset) of the first complete line of ``head`` (the last one too
    if ``final``) some line format sniffs, or (None, offset of the first line not
    yet judged). ``mid_line``: ``head`` starts inside a line, skipped."""
    pos, tried = 0, 0
    if mid_line:
        nl = head.find(b"\n")
        if nl < 0:
            return None, len(head)
        pos = nl + 1
    while tried < SNIFF_LINES and pos < len(head):
        nl = head.find(b"\n", pos)
        if nl < 0 and not final:
            return None, pos
        end = len(head) if nl < 0 else nl
        if head[pos:end].strip(b" \t\r"):
            tried += 1
            nxt = head.find(b"\n", end + 1)   # a sniffer sees this line and the next, not the whole carry
            sample = head[pos:min(len(head) if nxt < 0 else nxt + 1, pos + SNIFF_BYTES)]
            for fmt in formats:
                if fmt.sniff(sample):
                    return fmt, pos
        pos = end + 1
    return None, min(pos, len(head))


def _sniff_further(window: bytes, chunks: Iterator) -> tuple[Format | None, int, bytes, list]:
    """Search past the first window, one bounded window at a time, for the
    first line a line format sniffs: (format, junk bytes before it, the held
    bytes from it on, []), or (None, bytes judged, b"", [the Gap that stopped
    the search] or []). Judged bytes are dropped, not held; a line longer than
    a window is judged piecewise (``mid_line``), so memory stays bounded."""
    formats = [f for f in all_formats() if f.name not in BYTE_STREAM_FORMATS]
    judged, carry, mid_line, eof = 0, window, False, False
    while True:
        fmt, off = _scan(carry, formats, mid_line, eof)
        if fmt is not None:
            return fmt, judged + off, carry[off:], []
        if eof and off >= len(carry):
            return None, judged + len(carry), b"", []
        if off == 0 and mid_line is False and len(carry) >= SNIFF_BYTES and b"\n" not in carry:
            off = len(carry)      # one line longer than a window: judged without holding it whole
        mid_line = off == len(carry) and not carry.endswith(b"\n")   # off is a line start otherwise
        judged += off
        carry = carry[off:]
        while len(carry) < SNIFF_BYTES:
            c = next(chunks, None)
            if c is None:
                eof = True
                break
            if isinstance(c, Gap):    # damage mid-search: the rest is judged as unknown
                return None, judged + len(carry), b"", [c]
            carry += c


def _read_after_junk(fmt: Format, junk: int, rest: bytes, chunks: Iterator, ctx: ReadContext):
    """Read from the first record found past the first window: the junk before
    it is one damaged range (not held, so not quarantined line by line)."""
    ctx.facts["format"] = fmt.name
    ctx.facts["tool"] = fmt.tool
    ctx.facts["junk_head_bytes"] = junk
    ctx.damage(DamageKind.UNKNOWN_FORMAT, 0,
               f"{junk} bytes before the first {fmt.name} record match no format", length=junk)

    def stream():
        yield Skipped(junk)
        if rest:
            yield rest
        yield from chunks
    yield from fmt.read(stream(), ctx)
    left = _drained(chunks, ctx)
    if left:
        ctx.facts["unread_bytes"] = left


def _drained(chunks, ctx: ReadContext) -> int:
    """Bytes left in ``chunks``, read to the end; gaps among them recovered no records."""
    n = 0
    for c in chunks:
        if isinstance(c, Gap):
            c.info.setdefault("records_before", ctx.records_read)
        else:
            n += len(c)
    return n


def _replay(buffered: list, chunks: Iterator, start: int) -> Iterator:
    if start:
        yield Skipped(start)
    for c in buffered:
        if start and not isinstance(c, Gap):
            c, start = c[start:], max(start - len(c), 0)
            if not c:
                continue
        yield c
    yield from chunks


def _junk_head(junk: bytes, fmt: Format, ctx: ReadContext) -> None:
    """Quarantine each non-blank line before the first record: counted, not dropped."""
    pos = 0
    for line in junk.split(b"\n")[:-1]:
        if line.strip():
            ctx.quarantine(pos, QuarantineReason.MALFORMED_RECORD,
                           f"line before the first {fmt.name} record matches no format", line)
        pos += len(line) + 1
    ctx.facts["record_bytes"] += len(junk)
    ctx.facts["junk_head_bytes"] = len(junk)


def _until_gap(buffered: list, chunks: Iterator, ctx: ReadContext) -> Iterator[bytes]:
    """A byte-stream format's bytes up to the first damage: it cannot find
    its records again after a gap, so the rest is one damaged range."""
    def all_chunks():
        yield from buffered
        yield from chunks
    offset = 0
    it = all_chunks()
    for c in it:
        if isinstance(c, Gap):
            c.info["records_before"] = ctx.records_read
            rest = _drained(it, ctx)
            ctx.damage(DamageKind.RECORD_CUT_BY_DAMAGE, offset,
                       "a byte-stream format cannot find its records again after damage", length=rest)
            return
        offset += len(c)
        ctx.facts["record_bytes"] += len(c)
        yield c
