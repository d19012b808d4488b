"""The leak check: the last look at every file of a site build before it is
swapped in. Defence in depth behind the redaction gate: the gate decides
what a public string may say, this check refuses to publish a build in which
something identifying got through anyway.

Two questions, asked of every published file (HTML, CSV, JSON, the feed,
datapackage.json, SVG, CSS, and the string columns of Parquet downloads):

(a) does it name an address of the published weeks' own input, in any
    spelling? Tokens that could spell an address are decoded to integers --
    dotted, dashed (``ec2-10-20-5-40``), underscored, with leading zeros
    (``0010.0020.0003.0040``), hex (``0x0a140a28``, ``0x0a.0x14.0x0c.0x28``),
    a bare integer (``169090600``), reversed DNS (``40.5.20.10.in-addr``),
    glued to a word or a port (``ip10.20.16.40``, ``10.20.15.40.21``), IPv6
    compressed, expanded, glued (``host:2001:db8::40``) or dashed
    (``2001-db8-77-a--40``) -- and looked up in the set of the weeks'
    addresses (``WeekAddresses``, read once from their clean and quarantine
    Parquet). The files are scanned once; the address set is never walked.
(b) does it hold an address-, MAC- or DN-shaped token at all (a dotted quad,
    an IPv6 address of three groups or more, ``00:0c:29:ab:cd:ef``,
    ``CN=dc01,OU=Servers``)?

A hit that is on the reviewed allow-list (``pipelines/leak_allowlist.toml``:
networks such as the scanner's own documented source range, or exact
tokens) is not one. Any other hit raises ``LeakError``; its message names the
file, the line and the token's shape, never the token (the log must not
become the leak). ``find_leaks`` and the decoders are pure; only
``WeekAddresses.from_out`` and ``load_allowlist`` read files.

The spellings are the redactor's (scanners/protocols/leakscan.py
``address_spellings``; tests/unit/test_leakcheck.py holds this check to every
one of them). The scan itself is this module's own, for speed: on the demo
site (270 files, 3 MB; a loaded machine) leakscan's ``find_identifiers`` +
``candidate_addresses`` took about 9.5 s, this module about 0.7 s; each
distinct line is now scanned once (0.34 s of CPU for the whole check).
"""
from __future__ import annotations

import bisect
import dataclasses
import enum
import ipaddress
import os
import re
import tomllib
import unicodedata

DEFAULT_ALLOWLIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leak_allowlist.toml")


MAX_FILES_SHOWN = 20


class LeakError(Exception):
    """A build would publish an identifier; ``hits`` say where and of what
    shape (never the value). The CLI exits 5 (pipelines/exits.py)."""

    def __init__(self, hits: list["Hit"]):
        self.hits = hits
        by_file: dict[str, list[Hit]] = {}
        for h in hits:
            by_file.setdefault(h.file, []).append(h)
        shown = "; ".join(f"{name}: " + ", ".join(f"{h.shape.value} (line {h.line})" for h in fh[:3])
                          + (f" and {len(fh) - 3} more" if len(fh) > 3 else "")
                          for name, fh in list(by_file.items())[:MAX_FILES_SHOWN])
        more = f"; and {len(by_file) - MAX_FILES_SHOWN} more files" if len(by_file) > MAX_FILES_SHOWN else ""
        super().__init__(f"leak check: {len(hits)} identifier-shaped token(s) in {len(by_file)} published "
                         f"file(s): {shown}{more}; the site was not replaced")


class Shape(str, enum.Enum):
    """What a hit looks like (closed vocabulary; the log says this, not the value)."""
    WEEK_ADDRESS = "an address of the week's input"
    IPV4 = "an IPv4-shaped token"
    IPV6 = "an IPv6-shaped token"
    MAC = "a MAC-address-shaped token"
    DN = "an LDAP/X.500 DN-shaped token"


@dataclasses.dataclass(frozen=True)
class Hit:
    file: str
    line: int
    shape: Shape


