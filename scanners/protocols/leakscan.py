"""Find identifier-shaped tokens in published text: the last line of defence.

``find_identifiers(text)`` returns every token of ``text`` that has the
*shape* of an address or another host identifier, whatever it is spelled
like, as ``Hit(shape, start, end)`` (offsets into the NFKC-normalised text;
the caller logs the shape and the file, never the value)::

    >>> [h.shape for h in find_identifiers("from ip10.20.16.40 and ec2-10-20-5-40")]
    ['ipv4', 'ipv4_dashed']

Shapes (a closed set, ``SHAPES``): ``ipv4`` (dotted quad, also glued to a
word or followed by ``.port``, leading zeros allowed), ``ipv4_dashed``
(``10-20-5-40``, ``10_20_7_40``), ``ipv4_hex`` (``0x0a140a28``,
``0x0a.0x14.0x0c.0x28``), ``ipv6`` (also glued to a word or ``host:``),
``ipv6_dashed`` (``2001-db8-77-a--40``), ``mac``, ``dn`` (an LDAP
distinguished name with two or more ``attr=value`` parts), ``email`` (also
``(at)``/``(dot)`` spellings) and ``uuid``.

``address_spellings(addr)`` gives the spellings of one known address, for a
check against the week's own address set (the integer form is only worth
matching there: an 8-digit number in general text is usually not an address).

Pure and Beam-free; the site's leak check and the leak-corpus tests share it.
The redactor (``redact.py``) removes these shapes, so a hit in built output
means an identifier got past it.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
import unicodedata

SHAPES = ("ipv4", "ipv4_dashed", "ipv4_hex", "ipv6", "ipv6_dashed", "mac", "dn", "email", "uuid")

_OCTET = r"(?:0{0,3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d))"
# A quad glued to a word may not start with 0: "0ubuntu0.20.04.1" is a
# package revision (and 0.0.0.0/8 names no host).
_OCTET1 = r"(?:0{0,3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d?))"
# No look-behind for letters: "ip10.20.16.40" is an address glued to a word.
# A digit or dot before, or a dot-digit after a fourth group that is not a
# port, would make it part of a longer number run (a version 1.2.3.4.5).
_IPV4 = re.compile(rf"(?:(?<![\d.]){_OCTET1}|(?<![\w.]){_OCTET})\.{_OCTET}\.{_OCTET}\.{_OCTET}(?!\d)")
# Overlapping (a look-ahead group): in "ec2-10-20-5-40" both "2-10-20-5" and
# "10-20-5-40" are candidates, and the second is the address.
_IPV4_DASHED = re.compile(rf"(?<![\d])(?=({_OCTET}[-_](?:{_OCTET}[-_]){{2}}{_OCTET})(?![\d]))")
_IPV4_HEX = re.compile(r"(?i)(?<![0-9a-f])0x[0-9a-f]{8}(?![0-9a-f])"
                       r"|(?<![0-9a-f])0x[0-9a-f]{1,2}(?:\.0x[0-9a-f]{1,2}){3}(?![0-9a-f])")
# Candidates for IPv6 (checked by ipaddress): hex groups with two or more colons.
_IPV6 = re.compile(r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:%\w+)?")
_IPV6_DASHED = re.compile(r"(?i)(?<![0-9a-f-])(?:--)?[0-9a-f]{1,4}(?:-[0-9a-f]{0,4}){1,7}(?![0-9a-f-])")
_MAC = re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}(?![0-9a-f])"
                  r"|(?<![0-9a-f.])[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}(?![0-9a-f])")
_DN = re.compile(r"(?i)\b(?:cn|ou|dc|o|uid|l|st|c)\s*=\s*[^,;=\s]+\s*[,;/]\s*(?:cn|ou|dc|o|uid|l|st|c)\s*=")
_EMAIL = re.compile(r"(?i)[\w.+-]+(?:@|\s*[(\[{<]\s*at\s*[)\]}>]\s*)[\w-]+"
                    r"(?:(?:\.|\s*[(\[{<]\s*dot\s*[)\]}>]\s*)[\w-]+)+")
_UUID = re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}(?![0-9a-f])")


@dataclasses.dataclass(frozen=True)
class Hit:
    shape: str
    start: int
    end: int


def normalise(text: str) -> str:
    """NFKC: full-width digits and letters count as their ASCII selves."""
    return unicodedata.normalize("NFKC", text)


def _ipv6_hits(text: str) -> list[Hit]:
    hits = []
    for m in _IPV6.finditer(text):
        token = m.group(0).split("%", 1)[0]
        # Glued punctuation or a word before ("host:2001:db8::40"): try the
        # token and its shorter tails; a valid address of 3+ groups is a hit.
        for cut in range(len(token)):
            core = token[cut:].strip(":") if token[cut:].count("::") == 0 else token[cut:]
            if core.count(":") < 2:
                break
            try:
                ipaddress.IPv6Address(core)
            except ValueError:
                continue
            if core not in ("::",) and sum(1 for g in core.split(":") if g) >= 2:
                hits.append(Hit("ipv6", m.start() + cut, m.start() + cut + len(core)))
            break
    return hits


def _ipv6_dashed_hits(text: str) -> list[Hit]:
    hits = []
    for m in _IPV6_DASHED.finditer(text):
        token = m.group(0)
        if "--" not in token and token.count("-") < 7:
            continue          # "a-b-c" words; a full 8-group form or a '--' gap is an address
        try:
            ipaddress.IPv6Address(token.replace("-", ":"))
        except ValueError:
            continue
        if not re.search(r"\d", token) or sum(1 for g in token.split("-") if g) < 2:
            continue          # "1.8--" (a version and a dash) is "8::" to ipaddress
        hits.append(Hit("ipv6_dashed", m.start(), m.end()))
    return hits


def find_identifiers(text: str) -> list[Hit]:
    """Identifier-shaped tokens of ``text`` (see the module doc), by position."""
    if not text:
        return []
    s = normalise(text)
    low = s.lower()
    # Each shape needs its tell-tale character; absent, its scan is skipped.
    hits = []
    if "." in s:
        hits += [Hit("ipv4", m.start(), m.end()) for m in _IPV4.finditer(s)]
    if "-" in s or "_" in s:
        hits += [Hit("ipv4_dashed", m.start(1), m.end(1)) for m in _IPV4_DASHED.finditer(s)]
    if "0x" in low:
        hits += [Hit("ipv4_hex", m.start(), m.end()) for m in _IPV4_HEX.finditer(s)]
    if ":" in s:
        hits += _ipv6_hits(s)
    if "-" in s:
        hits += _ipv6_dashed_hits(s)
        hits += [Hit("uuid", m.start(), m.end()) for m in _UUID.finditer(s)]
    if ":" in s or "-" in s or "." in s:
        hits += [Hit("mac", m.start(), m.end()) for m in _MAC.finditer(s)]
    if "=" in s:
        hits += [Hit("dn", m.start(), m.end()) for m in _DN.finditer(s)]
    if "@" in s or "at" in low:
        hits += [Hit("email", m.start(), m.end()) for m in _EMAIL.finditer(s)]
    return sorted(hits, key=lambda h: (h.start, h.end, h.shape))


def address_spellings(addr: str) -> frozenset[str]:
    """Spellings of one address a server might write (lower case): dotted,
    dashed, underscored, leading zeros, hex, integer for IPv4; compressed,
    exploded and dashed for IPv6. For planting and documenting; matching
    goes the other way (``find_addresses`` reads each candidate back)."""
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        o = ip.packed
        n = int(ip)
        return frozenset({
            str(ip), "-".join(map(str, o)), "_".join(map(str, o)),
            ".".join(f"{b:04d}" for b in o), ".".join(f"{b:03d}" for b in o),
            f"0x{n:08x}", ".".join(f"0x{b:02x}" for b in o),
        } | ({str(n)} if n >= 10 ** 6 else set()))     # a short integer is just a number
    compressed, exploded = ip.compressed, ip.exploded
    return frozenset({compressed, exploded, compressed.replace(":", "-"), exploded.replace(":", "-")})


_GROUPS4 = re.compile(r"(?<!\d)(?=(\d{1,4})[._-](\d{1,4})[._-](\d{1,4})[._-](\d{1,4})(?!\d))")
_INT4 = re.compile(r"(?<![\d.])\d{7,10}(?![\d])")


def _v4(n: int) -> str | None:
    return str(ipaddress.IPv4Address(n)) if 0 <= n < 1 << 32 else None


def candidate_addresses(text: str) -> set[str]:
    """Every address ``text`` might spell, read back to canonical form: the
    shapes of ``find_identifiers`` plus bare integers of 7-10 digits (which
    only mean something against a known address set)."""
    s = normalise(text).lower()
    out: set[str] = set()
    for m in _GROUPS4.finditer(s):
        parts = [int(g) for g in m.groups()]
        glued = m.start() > 0 and s[m.start() - 1].isalpha()
        if all(p <= 255 for p in parts) and not (glued and parts[0] == 0):
            out.add(".".join(map(str, parts)))
    for m in _IPV4_HEX.finditer(s):
        tok = m.group(0)
        out.add(_v4(int(tok, 16)) if "." not in tok else ".".join(str(int(g, 16)) for g in tok.split(".")))
    for m in _INT4.finditer(s):
        v = _v4(int(m.group(0)))
        if v:
            out.add(v)
    for h in _ipv6_hits(s):
        tok = s[h.start:h.end]
        out.add(str(ipaddress.IPv6Address(tok)))
    for h in _ipv6_dashed_hits(s):
        out.add(str(ipaddress.IPv6Address(s[h.start:h.end].replace("-", ":"))))
    out.discard(None)
    return out


def find_addresses(text: str, addresses) -> list[str]:
    """Which of the given addresses (canonical text) occur in ``text`` in any
    spelling, sorted. Cost is one pass over the text, whatever the set size."""
    known = {str(ipaddress.ip_address(a)) for a in addresses}
    return sorted(candidate_addresses(text) & known)
