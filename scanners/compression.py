"""Transparent, damage-tolerant, bounded decompression, sniffed from the content.

``iter_decompressed(raw_chunks, ctx, max_bytes=...)`` turns the raw bytes of a
file into decompressed chunks of at most ``OUT_SLICE`` bytes each, with a
``Gap`` marker wherever damage cut the stream. The compression is recognised
by magic bytes, never by the file name (scanner output is often renamed).

Three promises (issue 13):

* **Bounded.** Every decompressor call returns at most ``OUT_SLICE`` bytes
  (zlib ``max_length``/``unconsumed_tail``, bz2/lzma ``max_length``, zstd fed
  one block at a time, a block holds at most 128 KiB). A file whose output
  passes ``max_bytes`` stops there with ``decompression_limit`` damage.
* **Everything before the fault.** Output is handed on as it is made, so a
  fault loses nothing decoded before it (gzip: the failing slice is replayed
  byte by byte from a saved state, so we keep exactly what ``zcat`` prints).
* **Past the fault where the container allows** (``scanners.salvage``): the
  next gzip member or a later deflate block, the next zstd frame, the next
  bzip2 block, the next xz block or stream. The lost compressed range is one
  ``compression_corrupt`` damage entry (offset, length in the *raw* file);
  each resync point is a ``Gap`` for the line layer and one entry of
  ``ctx.facts['salvage']``.

``ctx.facts`` gets ``compression``, ``raw_bytes`` (bytes of the file seen),
``raw_decoded`` (raw bytes decoded or understood as framing) and
``decompressed_bytes``: ``raw_bytes == raw_decoded`` + the lengths of its
``compression_corrupt`` and ``decompression_limit`` ranges, the raw half of
the byte identity (pipelines/manifest.py).
"""
from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Callable, Iterable, Iterator

# gzip members are inflated by zlib-ng: the same format and the same API as
# the stdlib's zlib (max_length, unconsumed_tail, copy()), about twice as fast
# on scanner output (a 7.6 MB masscan -oD gzip: 0.086 -> 0.042 s). The
# salvage paths (scanners/salvage.py) keep the stdlib's: they are rare.
from zlib_ng import zlib_ng

from pipelines.schema import DamageKind
from scanners.base import ReadContext
from scanners import bzip2_blocks, salvage
from scanners.rawbuf import Fault, Gap, RawBuffer

_INFLATE_ERRORS = (zlib.error, zlib_ng.error)   # a salvaged tail is inflated by the stdlib's

READ_CHUNK = 1 << 20
OUT_SLICE = 1 << 20          # most bytes one decompressor call may return
FEED = 64 * 1024             # compressed bytes fed per call (the fault is found within one feed)
INFLATION_FLOOR = 256 << 20  # a file may always inflate to this much, whatever its ratio
DEFAULT_MAX_INFLATION = 100  # decompressed/compressed ratio past the floor: real scans are 3-30x

MAGIC = {
    "gzip": b"\x1f\x8b",
    "zstd": b"\x28\xb5\x2f\xfd",
    "bzip2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
}


def sniff_compression(head: bytes) -> str | None:
    """Name of the compression whose magic starts ``head``, or None."""
    for name, magic in MAGIC.items():
        if head.startswith(magic):
            return name
    if is_skippable_frame(head):   # pzstd (and some zstd writers) open with a skippable frame
        return "zstd"
    return None


def is_skippable_frame(head: bytes) -> bool:
    """True if ``head`` starts with a zstd skippable frame (magic 0x184D2A50..5F, little-endian)."""
    return len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"


def decompression_limit(file_size: int, max_inflation: float = DEFAULT_MAX_INFLATION) -> int:
    """Most decompressed bytes a file of ``file_size`` raw bytes may yield."""
    return max(INFLATION_FLOOR, int(file_size * max_inflation))


