"""The opt-out list: addresses whose owners asked not to be counted.

Input: a file in masscan ``--excludefile`` syntax, so the list that kept
masscan away from a network is the very list that drops its records here.
The grammar follows masscan's ``src/massip-parse.c`` (the parser behind
``--excludefile`` in masscan 1.3):

* entries are separated by spaces, tabs, commas and newlines, several per line;
* an entry is an IPv4 address (``198.18.0.3``), a CIDR block (``10.0.0.0/8``,
  host bits are masked off as masscan does), or a range ``a-b`` without spaces
  (``'-'``, the cp1252 dash 0x96 and the Unicode dashes U+2010..U+2015 that
  copy/paste brings are all accepted, as in masscan);
* the same for IPv6 (``2001:db8::/32``, ``[2001:db8::1]``, ``1::1-2::3``);
* ``#`` and ``;`` start a comment anywhere an entry could start; ``//``, ``/``
  and ``-`` do so at the start of a line.

Where masscan would silently do something surprising, this parser refuses the
line instead, because an opt-out list that excludes less than its author
meant is the failure that matters: ``1.2.3.4 - 1.2.3.9`` (masscan keeps
``1.2.3.4`` and treats the rest as a comment), ``10.0.0.0/`` (masscan reads
``/0``: everything), a range whose start is after its end, and IPv6 with a
dotted IPv4 tail (masscan rejects it too). Errors are ``OptOutError`` with
``file:line: reason``.

Matching: IPv4 entries match IPv4 hosts (``ip_version`` 4, and IPv6 rows
written ``::ffff:a.b.c.d``, which name the same host); IPv6 entries match
IPv6 rows. Membership is answered for whole columns with ``searchsorted``
over the merged, sorted interval sets.

"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re

import numpy as np
import pyarrow as pa

from pipelines.iputil import parse_ips, search_last_le, split_rows

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
_M64 = (1 << 64) - 1


class OptOutError(Exception):
    """The opt-out file is unusable; the message is ``file:line: reason``."""


# -- parsing -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of the file: an inclusive range of one IP version."""
    line: int
    version: int
    first: int
    last: int


_SEPARATORS = re.compile(rb"[ \t\r,]+")
# Dashes masscan accepts in IPv4 ranges: cp1252 en dash, UTF-8 U+2010..U+2015.
_DASHES = [b"\x96"] + [("\u2010\u2011\u2012\u2013\u2014\u2015"[i]).encode() for i in range(6)]
_IPV4 = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
_IPV6 = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*")


def parse_exclude_text(data: bytes, name: str = "<opt-out>") -> list[Entry]:
    """Entries of an excludefile, in file order. Raises OptOutError."""
    entries = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        for pos, tok in enumerate(t for t in _SEPARATORS.split(line) if t):
            if tok[:1] in (b"#", b";") or tok.startswith(b"//"):
                break
            if tok[:1] in (b"-", b"/"):
                if pos == 0:  # masscan: a comment line
                    break
                _fail(name, lineno, "a range or prefix must not be separated from its address by spaces", tok)
            entries.append(_parse_entry(tok, name, lineno))
    return entries


def _fail(name: str, lineno: int, reason: str, tok: bytes):
    shown = tok[:60].decode("ascii", "backslashreplace")
    raise OptOutError(f"{name}:{lineno}: {reason}: {shown!r}")


def _parse_entry(tok: bytes, name: str, lineno: int) -> Entry:
    for dash in _DASHES:
        tok = tok.replace(dash, b"-")
    try:
        text = tok.decode("ascii")
    except UnicodeDecodeError:
        _fail(name, lineno, "not an address (non-ASCII character)", tok)
    if "-" in text:
        a, _, b = text.partition("-")
        (va, first), (vb, last) = _addr(a, name, lineno, tok), _addr(b, name, lineno, tok)
        if va != vb:
            _fail(name, lineno, "a range must not mix IPv4 and IPv6", tok)
        if first > last:
            _fail(name, lineno, "range start is after its end", tok)
        return Entry(lineno, va, first, last)
    if "/" in text:
        a, _, plen = text.partition("/")
        version, addr = _addr(a, name, lineno, tok)
        bits = 32 if version == 4 else 128
        if not plen.isdigit() or not plen.isascii() or len(plen) > 4 or int(plen) > bits:
            _fail(name, lineno, f"prefix length must be 0..{bits}", tok)
        host = (1 << (bits - int(plen))) - 1
        return Entry(lineno, version, addr & ~host, (addr & ~host) | host)
    version, addr = _addr(text, name, lineno, tok)
    return Entry(lineno, version, addr, addr)


def _addr(text: str, name: str, lineno: int, tok: bytes) -> tuple[int, int]:
    """(version, integer) of one address; IPv4 octets are decimal (leading
    zeros allowed, as masscan reads them), IPv6 may be bracketed."""
    m = _IPV4.fullmatch(text)
    if m:
        octets = [int(g) for g in m.groups()]
        if max(octets) > 255:
            _fail(name, lineno, "IPv4 octet above 255", tok)
        return 4, octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "." in text and ":" in text:
        _fail(name, lineno, "IPv6 with a dotted IPv4 tail is not masscan syntax (write ::ffff:102:304)", tok)
    if _IPV6.fullmatch(text):
        try:
            return 6, int(ipaddress.IPv6Address(text))
        except ipaddress.AddressValueError:
            pass
    _fail(name, lineno, "not an IPv4/IPv6 address, CIDR block or range", tok)


