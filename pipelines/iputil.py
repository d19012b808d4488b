"""Vectorized IP address parsing over Arrow string columns.

Every address travels the pipeline as ``ip16``: 16 bytes in network order,
IPv4 stored IPv4-mapped (``::ffff:a.b.c.d``), beside ``ip_version`` (4/6) and
its canonical text. The IPv4 path (virtually all of an IPv4 scan) is pure
Arrow/numpy; IPv6 text is parsed with ``ipaddress`` once per *distinct*
value, which is cheap because IPv6 scan results are few.

An IPv4-mapped IPv6 address written by a scanner (``::ffff:192.0.2.1``) is
the IPv4 host it names, so it is reported as version 4.
"""
from __future__ import annotations

import dataclasses
import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

IP16 = pa.binary(16)
_U64 = np.uint64

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Leading zeros are refused on purpose: "010.1.1.1" is octal to some parsers
# and decimal to others, so no scanner we read writes it.
_IPV4_RE = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_V4_PREFIX = bytes(10) + b"\xff\xff"


@dataclasses.dataclass
class ParsedIPs:
    valid: np.ndarray            # bool, one per input row
    ip16: pa.FixedSizeBinaryArray  # zeros where invalid
    version: np.ndarray          # int8: 4, 6 or 0 where invalid
    text: pa.StringArray         # canonical text, null where invalid