# -- the week's own addresses -------------------------------------------------
@dataclasses.dataclass(frozen=True)
class WeekAddresses:
    """The published weeks' input addresses as integers: IPv4 as 32-bit
    values (a frozenset, or a sorted numpy array from ``from_out``), IPv6 as
    128-bit ones (``::ffff:a.b.c.d`` rows count as IPv4)."""
    v4: "frozenset[int] | object" = frozenset()
    v6: frozenset[int] = frozenset()
    # OUT's recorded opt-out ranges ((first, last), merged and sorted): the
    # excluded hosts are in no clean or quarantine row, yet are input too
    optout_v4: tuple = ()
    optout_v6: tuple = ()

    @classmethod
    def from_texts(cls, texts) -> "WeekAddresses":
        v4, v6 = set(), set()
        for text in texts:
            for version, value in _literal_addresses(text):
                (v4 if version == 4 else v6).add(value)
        return cls(frozenset(v4), frozenset(v6))

    @classmethod
    def from_out(cls, out: str, weeks: list[str]) -> "WeekAddresses":
        """Every address in the clean rows of ``weeks`` under ``out``, plus
        every address spelled in their quarantine excerpts (the records that
        failed validation are input too).

        Clean rows are read as their 16-byte ``ip_bytes`` column and turned
        into integers with numpy: a week of millions of addresses must not
        become millions of Python strings (IPv4 stays a sorted uint32 array,
        looked up with ``searchsorted``). Weeks written before ``ip_bytes``
        fall back to the ``ip`` text."""
        import numpy as np
        import pyarrow.compute as pc
        import pyarrow.dataset as ds
        texts: list[str] = []
        v4_parts, v6 = [], set()
        for week in weeks:
            folder = os.path.join(out, f"week={week}")
            clean = os.path.join(folder, "clean")
            if os.path.isdir(clean):
                data = ds.dataset(clean, format="parquet")
                if "ip_bytes" in data.schema.names:
                    col = pc.drop_null(data.to_table(columns=["ip_bytes"]).column("ip_bytes")).combine_chunks()
                    raw = np.frombuffer(col.buffers()[1], np.uint8, count=len(col) * 16,
                                        offset=col.offset * 16).reshape(-1, 16) if len(col) else np.zeros((0, 16), np.uint8)
                    mapped = (raw[:, :10] == 0).all(axis=1) & (raw[:, 10] == 0xFF) & (raw[:, 11] == 0xFF)
                    v4_parts.append(raw[mapped, 12:].copy().view(">u4").ravel().astype(np.uint32))
                    v6.update(int.from_bytes(bytes(r), "big") for r in raw[~mapped])
                else:
                    col = data.to_table(columns=["ip"]).column("ip")
                    texts.extend(v for v in pc.unique(col).to_pylist() if v)
            quarantine = os.path.join(folder, "quarantine")
            if os.path.isdir(quarantine):
                col = ds.dataset(quarantine, format="parquet").to_table(columns=["excerpt"]).column("excerpt")
                texts.extend(v for v in pc.unique(col).to_pylist() if v)
        spelled = cls.from_texts(texts)
        v4 = np.unique(np.concatenate(v4_parts + [np.fromiter(spelled.v4, np.uint32, len(spelled.v4))]))
        from pipelines.optout_state import recorded
        rec = recorded(out)
        opt4, opt6 = (tuple(rec[0]), tuple(rec[1])) if rec else ((), ())
        return cls(v4, frozenset(v6 | set(spelled.v6)), opt4, opt6)

    @property
    def any_v4(self) -> bool:
        return bool(len(self.v4) or self.optout_v4)

    def __contains__(self, item: tuple[int, int]) -> bool:
        version, value = item
        ranges = self.optout_v4 if version == 4 else self.optout_v6
        if ranges:
            i = bisect.bisect_right(ranges, (value, 1 << 130)) - 1
            if i >= 0 and ranges[i][0] <= value <= ranges[i][1]:
                return True
        if version != 4:
            return value in self.v6
        if isinstance(self.v4, (set, frozenset)):
            return value in self.v4
        i = int(self.v4.searchsorted(value))      # a sorted numpy array (from_out)
        return i < len(self.v4) and int(self.v4[i]) == value


