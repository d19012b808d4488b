"""bzip2 block by block, as ``bzip2recover`` does (issue 13): find a block's
magic ``0x314159265359`` at any bit position, cut the block's bits out up to
the next block or end-of-stream magic, and decode it alone as a one-block
stream (``BZh9`` + block + end marker + the block's own CRC as the stream's).
One bad block then costs only itself, and a stream that failed on the fast
path is decoded again this way, past the bytes already handed on, so the
fault is pinned to its block and no block is handed on twice.
"""
from __future__ import annotations

import bz2
from typing import Iterator

from scanners.rawbuf import Fault, RawBuffer, Resync, drain

BZIP2_BLOCK = "bzip2_block"
BZ_MAX_BLOCK_BITS = 8 * (1 << 20)   # a compressed bzip2 block is < 1 MiB (900 kB of input at most)
BZ_BLOCK = 0x314159265359
BZ_EOS = 0x177245385090
TRIAL_OUT = 64 * 1024
TAIL_FRAMING = 4096      # undecodable bytes after the last block that pass for a stream trailer


def _find_bits(buf: RawBuffer, bitpos: int, patterns: tuple[int, ...], limit: int | None = None) -> tuple[int, int] | None:
    """(bit position, pattern) of the first 48-bit ``patterns`` at or after ``bitpos``."""
    pos = bitpos // 8
    step = 1 << 20
    while True:
        window = buf.read_from(pos, step + 8)
        if len(window) < 6:
            return None
        big = int.from_bytes(window, "big")
        nbits = len(window) * 8
        best = None
        for pat in patterns:
            for sh in range(8):
                # the pattern starting sh bits into a byte fills bytes 1..5 of a 7-byte run
                v = pat << (8 - sh)       # 56-bit value, pattern at bit sh from the top
                mid = ((v >> 8) & ((1 << 40) - 1)).to_bytes(5, "big")
                j = window.find(mid)
                while j >= 0:
                    b = (pos + j) * 8 - 8 + sh
                    rel = b - pos * 8
                    if b >= bitpos and rel >= 0 and rel + 48 <= nbits and \
                            (big >> (nbits - rel - 48)) & ((1 << 48) - 1) == pat:
                        if best is None or b < best[0]:
                            best = (b, pat)
                        break
                    j = window.find(mid, j + 1)
        if best is not None:
            return best
        if len(window) < step + 8 or (limit is not None and pos > limit):
            return None
        pos += step


def _bits(buf: RawBuffer, start: int, end: int) -> int:
    lo, hi = start // 8, (end + 7) // 8
    data = buf.peek(lo, hi - lo)
    v = int.from_bytes(data, "big")
    v >>= (hi * 8 - end)
    return v & ((1 << (end - start)) - 1)


