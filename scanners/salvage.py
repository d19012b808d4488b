"""Resynchronising a damaged compressed stream (issue 13): where decoding can
start again after a fault, and decoding the pieces a fast-path decompressor
cannot (a deflate block without its history, a lone bzip2 or xz block).

Methods (``ctx.facts['salvage'][i]['method']``):

* ``gzip_member``: the next gzip member header (``1f 8b 08``) that decodes.
* ``deflate_block``: a later deflate block inside the damaged member, found
  as gzrt's ``gzrecover`` does: at every bit position after the fault try a
  raw inflater (its 32 KiB history set to NUL bytes) and accept the first
  that yields plausible text. Back-references into the lost history come out
  as NUL, which the line layer treats as damage.
* ``zstd_frame``: the next frame magic ``28 b5 2f fd`` that decodes.
* ``bzip2_block``: the next block magic ``0x314159265359`` at any bit
  position (as ``bzip2recover`` does; ``scanners.bzip2_blocks``).
* ``xz_stream``: the next stream magic; ``xz_block``: the next block header
  whose CRC32 matches, decoded with a raw LZMA2 decoder.

Nothing here invents data: a candidate that does not decode is skipped, and
everything between the fault and the accepted point is one damaged range.
"""
from __future__ import annotations

import lzma
import struct
import zlib
from typing import Iterator

from scanners.bzip2_blocks import BZIP2_BLOCK, bzip2_scan  # noqa: F401 (a method name of this module's list)
from scanners.rawbuf import Fault, RawBuffer, Resync, drain

DEFLATE_SCAN = 256 << 10  # deflate blocks are searched this far after a fault (zlib's are < 64 KiB)
MAX_DEFLATE_SCANS = 32   # per file; past them only member headers are searched (cheap)
TRIAL_IN = 64 * 1024
TRIAL_OUT = 64 * 1024
TAIL_FRAMING = 4096      # undecodable bytes after the last block that pass for index/footer

GZIP_MEMBER, DEFLATE_BLOCK = "gzip_member", "deflate_block"
ZSTD_FRAME = "zstd_frame"
XZ_STREAM, XZ_BLOCK = "xz_stream", "xz_block"
_NULS = bytes(32768)

XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def find_resync(kind: str, buf: RawBuffer, fault: Fault) -> Resync | None:
    if kind == "gzip":
        m = next_gzip_member(buf, fault.offset, fault.offset + DEFLATE_SCAN)
        p = None
        if buf.deflate_scans < MAX_DEFLATE_SCANS:   # seconds each: a file of faults must not take hours
            buf.deflate_scans += 1
            p = _deflate_scan(buf, fault.offset, m if m is not None else fault.offset + DEFLATE_SCAN)
        if p is not None:
            return p
        if m is None:
            m = next_gzip_member(buf, fault.offset + DEFLATE_SCAN, None)
        return Resync(m, GZIP_MEMBER, clean=True) if m is not None else None
    if kind == "zstd":
        m = _next_valid(buf, fault.offset + 1, ZSTD_MAGIC, _zstd_decodes)
        return Resync(m, ZSTD_FRAME, clean=False) if m is not None else None
    if kind == "bzip2":
        return bzip2_scan(buf, fault.offset * 8)
    if kind == "xz":
        block = _xz_block_scan(buf, fault.offset + 1, None)
        m = _next_valid(buf, fault.offset + 1, XZ_MAGIC, _xz_decodes)
        if block is not None and (m is None or block.offset < m):
            return block
        return Resync(m, XZ_STREAM, clean=True) if m is not None else None
    return None


# -- searching -------------------------------------------------------------------

def _next_valid(buf: RawBuffer, pos: int, magic: bytes, decodes, end: int | None = None) -> int | None:
    """Offset of the first ``magic`` at or after ``pos`` (before ``end``) whose stream decodes."""
    step = 1 << 20
    while end is None or pos < end:
        window = buf.read_from(pos, step + len(magic))
        if len(window) < len(magic):
            return None
        i = window.find(magic)
        while i >= 0:
            if end is not None and pos + i >= end:
                return None
            if decodes(buf.peek(pos + i, TRIAL_IN)):
                return pos + i
            i = window.find(magic, i + 1)
        pos += max(len(window) - len(magic) + 1, 1)
        if len(window) < step:
            return None
    return None


