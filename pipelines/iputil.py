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
    out = np.zeros((n, 16), dtype=np.uint8)
    version = np.zeros(n, dtype=np.int8)
    text = np.full(n, None, dtype=object)

    is_v4 = pc.fill_null(pc.match_substring_regex(arr, _IPV4_RE), False)
    v4_idx = np.flatnonzero(is_v4.to_numpy(zero_copy_only=False))
    if len(v4_idx):
        v4 = arr.take(pa.array(v4_idx))
        octets = pc.list_flatten(pc.split_pattern(v4, ".")).cast(pa.uint8()).to_numpy()
        out[v4_idx, 10:12] = 0xFF
        out[v4_idx, 12:16] = octets.reshape(-1, 4)
        version[v4_idx] = 4

    # Everything else that has a colon: IPv6, parsed once per distinct value.
    maybe_v6 = pc.and_(pc.invert(is_v4), pc.fill_null(pc.match_substring(arr, ":"), False))
    v6_idx = np.flatnonzero(maybe_v6.to_numpy(zero_copy_only=False))
    if len(v6_idx):
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
    ip16 = pa.FixedSizeBinaryArray.from_buffers(IP16, n, [None, pa.py_buffer(out.tobytes())])
    text_arr = pa.array(text, pa.string())
    if len(v4_idx):
        # Canonical IPv4 text is the input itself (the regex admits only canonical form).
        text_arr = pc.if_else(is_v4, arr, text_arr)
    return ParsedIPs(valid=valid, ip16=ip16, version=version, text=text_arr)


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
    octets = [pa.array(raw[:, 12 + i]).cast(pa.string()) for i in range(4)]
    text = pc.binary_join_element_wise(*octets, ".")
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
