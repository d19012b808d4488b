"""The raw side of bounded, salvaging decompression: ``RawBuffer`` (a file's
raw bytes read on demand, a bounded window kept behind the read position so
a resync can look back), and the small values that pass between the
decoders (``scanners.compression``), the resync search (``scanners.salvage``)
and the line layer (``scanners.lines``): ``Gap``, ``Skipped``, ``Fault``,
``Resync``. No decoding here, no imports from the rest of the package.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

KEEP = 2 << 20           # raw bytes kept behind the read position (resync looks back this far)


@dataclasses.dataclass
class Gap:
    """Marker in a decompressed chunk stream: bytes were lost here.

    ``clean``: decoding resumed at a member/stream start (the first line may
    be whole); else mid-stream, so the first partial line is damage.
    ``unknown_window``: a deflate block salvaged without its 32 KiB history;
    its back-references to the lost data read as NUL bytes, so a line with a
    NUL in this segment is damage, not a record. ``info`` is the salvage
    entry in ``ctx.facts['salvage']`` (the line layer adds records_before).
    """

    clean: bool
    unknown_window: bool
    info: dict


@dataclasses.dataclass
class Skipped:
    """Marker at the head of a chunk stream: the first ``length`` bytes of
    the file were judged elsewhere (junk before the first record), so
    offsets start there."""

    length: int


@dataclasses.dataclass
class Fault:
    offset: int              # raw offset of the first byte that could not be decoded
    detail: str
    truncated: bool = False  # the file ended inside the stream: nothing to resync to


@dataclasses.dataclass
class Resync:
    offset: int              # raw byte where decoding starts again
    method: str
    clean: bool              # at a member/stream start
    unknown_window: bool = False
    bit: int = 0             # deflate/bzip2: bit offset inside the byte at ``offset``
    xz_filters: list | None = None
    xz_header: int = 0       # xz block: header size


class RawBuffer:
    """The raw bytes of a file, read on demand from its chunk iterator; keeps
    ``KEEP`` bytes behind the furthest read so memory stays bounded."""

    def __init__(self, it: Iterator[bytes]):
        self._it = it
        self._data = bytearray()
        self._base = 0            # raw offset of _data[0]
        self._eof = False
        self.last_fed = 0         # start of the last feed handed to a decompressor
        self.deflate_end = 0      # end of the last member/stream/block decoded
        self.stream_start = 0     # where the stream being decoded began (xz blocks align to it)
        self.deflate_scans = 0    # deflate block searches done for this file (scanners.salvage)
        # (offset, detail) of checks that failed without costing a byte (a
        # bzip2 stream CRC that is not its blocks'): damage all the same
        self.integrity: list[tuple[int, str]] = []

    @property
    def size_seen(self) -> int:
        return self._base + len(self._data)

    def fill(self, n: int) -> None:
        self.fill_to(self._base + n)

    def fill_to(self, end: int) -> int:
        while self.size_seen < end and not self._eof:
            try:
                self._data += next(self._it)
            except StopIteration:
                self._eof = True
        return min(end, self.size_seen)

    def peek(self, pos: int, n: int) -> bytes:
        if pos < self._base:
            raise ValueError(f"raw offset {pos} is no longer kept (from {self._base})")
        self.fill_to(pos + n)
        lo = pos - self._base
        return bytes(self._data[lo:lo + n])

    def read_from(self, pos: int, n: int) -> bytes:
        out = self.peek(pos, n)
        drop = pos - KEEP - self._base
        if drop > 0:
            del self._data[:drop]
            self._base += drop
        return out

    def has_content(self, pos: int) -> bool:
        """Bytes other than zero padding remain at ``pos``."""
        while True:
            piece = self.read_from(pos, 1 << 16)
            if not piece:
                return False
            if piece.strip(b"\x00"):
                return True
            pos += len(piece)

    def drain_from(self, pos: int) -> int:
        """Read to the end; bytes from ``pos`` to it."""
        while not self._eof:
            self.read_from(max(self.size_seen - 1, pos), 1 << 20)
        return max(self.size_seen - pos, 0)


def skip_output(out: bytes, skip: int) -> tuple[bytes, int]:
    """(the part of ``out`` past ``skip`` bytes, what is left to skip)."""
    return out[skip:], max(skip - len(out), 0)


def drain(d, out: bytes, skip: int, out_slice: int):
    """Yield what a bz2/lzma decompressor gives from its last call (``out``)
    and from further empty calls, at most ``out_slice`` bytes each, past the
    first ``skip`` bytes, until it ends or needs input; returns the skip left
    (``skip = yield from drain(...)``)."""
    while True:
        out, skip = skip_output(out, skip)
        if out:
            yield out
        if d.eof or d.needs_input:
            return skip
        out = d.decompress(b"", out_slice)