def next_gzip_member(buf: RawBuffer, pos: int, end: int | None) -> int | None:
    return _next_valid(buf, pos, b"\x1f\x8b\x08", _gzip_decodes, end)


def _gzip_decodes(data: bytes) -> bool:
    if len(data) < 10 or data[3] & 0xE0:
        return False
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, TRIAL_OUT)
    except zlib.error:
        return False
    return bool(out) or d.eof


def _zstd_decodes(data: bytes) -> bool:
    """The frame at ``data`` yields output. Fed 256 bytes at a time, so even a
    bomb's trial returns at most a few MiB (a block holds <= 128 KiB)."""
    import zstandard
    d = zstandard.ZstdDecompressor().decompressobj()
    try:
        for i in range(0, len(data), 256):
            if d.decompress(data[i:i + 256]) or d.eof:
                return True
    except zstandard.ZstdError:
        return False
    return False


def _xz_decodes(data: bytes) -> bool:
    d = lzma.LZMADecompressor()
    try:
        return bool(d.decompress(data, TRIAL_OUT)) or d.eof
    except lzma.LZMAError:
        return False


def plausible(out: bytes) -> bool:
    """Decoded bytes that look like scanner text. NUL bytes are history we do
    not have (well-compressed scans are mostly back-references), so only the
    rest is judged: printable ASCII and line ends, with at least one line end."""
    text = out.translate(None, b"\x00")
    if len(text) < 128 or b"\n" not in text:
        return False
    bad = len(text.translate(None, bytes(range(0x20, 0x7F)) + b"\t\r\n"))
    return bad * 100 <= len(text)


# -- deflate blocks (gzrecover) ---------------------------------------------------

def shifted(buf: RawBuffer, pos: int, n: int, bit: int) -> bytes:
    """Raw bytes ``pos..pos+n`` as a stream that starts ``bit`` bits into byte ``pos``
    (deflate packs bits from the low end of each byte)."""
    data = buf.read_from(pos, n + 1)
    if not bit or not data:
        return data[:n]
    m = len(data) if len(data) <= n else n
    v = int.from_bytes(data, "little") >> bit
    return v.to_bytes(len(data), "little")[:m]


def raw_inflater():
    return zlib.decompressobj(wbits=-15, zdict=_NULS)


def _deflate_scan(buf: RawBuffer, start: int, end: int) -> Resync | None:
    """First (byte, bit) in [start, end) where a raw inflater yields plausible text."""
    template = raw_inflater()
    pos = start
    while pos < end:
        span = min(end - pos, 1 << 16)
        window = buf.peek(pos, span + TRIAL_IN + 1)
        if len(window) < 2:
            return None
        big = int.from_bytes(window, "little")
        shifts = [(big >> bit).to_bytes(len(window), "little") for bit in range(8)]
        for i in range(min(span, len(window) - 1)):
            for bit, s in enumerate(shifts):
                if s[i] & 6 == 6:            # BTYPE 11 is reserved
                    continue
                d = template.copy()
                try:
                    out = d.decompress(s[i:i + 4096], 4096)
                    if not d.eof and len(out) < TRIAL_OUT:
                        out += d.decompress(d.unconsumed_tail + s[i + 4096:i + TRIAL_IN],
                                            TRIAL_OUT - len(out))
                except zlib.error:
                    continue
                if plausible(out):
                    return Resync(pos + i, DEFLATE_BLOCK, clean=False, unknown_window=True, bit=bit)
        pos += span
    return None


# -- xz blocks ---------------------------------------------------------------------