def _one_block_stream(buf: RawBuffer, start: int, end: int) -> bytes:
    """bzip2recover's trick: the block's bits as a stream of its own."""
    block = _bits(buf, start, end)
    crc = (block >> (end - start - 80)) & 0xFFFFFFFF    # 32 bits after the 48-bit magic
    n = end - start + 80
    v = (block << 80) | (BZ_EOS << 32) | crc
    pad = -n % 8
    return b"BZh9" + (v << pad).to_bytes((n + pad) // 8, "big")


def _bzip2_block_end(buf: RawBuffer, start: int) -> tuple[int, int] | None:
    return _find_bits(buf, start + 48, (BZ_BLOCK, BZ_EOS))


def bzip2_scan(buf: RawBuffer, bitpos: int) -> Resync | None:
    while True:
        hit = _find_bits(buf, bitpos, (BZ_BLOCK,))
        if hit is None:
            return None
        start = hit[0]
        end = _bzip2_block_end(buf, start)
        if end is not None and end[0] - start <= BZ_MAX_BLOCK_BITS and \
                _bzip2_try(_one_block_stream(buf, start, end[0])):
            return Resync(start // 8, BZIP2_BLOCK, clean=False, bit=start % 8)
        bitpos = start + 1


def _bzip2_try(stream: bytes) -> bool:
    d = bz2.BZ2Decompressor()
    try:
        d.decompress(stream, TRIAL_OUT)
        while not d.eof and not d.needs_input:
            d.decompress(b"", TRIAL_OUT)
    except (OSError, ValueError):
        return False
    return d.eof


def bzip2_from_stream(buf: RawBuffer, at: int, skip: int, out_slice: int) -> Iterator[bytes]:
    """The stream at ``at`` block by block, the first ``skip`` output bytes not handed on."""
    head = buf.peek(at, 4)
    if len(head) < 4 or head[:3] != b"BZh" or not b"1" <= head[3:] <= b"9":
        return Fault(at, "not a bzip2 stream header")
    # The first block begins right after the 4-byte header: anything else
    # there is damage, and its bytes a lost range (the salvage resumes at the
    # next block), never silently skipped.
    start = (at + 4) * 8
    if buf.fill_to(at + 10) < at + 10 or _bits(buf, start, start + 48) != BZ_BLOCK:
        return Fault(at + 4, "no bzip2 block where the stream's first belongs")
    return (yield from bzip2_blocks(buf, start, out_slice, skip, whole_stream=True))


# An empty stream: its header, the end-of-stream magic at once, CRC 0 (14 bytes, byte-aligned).
_EMPTY_TAIL = BZ_EOS.to_bytes(6, "big") + bytes(4)


def _empty_stream_at(buf: RawBuffer, at: int) -> bool:
    head = buf.peek(at, 4 + len(_EMPTY_TAIL))
    return head[:3] == b"BZh" and b"1" <= head[3:4] <= b"9" and head[4:] == _EMPTY_TAIL


def _combine(crc: int, block_crc: int) -> int:
    """bzip2's stream CRC: rotated left one bit, then each block's CRC xored in."""
    return (((crc << 1) | (crc >> 31)) & 0xFFFFFFFF) ^ block_crc


def bzip2_blocks(buf: RawBuffer, start: int, out_slice: int, skip: int = 0,
                 whole_stream: bool = False) -> Iterator[bytes]:
    """Blocks one by one from bit ``start`` to the end of the file; a Fault at the first that fails.

    ``whole_stream``: ``start`` is the first block of its stream, so its end
    can check the stream's CRC (after a resync mid-stream it cannot; the
    streams after that one are whole). A mismatch while every block checked
    costs no data but is damage all the same (``buf.integrity``): a block may
    be missing, repeated or out of order, or the CRC itself is damaged."""
    combined = 0
    while True:
        end = _bzip2_block_end(buf, start)
        if end is None:
            return Fault(start // 8, "", truncated=True)
        if end[0] - start > BZ_MAX_BLOCK_BITS:
            return Fault(start // 8, "no bzip2 block ends where a block can")
        buf.last_fed = start // 8
        block_crc = _bits(buf, start + 48, start + 80)   # after the block's magic
        d = bz2.BZ2Decompressor()
        stream = _one_block_stream(buf, start, end[0])
        try:
            skip = yield from drain(d, d.decompress(stream, out_slice), skip, out_slice)
        except (OSError, ValueError) as exc:
            return Fault(start // 8, str(exc)[:120])
        if not d.eof:
            return Fault(start // 8, "bzip2 block does not end")
        combined = _combine(combined, block_crc)
        if end[1] == BZ_BLOCK:
            buf.read_from(end[0] // 8, 1)   # let the buffer forget what is done
            start = end[0]
            continue
        # end of a stream: its CRC, maybe another stream ("BZh9" + blocks)
        if buf.fill_to((end[0] + 80 + 7) // 8) * 8 < end[0] + 80:
            return Fault(end[0] // 8, "", truncated=True)    # the file ends inside the stream's CRC
        stored = _bits(buf, end[0] + 48, end[0] + 80)
        if whole_stream and stored != combined:
            buf.integrity.append((end[0] // 8, f"bzip2 stream CRC {stored:08x} is not its blocks' "
                                               f"{combined:08x} (every block checked and was kept)"))
        buf.read_from(end[0] // 8, 1)
        whole_stream, combined = True, 0
        tail_at = (end[0] + 80 + 7) // 8
        while _empty_stream_at(buf, tail_at):   # `bzip2 < /dev/null` between two streams: no block
            tail_at += len(_EMPTY_TAIL) + 4
        nxt = _find_bits(buf, tail_at * 8, (BZ_BLOCK,))
        if nxt is None:
            rest = buf.drain_from(tail_at)
            if rest > TAIL_FRAMING:
                return Fault(tail_at, "undecodable data after the last bzip2 block")
            # Done to the end of the file. A caller that goes on from here
            # (compression._stdlib_members, after rescuing a stream whose
            # own CRC failed) must find nothing left: without this it began
            # again at the previous stream's start, and decoded the file
            # over and over (unbounded output, every record many times).
            buf.deflate_end = buf.size_seen
            return None
        if nxt[0] // 8 - tail_at > 8:        # more than a stream header between them
            return Fault(tail_at, "undecodable data between bzip2 streams")
        start = nxt[0]
