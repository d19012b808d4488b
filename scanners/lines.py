"""Byte plumbing shared by the line-oriented readers: decompressed chunks ->
blocks of whole lines with their byte offsets, the oversized-line limit, a
last line cut off by the end of the file, JSON Lines, ISO 8601 times.

Limits are arguments, not imports: each reader passes its own
``MAX_RECORD_BYTES``/``BLOCK_BYTES`` at call time (tests shrink them per
reader), and ``scanners.base.lines_with_offsets`` is built on this module.

Sample: ``iter_lines([b"a\\nbb", b"b\\ncc"], ctx, max_record=4)`` yields
``(0, b"a")``, ``(2, b"bbb")``, ``(6, b"cc")``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, NamedTuple

import numpy as np

from pipelines.schema import DamageKind, QuarantineReason as Q

from scanners.rawbuf import Gap, Skipped

if TYPE_CHECKING:
    from scanners.base import ReadContext

BLOCK_BYTES = 4 << 20   # whole lines handed on at once: large enough that numpy/pyarrow dominate

_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                  r"(?:[.,]([0-9]{1,9}))?(Z|[+-][0-9]{2}:?[0-9]{2})\Z", re.IGNORECASE)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Block(NamedTuple):
    """Whole lines of a decompressed file, each ending in ``\\n``; or, with
    ``complete=False``, the file's last piece, which has no newline."""

    offset: int           # of data[0] in the decompressed file
    data: bytes
    starts: np.ndarray    # int64: where each line starts in data
    ends: np.ndarray      # int64: where each line ends (exclusive, without its \n)
    complete: bool


def line_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without ``\\n``) of every line of ``data``;
    a last piece without newline is a line too."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10).astype(np.int64, copy=False)
    if data and data[-1] != 10:
        ends = np.append(ends, len(data))
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    return starts, ends


def iter_blocks(chunks: Iterable[bytes | Gap | Skipped], ctx: ReadContext, *, max_record: int,
                block_bytes: int = BLOCK_BYTES,
                on_oversized: Callable[[int], None] | None = None) -> Iterator[Block]:
    """Blocks of about ``block_bytes`` of whole lines, then the final piece
    without newline, if any.

    A line longer than ``max_record`` bytes is never handed on: it is
    quarantined at its first byte, ``on_oversized(offset)`` is told (a reader
    may count it as content), and its bytes up to the newline are skipped
    unread, so memory stays bounded on hostile input; if the file ends inside
    it, that is ``PARTIAL_LAST_RECORD`` damage as for any unfinished line.
    Lines, offsets, quarantines and damage do not depend on how the input is
    cut into chunks.

    A ``Gap`` (``scanners.compression``: bytes were lost there) ends the line
    it cuts, which is ``record_cut_by_damage`` damage, not a record; after a
    mid-stream resync the first partial line is damage too, and in a segment
    whose history was lost, so is every line holding a NUL byte. The bytes of
    lines handed on (or quarantined as oversized) are added to
    ``ctx.facts['record_bytes']``: with the damaged ranges they must add up
    to the decompressed size (the byte identity, pipelines/manifest.py).
    """
    parts: list[bytes] = []
    size = base = 0       # base: offset of parts[0][0] in the decompressed file
    skipping = None       # offset of the oversized line being skipped, if any
    cutting = None        # offset where a line cut by a resync began, if any
    nul = False           # this segment's history was lost: lines with NUL are damage
    acct = _Bytes(ctx)
    for chunk in chunks:
        if isinstance(chunk, Skipped):
            base += chunk.length
            continue
        if isinstance(chunk, Gap):
            whole, buf = _cut_after_last_newline(parts)
            if whole:
                yield from _within_limit(base, whole, True, ctx, max_record, on_oversized, nul, acct)
                base += len(whole)
            if cutting is not None or buf:
                start = base if cutting is None else cutting
                acct.damage(start, base + len(buf) - start, "line cut by damage in the compressed stream")
            base += len(buf)
            parts, size, skipping = [], 0, None
            cutting = None if chunk.clean else base
            nul = chunk.unknown_window
            chunk.info["offset"] = base
            chunk.info["records_before"] = ctx.records_read
            continue
        if skipping is not None:
            nl = chunk.find(b"\n")
            if nl < 0:
                base += len(chunk)
                acct.records += len(chunk)
                continue
            acct.records += nl + 1
            base, chunk, skipping = base + nl + 1, chunk[nl + 1:], None
        if cutting is not None:
            nl = chunk.find(b"\n")
            if nl < 0:
                base += len(chunk)
                continue
            acct.damage(cutting, base + nl + 1 - cutting, "first line after a resync point: its start was lost")
            base, chunk, cutting = base + nl + 1, chunk[nl + 1:], None
        if not chunk:
            continue
        parts.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        whole, buf = _cut_after_last_newline(parts)
        if whole:
            yield from _within_limit(base, whole, True, ctx, max_record, on_oversized, nul, acct)
            base += len(whole)
        if len(buf) > max_record:   # its newline need not be awaited: the line is too long already
            _oversized(ctx, base, buf, max_record, on_oversized)
            acct.records += len(buf)
            base, buf, skipping = base + len(buf), b"", base
        parts, size = ([buf] if buf else []), len(buf)
    if skipping is not None:
        _ends_inside_line(ctx, skipping)
    if cutting is not None:
        acct.damage(cutting, base - cutting, "first line after a resync point: its start was lost")
    whole, buf = _cut_after_last_newline(parts)
    if whole:
        yield from _within_limit(base, whole, True, ctx, max_record, on_oversized, nul, acct)
    if buf:
        yield from _within_limit(base + len(whole), buf, False, ctx, max_record, on_oversized, nul, acct)