def merge_intervals(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint, non-adjacent inclusive intervals covering ``pairs``."""
    out: list[list[int]] = []
    for first, last in sorted(pairs):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return [(a, b) for a, b in out]


# -- the list --------------------------------------------------------------------
class OptOutList:
    """The merged interval sets of one opt-out file.

    ``OptOutList(path)`` keeps only the path (picklable); ``setup()`` reads
    and parses it. ``from_bytes`` builds one from file content."""

    def __init__(self, path: str | None = None):
        self.path = path
        self._loaded = False

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(**state)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<opt-out>") -> "OptOutList":
        self = cls(None)
        self._build(data, name)
        return self

    def setup(self) -> None:
        if self._loaded:
            return
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise OptOutError(f"{self.path}: cannot read the opt-out file ({exc.strerror or exc})") from exc
        self._build(data, str(self.path))

    def _build(self, data: bytes, name: str) -> None:
        entries = parse_exclude_text(data, name)
        self._sha256 = hashlib.sha256(data).hexdigest()
        self._entries = len(entries)
        self._v4 = merge_intervals([(e.first, e.last) for e in entries if e.version == 4])
        self._v6 = merge_intervals([(e.first, e.last) for e in entries if e.version == 6])
        self._v4_first = np.array([a for a, _ in self._v4], _U64)
        self._v4_last = np.array([b for _, b in self._v4], _U64)
        self._v6_first = (np.array([a >> 64 for a, _ in self._v6], _U64),
                          np.array([a & _M64 for a, _ in self._v6], _U64))
        self._v6_last = (np.array([b >> 64 for _, b in self._v6], _U64),
                         np.array([b & _M64 for _, b in self._v6], _U64))
        self._loaded = True

    def contains(self, ip16: pa.FixedSizeBinaryArray, ip_version) -> pa.BooleanArray:
        """True where the row's address is in the list. ``ip_version`` is an
        Arrow or numpy int column; rows with a null address, or a version other
        than 4/6, are False (they are quarantined elsewhere)."""
        self.setup()
        hi, lo, is4, is6 = split_rows(ip16, ip_version)
        hit = np.zeros(hi.size, bool)
        as_v4 = is4 | (is6 & (hi == 0) & ((lo >> _U64(32)) == _U64(0xFFFF)))
        if self._v4 and as_v4.any():
            rows = np.flatnonzero(as_v4)
            key = lo[rows] & _MASK32
            i = np.searchsorted(self._v4_first, key, side="right") - 1
            hit[rows] = (i >= 0) & (key <= self._v4_last[np.maximum(i, 0)])
        if self._v6 and is6.any():
            rows = np.flatnonzero(is6)
            h, l = hi[rows], lo[rows]
            i = search_last_le(*self._v6_first, h, l)
            j = np.maximum(i, 0)
            e_hi, e_lo = self._v6_last[0][j], self._v6_last[1][j]
            hit[rows] |= (i >= 0) & ((h < e_hi) | ((h == e_hi) & (l <= e_lo)))
        return pa.array(hit, pa.bool_())

    def summary(self) -> dict:
        """Manifest facts: file sha256, entry count, merged ranges and the
        number of addresses covered (IPv6 as a decimal string: it exceeds int64)."""
        self.setup()
        return {"sha256": self._sha256, "entries": self._entries,
                "ipv4_ranges": len(self._v4), "ipv6_ranges": len(self._v6),
                "ipv4_addresses": sum(b - a + 1 for a, b in self._v4),
                "ipv6_addresses": str(sum(b - a + 1 for a, b in self._v6))}


def load_optout(path: str) -> OptOutList:
    """Read and parse ``path`` now (for a DoFn's ``setup()``)."""
    optout = OptOutList(path)
    optout.setup()
    return optout


def listed_rows(texts: pa.Array, optout) -> np.ndarray:
    """True where an address text is in the opt-out list."""
    ips = parse_ips(texts)
    return np.asarray(optout.contains(ips.ip16, ips.version).to_numpy(zero_copy_only=False), bool) & ips.valid


def listed_excerpts(excerpts: pa.Array, optout) -> np.ndarray:
    """True where a quarantine excerpt spells an address in the opt-out list."""
    from pipelines.leakcheck import literal_texts   # pure; its address regexes
    rows, texts = [], []
    for i, e in enumerate(excerpts.to_pylist()):
        for t in literal_texts(e or ""):
            rows.append(i)
            texts.append(t)
    hit = np.zeros(len(excerpts), bool)
    if texts:
        found = listed_rows(pa.array(texts, pa.string()), optout)
        hit[np.asarray(rows)[found]] = True
    return hit