_V4_LITERAL = re.compile(r"(?<![0-9])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![0-9])")
_V6_LITERAL = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}")


def literal_texts(text: str):
    """The plainly written addresses in ``text`` (a clean row's ``ip``, a
    quarantine excerpt such as ``ip='10.20.5.40' port=...``), as text."""
    for m in _V4_LITERAL.finditer(text):
        if max(int(g) for g in m.groups()) <= 255:
            yield m.group(0)
    if ":" in text:
        for m in _V6_LITERAL.finditer(text):
            if _v6(m.group(0)) is not None:
                yield m.group(0)


def _literal_addresses(text: str):
    """(version, int) of ``literal_texts(text)``."""
    for t in literal_texts(text):
        if ":" in t:
            yield _v6(t)
        else:
            o = [int(g) for g in t.split(".")]
            yield 4, o[0] << 24 | o[1] << 16 | o[2] << 8 | o[3]


def _v6(token: str) -> tuple[int, int] | None:
    try:
        a = ipaddress.IPv6Address(token)
    except ValueError:
        return None
    if a.ipv4_mapped is not None:
        return 4, int(a.ipv4_mapped)
    return 6, int(a)


# -- the allow-list -------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Allowlist:
    networks: tuple = ()          # ipaddress networks: any address inside is allowed
    tokens: frozenset[str] = frozenset()   # exact tokens (lower case), e.g. a DN we publish on purpose

    def allows(self, version: int, value: int) -> bool:
        addr = ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)
        return any(addr.version == n.version and addr in n for n in self.networks)