def iter_decompressed(raw: Iterable[bytes], ctx: ReadContext,
                      max_bytes: int | None = None) -> Iterator[bytes | Gap]:
    """Decompressed chunks (and ``Gap`` markers) of a file whose raw chunks are ``raw``."""
    buf = RawBuffer(iter(raw))
    buf.fill(8)
    kind = sniff_compression(buf.peek(0, 8))
    ctx.facts["compression"] = kind or "none"
    limit = max_bytes if max_bytes is not None else 1 << 62
    out = 0
    items = _plain(buf) if kind is None else _segments(kind, buf, ctx)
    for item in items:
        if isinstance(item, Gap):
            yield item
            continue
        if out + len(item) > limit:
            if limit > out:
                yield item[:limit - out]
            out = limit
            at = buf.last_fed
            rest = buf.drain_from(at)
            ctx.damage(DamageKind.DECOMPRESSION_LIMIT, at,
                       f"output passed the per-file ceiling of {limit:,} bytes (a decompression "
                       f"bomb?); the rest of the file is not decoded", length=rest, compressed=True)
            break
        out += len(item)
        yield item
    _integrity_damage(buf, ctx)     # also those a stop at the limit left behind
    size = buf.size_seen + buf.drain_from(buf.size_seen)
    lost = sum(d.length or 0 for d in ctx.damages if d.compressed and d.kind in _DECODE_DAMAGE)
    ctx.facts.update(raw_bytes=size, raw_decoded=size - lost, decompressed_bytes=out)


_DECODE_DAMAGE = (DamageKind.COMPRESSION_CORRUPT, DamageKind.DECOMPRESSION_LIMIT)


def _integrity_damage(buf: RawBuffer, ctx: ReadContext) -> None:
    """The checks that failed without costing a byte, as damage of length 0."""
    for offset, detail in buf.integrity:
        ctx.damage(DamageKind.COMPRESSION_CORRUPT, offset, detail, length=0, compressed=True)
    buf.integrity.clear()


def _plain(buf: RawBuffer) -> Iterator[bytes]:
    pos = 0
    while True:
        b = buf.read_from(pos, READ_CHUNK)
        if not b:
            return
        buf.last_fed = pos
        pos += len(b)
        yield b


def _segments(kind: str, buf: RawBuffer, ctx: ReadContext) -> Iterator[bytes | Gap]:
    """Decode from offset 0; at each fault find the next resync point and go on."""
    decode = {"gzip": _gzip, "zstd": _zstd, "bzip2": _bzip2, "xz": _xz}[kind]
    at, how, prev = 0, None, (-1, 0)
    while True:
        fault = yield from decode(buf, at, how)
        _integrity_damage(buf, ctx)
        if fault is None:
            return
        if fault.truncated:
            ctx.damage(DamageKind.COMPRESSION_TRUNCATED, fault.offset,
                       f"{kind} stream ends before its end marker (file truncated?)")
            return
        found = salvage.find_resync(kind, buf, fault)
        if found is not None and (found.offset, found.bit) <= prev:   # no progress: give up
            found = None
        end = found.offset if found else fault.offset + buf.drain_from(fault.offset)
        ctx.damage(DamageKind.COMPRESSION_CORRUPT, fault.offset,
                   f"{kind} data error: {fault.detail}"
                   + (f"; resynchronised at byte {found.offset} ({found.method})" if found
                      else "; nothing after it could be decoded"),
                   length=end - fault.offset, compressed=True)
        if not found:
            return
        info = {"raw_offset": found.offset, "method": found.method, "lost_raw_bytes": end - fault.offset}
        ctx.facts.setdefault("salvage", []).append(info)
        yield Gap(clean=found.clean, unknown_window=found.unknown_window, info=info)
        at, how, prev = found.offset, found, (found.offset, found.bit)


# -- gzip ----------------------------------------------------------------------