def _xz_block_header(data: bytes) -> tuple[int, list] | None:
    """(header size, filters) if ``data`` starts with a valid xz block header."""
    if not data or data[0] == 0:
        return None
    size = (data[0] + 1) * 4
    if len(data) < size or zlib.crc32(data[:size - 4]) != struct.unpack("<I", data[size - 4:size])[0]:
        return None
    flags = data[1]
    if flags & 0x3C:
        return None
    i = 2
    for bit in (0x40, 0x80):          # compressed / uncompressed size: varints we do not need
        if flags & bit:
            while i < size and data[i] & 0x80:
                i += 1
            i += 1
    filters = []
    for _ in range((flags & 3) + 1):
        fid, i = _varint(data, i)
        plen, i = _varint(data, i)
        try:
            filters.append(lzma._decode_filter_properties(fid, bytes(data[i:i + plen])))
        except (lzma.LZMAError, ValueError):
            return None
        i += plen
    return size, filters


def _varint(data: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while i < len(data):
        b = data[i]
        v |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
    return v, i


def _xz_block_scan(buf: RawBuffer, pos: int, end: int | None) -> Resync | None:
    """The first xz block header at or after ``pos`` (before ``end``): blocks
    start 4-aligned from their stream's start, and a header ends in the CRC32
    of the rest. A numpy pre-filter keeps the Python loop to ~1 position in 64."""
    import numpy as np
    step = 1 << 20
    align = buf.stream_start % 4
    pos += (align - pos) % 4
    while end is None or pos < end:
        window = buf.read_from(pos, step + 1024)
        if len(window) < 12:
            return None
        n = min(step, len(window) - 1) if end is None else min(step, len(window) - 1, end - pos)
        arr = np.frombuffer(window, np.uint8)
        idx = np.arange(0, n, 4)
        cand = idx[(arr[idx] != 0) & ((arr[idx + 1] & 0x3C) == 0)]
        for i in cand.tolist():
            got = _xz_block_header(window[i:i + (window[i] + 1) * 4])
            if got is not None:
                return Resync(pos + i, XZ_BLOCK, clean=False, xz_filters=got[1], xz_header=got[0])
        if len(window) < step:
            return None
        pos += step
    return None


def xz_from_stream(buf: RawBuffer, at: int, skip: int, out_slice: int) -> Iterator[bytes]:
    """The stream at ``at`` block by block, the first ``skip`` output bytes not handed on."""
    first = _xz_block_scan(buf, at + 12, at + 13)
    if first is None:
        return Fault(at, "the xz stream's first block header is damaged")
    return (yield from xz_blocks(buf, first, out_slice, skip))


def xz_blocks(buf: RawBuffer, how: Resync, out_slice: int, skip: int = 0) -> Iterator[bytes]:
    """Raw-decode xz blocks from ``how``; at the stream's index, hand back to
    stream decoding (``buf.deflate_end`` = next stream) or finish."""
    FEED = 64 * 1024
    at, hsize, filters = how.offset, how.xz_header, how.xz_filters
    while True:
        d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
        pos = at + hsize
        while not d.eof:
            data = buf.read_from(pos, FEED)
            if not data:
                return Fault(pos, "", truncated=True)
            buf.last_fed = pos
            try:
                skip = yield from drain(d, d.decompress(data, out_slice), skip, out_slice)
            except lzma.LZMAError as exc:
                return Fault(at, str(exc)[:120])
            if not d.eof:
                pos += len(data)
        end = pos + len(data) - len(d.unused_data)
        nxt = _xz_block_scan(buf, end, end + 40)     # padding and check, then the next header
        if nxt is not None:
            at, hsize, filters = nxt.offset, nxt.xz_header, nxt.xz_filters
            continue
        m = _next_valid(buf, end, XZ_MAGIC, _xz_decodes)
        if m is not None and m - end <= TAIL_FRAMING:
            buf.deflate_end = m
            return None
        if m is None and buf.drain_from(end) <= TAIL_FRAMING:
            buf.deflate_end = buf.size_seen
            return None
        return Fault(end, "undecodable data after a salvaged xz block")