def load_allowlist(path: str = DEFAULT_ALLOWLIST) -> Allowlist:
    """``[[allow]] token = "198.51.100.0/24", reason = "..."``: a network (an
    address or CIDR block) or an exact token; every entry needs a reason."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    nets, tokens = [], set()
    for i, entry in enumerate(doc.get("allow", []), 1):
        token, reason = entry.get("token"), entry.get("reason")
        if not isinstance(token, str) or not token or not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{path}: entry {i} needs a token and a reason")
        try:
            nets.append(ipaddress.ip_network(token, strict=False))
        except ValueError:
            tokens.add(token.lower())
    return Allowlist(tuple(nets), frozenset(tokens))


# -- scanning -----------------------------------------------------------------------
# Runs of numbers (decimal or 0x-hex) joined by '.', '-' or '_': dotted,
# dashed, underscored and reversed spellings, with a port or more labels glued on.
_NUM = r"(?:0x[0-9a-f]{1,8}|\d{1,10})"
_V4_RUN = re.compile(rf"{_NUM}(?:[._-]{_NUM}){{3,}}")
# standalone only: "0ubuntu0.12.04.1" is a version; glued spellings of a real
# address are found by the week match above
_V4_DOTTED = re.compile(r"(?<![0-9a-z.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9a-z]|\.\d)")
# Patterns are anchored so that each run is tried once (no quadratic retries
# inside long hex or digit runs); the context checks are done in Python.
_HEX32 = re.compile(r"0x[0-9a-f]{8}(?![0-9a-f])")
_DIGITS = re.compile(r"\d{8,}")             # a whole digit run (greedy from its first digit)
_V6_RUN = re.compile(r"(?<![0-9a-f:])[0-9a-f:]{3,}")
_V6_DASHED = re.compile(r"(?<![0-9a-z-])[0-9a-f]{1,4}(?:-{1,2}[0-9a-f]{0,4}){2,7}(?![0-9a-z-])")
# Colon/dash runs are split into groups: a MAC is exactly six two-digit hex
# groups in a row ("MAC:00:0c:29:ab:cd:ef"), not six of a longer fingerprint.
_MAC_CORE = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")
_RUN_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz:-")
_CISCO_MAC = re.compile(r"(?<![0-9a-f.])[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}(?![0-9a-f.])")
_HEX2 = re.compile(r"[0-9a-f]{2}")
_RDN = r"(?:cn|ou|dc|o|l|st|c|uid|street)\s*=\s*[^,;=<>\"\s][^,;=<>\"]*"
_DN = re.compile(rf"(?<![0-9a-z]){_RDN},\s*{_RDN}")


def _part(p: str) -> int:
    return int(p, 16) if p.startswith("0x") else int(p, 10)


def _v4_candidates(run: str):
    """(int, is_plain_dotted_quad) for every window of four numbers of a run,
    in both orders (reversed DNS); each number must fit an octet."""
    parts = re.split(r"[._-]", run)
    for i in range(len(parts) - 3):
        window = parts[i:i + 4]
        try:
            octets = [_part(p) for p in window]
        except ValueError:
            continue
        if max(octets) > 255:
            continue
        for o in (octets, octets[::-1]):
            yield o[0] << 24 | o[1] << 16 | o[2] << 8 | o[3]


def _v6_candidates(token: str):
    for t in {token, token.strip(":"), token.lstrip(":"), token.rstrip(":")}:
        # a word glued on by a colon ("host:2001:db8::40"): try every suffix from a group start
        starts = [0] + sorted({i + 1 for i, ch in enumerate(t) if ch == ":" and t[i + 1:i + 2] not in (":", "")}
                              | {i for i in range(1, len(t)) if t[i:i + 2] == "::"})
        for s in starts:
            got = _v6(t[s:])
            if got is not None:
                yield t[s:], got
                break


def _is_mac_run(run: str) -> bool:
    """Does a run hold exactly six two-digit hex groups in a row, joined by one separator?"""
    pieces = re.split(r"([:-])", run)
    groups, seps = pieces[0::2], pieces[1::2]
    length = 0
    for i, g in enumerate(groups):
        if _HEX2.fullmatch(g) and (length == 0 or seps[i - 1] == seps[i - 2 if i >= 2 else 0]):
            length += 1
            continue
        if length == 6:
            return True
        length = 1 if _HEX2.fullmatch(g) else 0
    return length == 6


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _run_around(text: str, start: int, end: int) -> str:
    """The whole alphanumeric/colon/dash run a match sits in."""
    while start and text[start - 1] in _RUN_CHARS:
        start -= 1
    while end < len(text) and text[end] in _RUN_CHARS:
        end += 1
    return text[start:end]


def _positions(low: str, week: WeekAddresses, allow: Allowlist) -> list[tuple[int, Shape]]:
    """(offset, shape) of every hit in lower-cased, NFKC-normalised text."""
    found: list[tuple[int, Shape]] = []

    def hit(pos: int, shape: Shape) -> None:
        found.append((pos, shape))

    def addr_hit(pos: int, version: int, value: int, shape: Shape | None) -> bool:
        if allow.allows(version, value):
            return False
        if (version, value) in week:
            hit(pos, Shape.WEEK_ADDRESS)
            return True
        if shape is not None:
            hit(pos, shape)
            return True
        return False

    for m in _V4_RUN.finditer(low):
        for value in _v4_candidates(m.group(0)):
            if addr_hit(m.start(), 4, value, None):
                break
    for m in _V4_DOTTED.finditer(low):
        octets = [int(x) for x in m.group(0).split(".")]
        if max(octets) <= 255 and m.group(0) not in allow.tokens:
            addr_hit(m.start(), 4, octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3], Shape.IPV4)
    if week.any_v4:
        for m in _HEX32.finditer(low):
            if not (m.start() and low[m.start() - 1].isdigit()):
                addr_hit(m.start(), 4, int(m.group(0), 16), None)
        for m in _DIGITS.finditer(low):
            if len(m.group(0)) <= 10 and not (m.start() and low[m.start() - 1] == ".") \
                    and int(m.group(0)) < 1 << 32:
                addr_hit(m.start(), 4, int(m.group(0)), None)
    if ":" in low:
        for m in _V6_RUN.finditer(low):
            if m.group(0).count(":") < 2:
                continue
            for spelled, (version, value) in _v6_candidates(m.group(0)):
                groups = [g for g in spelled.split(":") if g]
                # three groups, or two around "::" ("2001:db8::"); never CSS's "a::before"
                shaped = len(groups) >= 3 or (len(groups) == 2 and "::" in spelled)
                general = Shape.IPV6 if shaped and any(c.isdigit() for c in spelled) else None
                addr_hit(m.start(), version, value, general if version == 6 else Shape.IPV4)
    for m in _V6_DASHED.finditer(low):
        token = m.group(0)
        if "--" in token or token.count("-") == 7:
            got = _v6(token.replace("-", ":"))
            if got is not None:
                addr_hit(m.start(), *got, Shape.IPV6)
    mac_runs = set()
    for m in _MAC_CORE.finditer(low):
        run = _run_around(low, m.start(), m.end())
        if run not in mac_runs and _is_mac_run(run) and run not in allow.tokens and m.group(0) not in allow.tokens:
            mac_runs.add(run)
            hit(m.start(), Shape.MAC)
    for m in _CISCO_MAC.finditer(low):
        if m.group(0) not in allow.tokens:
            hit(m.start(), Shape.MAC)
    if "=" in low:
        for m in _DN.finditer(low):
            if m.group(0) not in allow.tokens:
                hit(m.start(), Shape.DN)
    return found


def _prepared(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)   # full-width digits read as digits
    return text.lower()


def scan_text(name: str, text: str, week: WeekAddresses, allow: Allowlist) -> list[Hit]:
    """Every hit in one file's text (see the module docstring), one per line and shape."""
    low = _prepared(text)
    seen, hits = set(), []
    for pos, shape in sorted(_positions(low, week, allow), key=lambda x: x[0]):
        key = (_line(low, pos), shape)
        if key not in seen:
            seen.add(key)
            hits.append(Hit(name, *key))
    return hits