def _gzip(buf: RawBuffer, at: int, how) -> Iterator[bytes]:
    """Members from ``at`` on (``how``: a salvaged deflate block to start with)."""
    if how is not None and how.method == salvage.DEFLATE_BLOCK:
        fault = yield from _inflate(buf, salvage.raw_inflater(), at, how.bit)
        if fault is not None:
            return fault
        # the member's trailer (CRC, size) follows; it cannot be checked without the lost part
        end = buf.deflate_end
        nxt = salvage.next_gzip_member(buf, end, end + 16)
        at = nxt if nxt is not None else end + 8
    while True:
        if not buf.has_content(at):
            return None
        fault = yield from _inflate(buf, zlib_ng.decompressobj(wbits=16 + zlib_ng.MAX_WBITS), at, None)
        if fault is not None:
            return fault
        at = buf.deflate_end


def _inflate(buf: RawBuffer, d, at: int, bit: int | None) -> Iterator[bytes]:
    """One member (or a salvaged deflate tail starting ``bit`` bits into byte
    ``at``); sets ``buf.deflate_end``; returns a Fault or None."""
    pos = at
    while True:
        data = buf.read_from(pos, FEED) if bit is None else salvage.shifted(buf, pos, FEED, bit)
        if not data:
            return Fault(pos, "", truncated=True)
        buf.last_fed = pos
        snap = d.copy()      # cheap (state + 32 KiB window), and only used on a fault
        rest, emitted = data, 0
        try:
            while rest:
                out = d.decompress(rest, OUT_SLICE)
                if out:
                    emitted += len(out)
                    yield out
                if d.eof:
                    break
                rest = d.unconsumed_tail
        except _INFLATE_ERRORS as exc:
            # replay this feed a byte at a time from the saved state: keep what zcat keeps
            bad = yield from _replay(snap, data, pos, emitted)
            return Fault(bad, _short(exc))
        if d.eof:
            buf.deflate_end = pos + len(data) - len(d.unused_data)
            return None
        pos += len(data)


def _replay(d, data: bytes, pos: int, skip: int) -> Iterator[bytes]:
    """Output ``d`` gives for ``data`` byte by byte, past the ``skip`` bytes
    already handed on, up to the byte that fails; returns that byte's offset."""
    for i in range(len(data)):
        try:
            piece = data[i:i + 1]
            while piece:
                out = d.decompress(piece, OUT_SLICE)
                if out:
                    if skip >= len(out):
                        skip -= len(out)
                    else:
                        yield out[skip:]
                        skip = 0
                piece = d.unconsumed_tail
        except _INFLATE_ERRORS:
            return pos + i
    return pos + len(data)


# -- zstd ------------------------------------------------------------------------

class _FrameError(Exception):
    def __init__(self, offset: int, detail: str, truncated: bool = False):
        super().__init__(detail)
        self.offset, self.truncated = offset, truncated


def _zstd_pieces(buf: RawBuffer, at: int) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of a zstd frame's header, each block and its checksum:
    fed one block at a time, a decompressor returns at most 128 KiB per call.
    Skippable frames yield nothing. Sets ``buf.deflate_end`` to the frame's end."""
    head = buf.read_from(at, 18)
    if len(head) >= 8 and is_skippable_frame(head):
        buf.deflate_end = at + 8 + int.from_bytes(head[4:8], "little")
        return
    if len(head) < 6 or not head.startswith(MAGIC["zstd"]):
        raise _FrameError(at, "no zstd frame magic", truncated=len(head) < 6)
    fhd = head[4]
    if fhd & 0x08:
        raise _FrameError(at, "reserved bit set in the zstd frame header")
    single = (fhd >> 5) & 1
    size = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + ((1 if single else 0), 2, 4, 8)[fhd >> 6]
    yield at, head[:size]
    pos = at + size
    while True:
        bh = buf.read_from(pos, 3)
        if len(bh) < 3:
            raise _FrameError(pos, "", truncated=True)
        v = int.from_bytes(bh, "little")
        last, btype, bsize = v & 1, (v >> 1) & 3, v >> 3
        if btype == 3 or bsize > 128 * 1024:
            raise _FrameError(pos, "bad zstd block header")
        n = 3 + (1 if btype == 1 else bsize)
        block = buf.read_from(pos, n)
        if len(block) < n:
            raise _FrameError(pos, "", truncated=True)
        yield pos, block
        pos += n
        if last:
            break
    if fhd & 0x04:
        crc = buf.read_from(pos, 4)
        if len(crc) < 4:
            raise _FrameError(pos, "", truncated=True)
        yield pos, crc
        pos += 4
    buf.deflate_end = pos