def parse_ips(arr: pa.Array) -> ParsedIPs:
    """Parse a string column of addresses as scanners write them."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    n = len(arr)
    # ip16 as two big-endian 64-bit words: an IPv4 address is one integer store.
    words = np.zeros((n, 2), dtype=">u8")
    version = np.zeros(n, dtype=np.int8)
    text = None

    is_v4 = pc.fill_null(pc.match_substring_regex(arr, _IPV4_RE), False)
    v4_mask = is_v4.to_numpy(zero_copy_only=False)
    all_v4 = n > 0 and bool(v4_mask.all())
    if v4_mask.any():
        addr = _dotted_quads(arr if all_v4 else arr.filter(is_v4))
        words[v4_mask, 1] = addr | _U64(0xFFFF << 32)
        version[v4_mask] = 4

    if not all_v4:
        # Everything else that has a colon: IPv6, parsed once per distinct value.
        out = words.view(np.uint8).reshape(n, 16)
        maybe_v6 = pc.and_(pc.invert(is_v4), pc.fill_null(pc.match_substring(arr, ":"), False))
        v6_idx = np.flatnonzero(maybe_v6.to_numpy(zero_copy_only=False))
        if len(v6_idx):
            text = np.full(n, None, dtype=object)
            v6 = arr.take(pa.array(v6_idx)).dictionary_encode()
            parsed = [_parse_v6(s) for s in v6.dictionary.to_pylist()]
            codes = v6.indices.to_numpy()
            for j, (packed, ver, canon) in enumerate(parsed):
                if packed is None:
                    continue
                rows = v6_idx[codes == j]
                out[rows] = np.frombuffer(packed, dtype=np.uint8)
                version[rows] = ver
                text[rows] = canon

    valid = version > 0
    ip16 = pa.FixedSizeBinaryArray.from_buffers(IP16, n, [None, pa.py_buffer(words.tobytes())])
    # Canonical IPv4 text is the input itself (the regex admits only canonical form).
    if all_v4:
        text_arr = arr
    else:
        text_arr = pa.nulls(n, pa.string()) if text is None else pa.array(text, pa.string())
        if v4_mask.any():
            text_arr = pc.if_else(is_v4, arr, text_arr)
    return ParsedIPs(valid=valid, ip16=ip16, version=version, text=text_arr)


def _dotted_quads(v4: pa.StringArray) -> np.ndarray:
    """uint64 value of each address of ``v4``, all of which match _IPV4_RE.

    Read straight from the string data: the regex guarantees exactly three
    dots and one to three digits per octet, so each octet lies between dots
    and is summed from its last (up to) three bytes, a column at a time.
    """
    n = len(v4)
    width = np.int64 if pa.types.is_large_string(v4.type) else np.int32
    offsets = np.frombuffer(v4.buffers()[1], width, count=n + 1, offset=np.dtype(width).itemsize * v4.offset)
    data = np.frombuffer(v4.buffers()[2], np.uint8)
    first, last = int(offsets[0]), int(offsets[-1])
    dots = (np.flatnonzero(data[first:last] == ord(".")) + first).reshape(n, 3)
    starts = (offsets[:-1], dots[:, 0] + 1, dots[:, 1] + 1, dots[:, 2] + 1)
    ends = (dots[:, 0], dots[:, 1], dots[:, 2], offsets[1:])
    addr = np.zeros(n, np.uint32)
    for start, end in zip(starts, ends):
        digits = end - start
        octet = (data[end - 1] - 48).astype(np.uint32)
        # end - 2 / end - 3 may point before the octet (or wrap to the last
        # byte at index -1): those digits are multiplied by False.
        octet += (data[end - 2] - 48).astype(np.uint32) * (digits >= 2) * 10
        octet += (data[end - 3] - 48).astype(np.uint32) * (digits >= 3) * 100
        addr = addr << 8 | octet
    return addr.astype(_U64)


def _parse_v6(s: str) -> tuple[bytes | None, int, str | None]:
    if len(s) > 64 or "%" in s:  # zone ids name an interface, not a host
        return None, 0, None
    try:
        a = ipaddress.IPv6Address(s)
    except ValueError:
        return None, 0, None
    if a.ipv4_mapped is not None:
        return _V4_PREFIX + a.ipv4_mapped.packed, 4, str(a.ipv4_mapped)
    return a.packed, 6, a.compressed


def ip16_to_hilo(arr: pa.FixedSizeBinaryArray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``fixed_size_binary(16)`` addresses into native uint64 (hi, lo).

    The data buffer is viewed big-endian without copying; the one copy is the
    byte swap to native order. Null slots yield whatever bytes they hold (the
    caller masks them)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.binary(16):
        raise TypeError(f"expected fixed_size_binary(16), got {arr.type}")
    n = len(arr)
    if n == 0:
        return np.zeros(0, _U64), np.zeros(0, _U64)
    words = np.frombuffer(arr.buffers()[1], dtype=">u8", count=2 * n, offset=arr.offset * 16)
    pairs = words.astype(_U64).reshape(n, 2)
    return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])


def search_last_le(starts_hi: np.ndarray, starts_lo: np.ndarray,
                   key_hi: np.ndarray, key_lo: np.ndarray) -> np.ndarray:
    """Index of the last 128-bit start <= key (-1 if none), for sorted starts.

    One searchsorted on the high words; only keys whose high word equals a
    start's high word (ranges split inside a /64) need the low words, and those
    are settled by a vectorized bisection within their group."""
    idx = np.searchsorted(starts_hi, key_hi, side="right").astype(np.int64) - 1
    safe = np.maximum(idx, 0)
    fix = np.flatnonzero((idx >= 0) & (starts_hi[safe] == key_hi) & (starts_lo[safe] > key_lo))
    if fix.size:
        k_hi, k_lo = key_hi[fix], key_lo[fix]
        lo = np.searchsorted(starts_hi, k_hi, side="left").astype(np.int64) - 1  # start < key
        hi = idx[fix]                                                          # start > key
        while True:
            open_ = hi - lo > 1
            if not open_.any():
                break
            mid = (lo + hi) // 2
            le = open_ & (starts_lo[np.maximum(mid, 0)] <= k_lo)
            lo = np.where(le, mid, lo)
            hi = np.where(open_ & ~le, mid, hi)
        idx[fix] = lo
    return idx


def split_rows(ip16, ip_version) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hi, lo, is4, is6) of a batch; ``ip_version`` is an Arrow or numpy int
    column. Null addresses/versions and versions other than 4/6 are in neither
    mask. A version-4 row must hold ``::ffff:a.b.c.d`` (ValueError otherwise)."""
    if isinstance(ip16, pa.ChunkedArray):
        ip16 = ip16.combine_chunks()
    hi, lo = ip16_to_hilo(ip16)
    if isinstance(ip_version, (pa.Array, pa.ChunkedArray)):
        ip_version = ip_version.fill_null(0).to_numpy(zero_copy_only=False)
    ver = np.asarray(ip_version)
    if ver.shape != hi.shape:
        raise ValueError(f"ip16 has {hi.size} rows but ip_version has {ver.size}")
    ok = ip16.is_valid().to_numpy(zero_copy_only=False) if ip16.null_count else True
    is4, is6 = (ver == 4) & ok, (ver == 6) & ok
    if not ((hi[is4] == 0) & ((lo[is4] >> _U64(32)) == _U64(0xFFFF))).all():
        raise ValueError("ip_version 4 rows must hold IPv4-mapped addresses (::ffff:a.b.c.d)")
    return hi, lo, is4, is6