def file_text(name: str, data: bytes) -> str:
    """The text of a published file to scan: Parquet as its string cells,
    one per line; anything else as UTF-8 (bytes that are not: latin-1)."""
    if name.endswith(".parquet"):
        import io
        import pyarrow as pa
        import pyarrow.parquet as pq
        t = pq.read_table(io.BytesIO(data))
        cells = [str(v) for col in t.columns if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                 for v in col.to_pylist() if v is not None]
        return "\n".join(cells)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def find_leaks(files: dict[str, bytes], week: WeekAddresses, allow: Allowlist) -> list[Hit]:
    """Every hit in ``files`` ({site path: bytes}), in path order."""
    # A site repeats itself (the same rows as CSV, JSON and Parquet, the
    # all-weeks copies, every page's header): each distinct line is scanned
    # once, all of them joined as one text, and hits are mapped back to every
    # file and line that holds it. A token never spans lines.
    distinct: dict[str, int] = {}
    per_file = []
    for name in sorted(files):
        lines = _prepared(file_text(name, files[name])).split("\n")
        per_file.append((name, [distinct.setdefault(line, len(distinct)) for line in lines]))
    big = "\n".join(distinct)
    starts, pos = [], 0
    for line in distinct:
        starts.append(pos)
        pos += len(line) + 1
    shapes: dict[int, set[Shape]] = {}
    for at, shape in _positions(big, week, allow):
        shapes.setdefault(bisect.bisect_right(starts, at) - 1, set()).add(shape)
    hits: list[Hit] = []
    if shapes:
        for name, ids in per_file:
            for lineno, i in enumerate(ids, 1):
                if i in shapes:
                    hits.extend(Hit(name, lineno, s) for s in sorted(shapes[i], key=lambda s: s.value))
    return hits


def check_build(files: dict[str, bytes], out: str, weeks: list[str],
                allowlist: str = DEFAULT_ALLOWLIST) -> int:
    """Raise LeakError if ``files`` (a site build of ``weeks`` under ``out``)
    would publish an identifier; else return the number of files scanned."""
    hits = find_leaks(files, WeekAddresses.from_out(out, weeks), load_allowlist(allowlist))
    if hits:
        raise LeakError(hits)
    return len(files)
