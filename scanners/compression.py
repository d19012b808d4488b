"""Transparent, damage-tolerant decompression, sniffed from the content.

``iter_decompressed(raw_chunks, ctx)`` turns the raw bytes of a file into
decompressed chunks. The compression is recognised by magic bytes, never by
the file name alone (scanner output is often renamed or compressed later).

Damage never raises: a truncated or corrupt stream yields every byte that
decompressed cleanly, then records a ``DamageKind`` in ``ctx`` and stops.
That is what lets a reader keep every complete record before the damage.
Concatenated members (``cat a.gz b.gz``, pigz, multi-frame zstd, pbzip2)
are followed to the end.
"""
from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Callable, Iterable, Iterator

from pipelines.schema import DamageKind
from scanners.base import ReadContext

READ_CHUNK = 1 << 20

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
    return None


def _new_decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    if kind == "zstd":
        import zstandard  # optional dependency, imported only when needed
        return zstandard.ZstdDecompressor().decompressobj()
    raise ValueError(kind)


def _finished(d) -> bool:
    return bool(getattr(d, "eof", False))


def iter_decompressed(raw: Iterable[bytes], ctx: ReadContext) -> Iterator[bytes]:
    """Decompressed chunks of a file whose raw chunks are ``raw``.

    Records ``ctx.facts['compression']`` and, on damage, a ``ctx.damage``
    entry whose offset is the *compressed* byte offset where it was found.
    """
    it = iter(raw)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= 8:
            break
    kind = sniff_compression(head)
    ctx.facts["compression"] = kind or "none"
    if kind is None:
        if head:
            yield head
        yield from it
        return
    yield from _decompress_members(kind, _prepend(head, it), ctx)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _decompress_members(kind: str, raw: Iterator[bytes], ctx: ReadContext) -> Iterator[bytes]:
    d = _new_decompressor(kind)
    consumed = 0        # compressed bytes fully handed to finished members or the current one
    fed = 0             # compressed bytes fed to the current member
    for chunk in raw:
        pending = chunk
        while pending:
            try:
                out = d.decompress(pending)
            except Exception as exc:  # zlib.error, OSError, LZMAError, zstandard.ZstdError
                ctx.damage(DamageKind.COMPRESSION_CORRUPT, consumed + fed,
                           f"{kind} data error: {_short(exc)}")
                return
            if out:
                yield out
            if not _finished(d):
                fed += len(pending)
                break
            unused = getattr(d, "unused_data", b"") or b""
            consumed += fed + len(pending) - len(unused)
            fed = 0
            # Another member may follow (concatenated gzip / bzip2 / zstd frames);
            # trailing zero padding is not a member.
            pending = unused if unused.strip(b"\x00") else b""
            d = _new_decompressor(kind)
    if fed:
        ctx.damage(DamageKind.COMPRESSION_TRUNCATED, consumed + fed,
                   f"{kind} stream ends before its end marker (file truncated?)")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def iter_file_chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """Raw chunks from a ``read(n)`` callable (a FileSystems/open() handle)."""
    while True:
        b = read(READ_CHUNK)
        if not b:
            return
        yield b