class _Bytes:
    """Byte accounting of one pass over a file's lines (see ``iter_blocks``)."""

    def __init__(self, ctx: ReadContext):
        self.ctx = ctx
        ctx.facts.setdefault("record_bytes", 0)

    @property
    def records(self) -> int:
        return self.ctx.facts["record_bytes"]

    @records.setter
    def records(self, n: int) -> None:
        self.ctx.facts["record_bytes"] = n

    def damage(self, offset: int, length: int, detail: str) -> None:
        last = self.ctx.damages[-1] if self.ctx.damages else None
        if (last is not None and last.kind == DamageKind.RECORD_CUT_BY_DAMAGE and not last.compressed
                and last.offset + last.length == offset):   # one range, not one entry per line
            last.length += length
            return
        self.ctx.damage(DamageKind.RECORD_CUT_BY_DAMAGE, offset, detail, length=length)


def _cut_after_last_newline(parts: list[bytes]) -> tuple[bytes, bytes]:
    """(the bytes of ``parts`` up to and with their last newline, the rest).

    Copies the whole lines once: joining everything and then slicing at the
    newline would copy each block twice. The last newline is nearly always in
    the last part (decompressed chunks are much longer than lines).
    """
    for k in range(len(parts) - 1, -1, -1):
        nl = parts[k].rfind(b"\n")
        if nl >= 0:
            break
    else:
        return b"", b"".join(parts)
    last = parts[k]
    head = last if nl + 1 == len(last) else memoryview(last)[:nl + 1]
    # join returns a lone bytes part itself, uncopied
    return b"".join(parts[:k] + [head]), b"".join([last[nl + 1:]] + parts[k + 1:])


def _within_limit(offset: int, data: bytes, complete: bool, ctx: ReadContext, max_record: int,
                  on_oversized, nul: bool = False, acct: _Bytes | None = None) -> Iterator[Block]:
    """``data`` as one block, or as the blocks between its oversized lines
    (and, when ``nul``, its lines holding a NUL byte)."""
    starts, ends = line_spans(data)
    big = ends - starts > max_record
    special = np.flatnonzero(big)
    if nul:
        zeros = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0)
        if len(zeros):
            special = np.union1d(special, np.searchsorted(ends, zeros, side="right"))
    lo = 0
    for j in special.tolist():
        if j > lo:
            yield _sub_block(offset, data, starts, ends, lo, j, acct)
        s, e = int(starts[j]), int(ends[j])
        if big[j]:
            _oversized(ctx, offset + s, data[s:e], max_record, on_oversized)
            if acct is not None:
                acct.records += e - s + (j < len(ends) - 1 or complete)
            if not complete:
                _ends_inside_line(ctx, offset)
        else:
            acct.damage(offset + s, e - s + (j < len(ends) - 1 or complete),
                        "line refers to history lost with the damage (NUL bytes)")
        lo = j + 1
    if lo == 0:
        if acct is not None:
            acct.records += len(data)
        yield Block(offset, data, starts, ends, complete)
    elif lo < len(starts):   # a piece without newline is one line: it never gets here
        yield _sub_block(offset, data, starts, ends, lo, len(starts), acct)