def _zstd(buf: RawBuffer, at: int, how) -> Iterator[bytes]:
    import zstandard  # optional dependency, imported only when needed
    while True:
        if not buf.has_content(at):
            return None
        d = zstandard.ZstdDecompressor().decompressobj()
        pos = at
        try:
            for pos, piece in _zstd_pieces(buf, at):
                buf.last_fed = pos
                out = d.decompress(piece)
                if out:
                    yield out
        except _FrameError as exc:
            return Fault(exc.offset, str(exc), truncated=exc.truncated)
        except zstandard.ZstdError as exc:
            return Fault(pos, _short(exc))
        at = buf.deflate_end


# -- bzip2 and xz: stdlib decompressors with max_length -------------------------

def _bzip2(buf: RawBuffer, at: int, how) -> Iterator[bytes]:
    if how is not None and how.method == bzip2_blocks.BZIP2_BLOCK:
        return (yield from bzip2_blocks.bzip2_blocks(buf, how.offset * 8 + how.bit, OUT_SLICE))
    return (yield from _stdlib_members(buf, at, bz2.BZ2Decompressor, bzip2_blocks.bzip2_from_stream))


def _xz(buf: RawBuffer, at: int, how) -> Iterator[bytes]:
    if how is not None and how.method == salvage.XZ_BLOCK:
        fault = yield from salvage.xz_blocks(buf, how, OUT_SLICE)
        if fault is not None:
            return fault
        at = buf.deflate_end
    return (yield from _stdlib_members(buf, at, lzma.LZMADecompressor, salvage.xz_from_stream))


def _stdlib_members(buf: RawBuffer, at: int, new: Callable, rescue: Callable) -> Iterator[bytes]:
    """Streams from ``at`` on, decoded fast; on a fault the stream is decoded
    again block by block by ``rescue`` (past the bytes already handed on), so
    the fault is pinned to its block and no block is handed on twice."""
    while True:
        if not buf.has_content(at):
            return None
        d = new()
        pos, emitted = at, 0
        buf.stream_start = at
        while True:
            data = buf.read_from(pos, FEED)
            if not data:
                return Fault(pos, "", truncated=True)
            buf.last_fed = pos
            try:
                out = d.decompress(data, OUT_SLICE)
                while True:
                    if out:
                        emitted += len(out)
                        yield out
                    if d.eof or d.needs_input:
                        break
                    out = d.decompress(b"", OUT_SLICE)
            except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                noted = len(buf.integrity)
                fault = yield from rescue(buf, at, emitted, OUT_SLICE)
                if fault is not None:
                    if not fault.detail:
                        fault.detail = _short(exc)
                    return fault
                if len(buf.integrity) == noted:
                    # Every block decoded on its own, yet the decoder refused
                    # the stream (a header field, a check the block-by-block
                    # way does not verify): nothing lost, but not as written.
                    buf.integrity.append((pos, f"{_short(exc)}; the stream decoded again block by block "
                                               "to its end"))
                at = buf.deflate_end
                break
            if d.eof:
                at = pos + len(data) - len(d.unused_data)
                break
            pos += len(data)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def iter_file_chunks(read: Callable[[int], bytes], limit: int | None = None) -> Iterator[bytes]:
    """Raw chunks from a ``read(n)`` callable (a FileSystems/open() handle),
    at most ``limit`` bytes (the size seen at discovery: a growing file cannot hang a run)."""
    left = limit
    while left is None or left > 0:
        b = read(READ_CHUNK if left is None else min(READ_CHUNK, left))
        if not b:
            return
        if left is not None:
            left -= len(b)
        yield b