def ip16_to_text(value: bytes) -> str:
    """Canonical text of one ip16 value (used in tests and messages)."""
    if value[:12] == _V4_PREFIX:
        return str(ipaddress.IPv4Address(value[12:]))
    return ipaddress.IPv6Address(value).compressed


def ip16_text(ip16: pa.FixedSizeBinaryArray, version: np.ndarray) -> pa.StringArray:
    """Canonical text of an ip16 column (the inverse of ``parse_ips``): IPv4
    vectorized, IPv6 through ``ipaddress`` once per distinct value."""
    ip16 = ip16.combine_chunks() if isinstance(ip16, pa.ChunkedArray) else ip16
    n = len(ip16)
    version = np.asarray(version)
    raw = np.frombuffer(ip16.buffers()[1], dtype=np.uint8, count=16 * (n + ip16.offset))
    raw = raw[16 * ip16.offset:].reshape(n, 16)
    v4 = version == 4
    text = _dotted_quad_text(raw[:, 12:])
    if (~v4).any():
        out = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
        rows = np.flatnonzero(~v4)
        cache: dict[bytes, str] = {}
        for r in rows:
            b = raw[r].tobytes()
            if b not in cache:
                cache[b] = ipaddress.IPv6Address(b).compressed
            out[r] = cache[b]
        text = pa.array(out, pa.string())
    return text


def _octet_words(suffix: str) -> np.ndarray:
    """Per octet value, its text + ``suffix`` NUL-padded in front to four
    bytes, as a little-endian uint32 (so the bytes lie in reading order)."""
    return np.array([int.from_bytes((str(v) + suffix).rjust(4, "\0").encode(), "little") for v in range(256)],
                    dtype="<u4")


_OCTET_DOT, _OCTET_END = _octet_words("."), _octet_words("")
_OCTET_DIGITS = np.array([len(str(v)) for v in range(256)], dtype=np.int32)


def _dotted_quad_text(octets: np.ndarray) -> pa.StringArray:
    """"a.b.c.d" of each row of an (n, 4) uint8 array, built as one string
    buffer: each row is looked up as four NUL-padded 4-byte words, and
    dropping the NULs leaves the text, rows in order."""
    n = len(octets)
    words = np.empty((n, 4), dtype="<u4")
    words[:, :3] = _OCTET_DOT[octets[:, :3]]
    words[:, 3] = _OCTET_END[octets[:, 3]]
    data = words.view(np.uint8).reshape(-1)
    digits = _OCTET_DIGITS[octets]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(digits[:, 0] + digits[:, 1] + digits[:, 2] + digits[:, 3] + 3, out=offsets[1:])
    text = np.compress(data != 0, data)   # (np.compress: ~2x faster than data[data != 0])
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