def _sub_block(offset: int, data: bytes, starts, ends, lo: int, hi: int, acct=None) -> Block:
    s, e = int(starts[lo]), min(int(ends[hi - 1]) + 1, len(data))
    if acct is not None:
        acct.records += e - s
    return Block(offset + s, data[s:e], starts[lo:hi] - s, ends[lo:hi] - s, True)


def _oversized(ctx: ReadContext, offset: int, data: bytes, max_record: int, on_oversized) -> None:
    ctx.quarantine(offset, Q.OVERSIZED_RECORD, f"line longer than {max_record} bytes", data)
    if on_oversized is not None:
        on_oversized(offset)


def iter_lines(chunks: Iterable[bytes], ctx: ReadContext,
               on_partial: Callable[[int, bytes], None] | None = None, *, max_record: int,
               block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for every line, without its ``\\n`` (a ``\\r`` before it
    is kept: CRLF handling is the format's business).

    A final line without ``\\n`` goes to ``on_partial(offset, data)`` if given
    (formats whose records are single lines decide themselves whether a
    missing newline means truncation), else it is yielded like the others.
    Empty lines are skipped (every reader skips them anyway).
    Lines longer than ``max_record`` are quarantined as in ``iter_blocks``.
    """
    for b in iter_blocks(chunks, ctx, max_record=max_record, block_bytes=block_bytes):
        if not b.complete and on_partial is not None:
            on_partial(b.offset, b.data)
            continue
        data, base = b.data, b.offset
        keep = b.ends > b.starts   # empty lines are not handed on: a 1 GiB run of newlines costs no Python loop
        starts, ends = (b.starts, b.ends) if keep.all() else (b.starts[keep], b.ends[keep])
        for s, e in zip(starts.tolist(), ends.tolist()):
            yield base + s, data[s:e]


def truncated(ctx: ReadContext, offset: int, data: bytes) -> None:
    """The file ends inside the line ``data`` (no newline, not blank): quarantine it, mark the damage."""
    if data.strip():
        ctx.quarantine(offset, Q.TRUNCATED_RECORD, "last line has no newline: the file was cut short", data)
        _ends_inside_line(ctx, offset)


def _ends_inside_line(ctx: ReadContext, offset: int) -> None:
    # Damage, not only a quarantine: a writer still appending looks just like this.
    ctx.damage(DamageKind.PARTIAL_LAST_RECORD, offset, "file ends inside a line")


def json_object(raw: bytes) -> dict | str:
    """The JSON object that ``raw`` holds, or why it holds none (a fixed-form detail)."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):   # UnicodeDecodeError is a ValueError
        return "line is not valid JSON"
    return obj if isinstance(obj, dict) else "line is not a JSON object"


def json_objects(chunks: Iterable[bytes], ctx: ReadContext, *,
                 max_record: int) -> Iterator[tuple[int, bytes, dict]]:
    """(offset, line, object) for the non-blank lines of a JSON Lines file; a
    line that is not one JSON object is quarantined. A last line without
    newline counts only if it is one whole JSON object (its closing brace
    proves it); else it is ``truncated``."""
    partial: list[tuple[int, bytes]] = []
    for off, raw in iter_lines(chunks, ctx, lambda o, d: partial.append((o, d)), max_record=max_record):
        if raw.strip():
            obj = json_object(raw)
            if isinstance(obj, dict):
                yield off, raw, obj
            else:
                ctx.quarantine(off, Q.MALFORMED_RECORD, obj, raw)
    for off, raw in partial:
        obj = json_object(raw)
        if isinstance(obj, dict):
            yield off, raw, obj
        else:
            truncated(ctx, off, raw)


def parse_iso_us(text: str) -> int | None:
    """Microseconds since the epoch of an ISO 8601 / RFC 3339 time that carries
    a UTC offset (``2026-11-25T00:38:32.735+0000``, ``2018-04-06T19:42:32Z``);
    None if it does not parse. A time without an offset is refused: guessing
    the zone would be silently wrong."""
    m = _ISO.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        if off.upper() == "Z":
            tz = dt.timezone.utc
        else:
            sign = -1 if off[0] == "-" else 1
            tz = dt.timezone(sign * dt.timedelta(hours=int(off[1:3]), minutes=int(off[-2:])))
        t = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    except ValueError:      # month 13, second 60, offset >= 24h, ...
        return None
    return (t - _EPOCH) // dt.timedelta(microseconds=1) + int((frac or "0").ljust(6, "0")[:6])
