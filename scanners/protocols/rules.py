"""Banner facts as data: the rule engine, plus the input discipline every
protocol parser shares.

Rules live in ``scanners/protocols/rules/<protocol>.toml`` (packaged data,
read with ``importlib.resources``; no other file is ever opened). One file is
a list of ``[[rule]]`` tables::

    [[rule]]
    id = "openssh-ubuntu-12.04"
    match = '^OpenSSH_(?P<version>5\\.9p1) Debian-5ubuntu1(?:\\.\\d+)?$'
    vendor = "OpenBSD"
    product = "OpenSSH"
    version = "{version}"          # {name} = the named group of `match`
    os_family = "Linux"
    os_release = "Ubuntu 12.04"
    examples = [
      { banner = "SSH-2.0-OpenSSH_5.9p1 Debian-5ubuntu1", expect = { version = "5.9p1" } },
    ]

* ``match`` is a Python ``re`` pattern that must start with ``^`` (optionally
  after inline flags such as ``(?i)``); it is applied with ``re.match`` to the
  protocol's *subject* (what the protocol module's parser distilled from the
  banner: the SSH software+comments, the HTTP Server value, ...), never to
  the raw banner. With ``search = true`` the pattern is applied with
  ``re.search`` instead and need not start with ``^``: for a product token
  that may stand anywhere in the subject (an SMTP greeting's text after the
  domain, a second HTTP product token). Prefer anchored rules where the
  position is known: they are cheaper and cannot match by accident.
* ``cpe`` (optional) names the product in CPE 2.3 terms as
  ``"part:vendor:product"`` (part ``a`` application, ``o`` operating system,
  ``h`` hardware; vendor and product spelled as in NVD's CPE dictionary,
  lower case). The identification's ``cpe`` is then
  ``cpe:2.3:part:vendor:product:version:*:*:*:*:*:*:*`` with the identified
  version (``*`` when there is none). An example may pin it with
  ``expect = { cpe = "cpe:2.3:a:openbsd:openssh:5.9p1:*:*:*:*:*:*:*" }``.
* The **first** rule whose pattern matches wins; specific rules therefore come
  before general ones, and ``tests/unit/test_rules_sweep.py`` proves that no
  earlier rule shadows any example.
* ``examples`` are raw banners (as masscan/zgrab2 deliver them; an optional
  ``banner_type``, default the protocol's first) with the fields they must
  yield (``""`` = the field is absent); every rule needs at least one, and
  every field that uses a ``{group}`` template must be pinned by each example.
  A template that expands to nothing leaves the field absent.
* ``os_family`` and ``device_type`` are closed vocabularies (below), so the
  site can group by them without free text creeping in. A name field that
  is a template (``product = "{model}"``) must list the names it may select:
  ``vocabulary = { product = ["TL-ER604W", ...] }``; the public gate
  (``gate.py``) publishes any other value as ``<redacted>``.
* ``cpe_version`` (optional, beside ``cpe``) is a literal CPE version
  component (``*``, ``-`` or version-shaped) used instead of the identified
  version.

The engine (``RuleSet.first_match``) answers what trying every rule in file
order would (``first_match_linear``, the reference) but tries only the rules
whose required literal the subject holds (``rule_index.py``), so the cost
per subject follows the candidate rules, not the file's length. ``starts``
are later offsets where a product token begins (HTTP); there only anchored
rules are tried. docs/PROTOCOLS.md has the whole format and how to add a
product.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import string
import tomllib
from collections.abc import Mapping

from scanners.protocols.rule_index import RuleIndex

# -- input discipline ---------------------------------------------------------
# Every parser and the redactor look at no more than this many characters of a
# banner. Bounded work per banner is what keeps a hostile 1 MB banner from
# costing more than a normal one; real banners (masscan caps its own) are far
# shorter, except HTTP header blocks, which rarely reach 4 KiB.
MAX_PARSE_CHARS = 4096

FIELDS = ("vendor", "product", "version", "os_family", "os_release", "device_type")

OS_FAMILIES = frozenset({
    "Linux", "Windows", "FreeBSD", "OpenBSD", "NetBSD", "macOS", "Solaris",
    "Unix", "IOS", "RouterOS", "VRP", "Comware", "embedded",
})
DEVICE_TYPES = frozenset({
    "router", "firewall", "switch", "network-device", "camera", "dvr",
    "printer", "nas", "embedded",
})

_RULE_KEYS = frozenset({"id", "match", "examples", "search", "cpe", "cpe_version", "vocabulary", *FIELDS})
# Fields whose values are names: a bare template ("{model}") in one of them
# may only select among the names the rule lists in its ``vocabulary`` (the
# gate, gate.py, publishes anything else as <redacted>); os_release's bare
# "{release}" is filled from os_releases.toml, whose names are its vocabulary.
NAME_FIELDS = ("vendor", "product", "os_family", "device_type")
# A literal CPE version component: digits, letters and . _ - (or * / - alone).
_CPE_VERSION = re.compile(r"^(?:\*|-|[A-Za-z0-9][A-Za-z0-9._\-]{0,39})$")
_INLINE_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")
# part:vendor:product, each component as NVD writes it (no spaces, lower case).
_CPE_NAME = re.compile(r"^[aoh]:[a-z0-9][a-z0-9_.\-~!]*:[a-z0-9][a-z0-9_.\-~!]*$")
# What may be pinned in an example's expect: the fields, plus the derived cpe.
EXPECT_KEYS = frozenset({*FIELDS, "cpe"})


def cpe_escape(value: str) -> str:
    """A value as a CPE 2.3 formatted-string component (NISTIR 7695 5.3.2):
    characters other than letters, digits and ``_`` are backslash-quoted,
    except ``-`` and ``.`` which stand as they are inside a value."""
    return re.sub(r"([^A-Za-z0-9_.\-])", r"\\\1", value.lower())


def as_text(banner: str | bytes | None) -> str:
    """Banner as text, clipped to ``MAX_PARSE_CHARS``.

    Bytes are decoded as UTF-8 with invalid bytes written ``\\xNN`` -- the
    same convention the clean rows use for ``banners`` -- so a parser sees the
    same text whichever form it was handed.
    """
    if banner is None:
        return ""
    if isinstance(banner, (bytes, bytearray, memoryview)):
        banner = bytes(banner[:MAX_PARSE_CHARS * 4]).decode("utf-8", "backslashreplace")
    return banner[:MAX_PARSE_CHARS]


_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_HEX_DUMP = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")


def as_bytes(banner: str | bytes | None) -> bytes:
    """Bytes of a binary banner (PPTP, ISAKMP, Kerberos), clipped.

    Accepts raw bytes, text with ``\\xNN`` escapes for invalid UTF-8 (clean
    rows), or a plain hex dump (zmap's ``data`` field). Undoing the escapes is
    exact except for a banner that itself contained a literal ``\\x41``.
    """
    if banner is None:
        return b""
    if isinstance(banner, (bytes, bytearray, memoryview)):
        return bytes(banner[:MAX_PARSE_CHARS])
    text = banner[:MAX_PARSE_CHARS * 2]
    if _HEX_DUMP.fullmatch(text):
        return bytes.fromhex(text)[:MAX_PARSE_CHARS]
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8", "surrogatepass")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogatepass")
    return bytes(out[:MAX_PARSE_CHARS])


# -- FTP/SMTP replies (RFC 959 4.2, RFC 5321 4.2) -------------------------------
@dataclasses.dataclass(frozen=True)
class Reply:
    code: int | None     # None for a line that is not a reply line
    lines: tuple[str, ...]   # text after "NNN " / "NNN-", one per line

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


_REPLY_LINE = re.compile(r"^([1-5]\d\d)([ -]?)(.*)$")


def split_replies(text: str) -> list[Reply]:
    """Split a server transcript into replies.

    A multi-line reply is ``NNN-text`` lines ended by ``NNN text``; lines in
    between that lack the code (allowed by RFC 959) belong to the open reply.
    Lines are split on ``\\n`` with a trailing ``\\r`` dropped, because masscan
    joins replies with a bare ``\\n`` and zgrab2 keeps ``\\r\\n``.
    """
    replies: list[Reply] = []
    code: int | None = None
    lines: list[str] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        m = _REPLY_LINE.match(line)
        if code is not None:
            if m and int(m.group(1)) == code and m.group(2) != "-":
                lines.append(m.group(3))
                replies.append(Reply(code, tuple(lines)))
                code, lines = None, []
            elif m and int(m.group(1)) == code:
                lines.append(m.group(3))
            else:
                lines.append(line)
            continue
        if m and m.group(2) == "-":
            code, lines = int(m.group(1)), [m.group(3)]
        elif m:
            replies.append(Reply(int(m.group(1)), (m.group(3),)))
        elif line:
            replies.append(Reply(None, (line,)))
    if code is not None:          # cut off inside a multi-line reply
        replies.append(Reply(code, tuple(lines)))
    return replies


# -- rules --------------------------------------------------------------------
class RuleError(ValueError):
    """A rule file is malformed (raised at load time, never per banner)."""


@dataclasses.dataclass(frozen=True)
class Example:
    banner: str
    expect: Mapping[str, str]
    banner_type: str | None = None


@dataclasses.dataclass(frozen=True)
class Identity:
    """What a rule says about a banner. Every field may be None."""

    rule_id: str | None = None
    vendor: str | None = None
    product: str | None = None
    version: str | None = None
    os_family: str | None = None
    os_release: str | None = None
    device_type: str | None = None
    cpe: str | None = None

    def fields(self) -> dict[str, str | None]:
        return {f: getattr(self, f) for f in FIELDS}


NO_IDENTITY = Identity()


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    pattern: re.Pattern
    fields: Mapping[str, str]
    examples: tuple[Example, ...]
    search: bool = False
    cpe: str | None = None      # "part:vendor:product"
    cpe_version: str | None = None   # a literal version component instead of the version
    vocabulary: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def vocabulary_names(self) -> tuple[str, ...]:
        return tuple(n for names in self.vocabulary.values() for n in names)

    def templated(self) -> dict[str, str]:
        """{field: template} of the fields that take text from the match."""
        return {f: t for f, t in self.fields.items() if "{" in t}

    def find(self, subject: str) -> re.Match | None:
        return self.pattern.search(subject) if self.search else self.pattern.match(subject)

    def identity(self, m: re.Match) -> Identity:
        groups = {k: (v or "") for k, v in m.groupdict().items()}
        values = {}
        for name, template in self.fields.items():
            value = template.format_map(groups).strip()
            values[name] = value or None
        cpe = None
        if self.cpe:
            version = self.cpe_version or values.get("version") or "*"
            component = version if version in ("*", "-") else cpe_escape(version)
            cpe = f"cpe:2.3:{self.cpe}:{component}:*:*:*:*:*:*:*"
        return Identity(rule_id=self.id, cpe=cpe, **values)


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """A protocol's rules in file order, with the literal prefilter
    (``rule_index.py``) built once: ``first_match`` tries only the rules
    whose required literal the subject has, in file order, so its answer is
    the linear scan's (``first_match_linear``, kept as the reference)."""

    protocol: str
    rules: tuple[Rule, ...]
    index: RuleIndex = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", RuleIndex(self.rules))

    def first_match(self, subject: str, starts: tuple[int, ...] = (0,)) -> tuple[Rule, re.Match] | None:
        """The first rule matching at the first start offset that any rule
        matches at: at offset 0 every rule, at a later offset (the start of a
        later product token, see ``http.py``) the anchored rules only, each on
        ``subject[offset:]``."""
        rules = self.rules
        for pos in starts:
            tail = subject[pos:] if pos else subject
            for i in self.index.candidates(tail, anchored_only=pos > 0):
                m = rules[i].find(tail)
                if m:
                    return rules[i], m
        return None

    def first_match_linear(self, subject: str, starts: tuple[int, ...] = (0,)) -> tuple[Rule, re.Match] | None:
        """``first_match`` without the prefilter: every rule in order."""
        for pos in starts:
            tail = subject[pos:] if pos else subject
            for rule in self.rules:
                if pos and rule.search:
                    continue
                m = rule.find(tail)
                if m:
                    return rule, m
        return None

    def identify(self, subject: str, starts: tuple[int, ...] = (0,)) -> Identity:
        if not subject:
            return NO_IDENTITY
        hit = self.first_match(subject[:MAX_PARSE_CHARS], starts)
        return hit[0].identity(hit[1]) if hit else NO_IDENTITY

    @property
    def examples(self) -> int:
        return sum(len(r.examples) for r in self.rules)


def _template_names(template: str, where: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RuleError(f"{where}: bad template {template!r}: {exc}") from None
    names = set()
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise RuleError(f"{where}: template {template!r} may only use plain {{group}}")
        names.add(name)
    return names


def _parse_rule(protocol: str, raw: dict, index: int) -> Rule:
    where = f"{protocol}.toml rule #{index + 1}"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise RuleError(f"{where}: needs a string id")
    where = f"{protocol}.toml rule {rid!r}"
    search = raw.get("search", False)
    if not isinstance(search, bool):
        raise RuleError(f"{where}: search must be true or false")
    source = raw.get("match")
    if not isinstance(source, str) or not (search or _INLINE_FLAGS.sub("", source).startswith("^")):
        raise RuleError(f"{where}: match must be a regex starting with '^' (or set search = true)")
    cpe = raw.get("cpe")
    if cpe is not None and (not isinstance(cpe, str) or not _CPE_NAME.match(cpe)):
        raise RuleError(f"{where}: cpe must be 'part:vendor:product' in lower case, e.g. 'a:openbsd:openssh'")
    cpe_version = raw.get("cpe_version")
    if cpe_version is not None and (not isinstance(cpe_version, str) or not _CPE_VERSION.match(cpe_version)
                                    or not cpe):
        raise RuleError(f"{where}: cpe_version must be a literal version ('*', '-', '2.0') beside a cpe")
    try:
        pattern = re.compile(source)
    except re.error as exc:
        raise RuleError(f"{where}: bad regex: {exc}") from None
    fields = {f: raw[f] for f in FIELDS if f in raw}
    if not fields:
        raise RuleError(f"{where}: sets no field")
    templated = set()
    for name, value in fields.items():
        if not isinstance(value, str):
            raise RuleError(f"{where}: {name} must be a string")
        used = _template_names(value, where)
        missing = used - set(pattern.groupindex)
        if missing:
            raise RuleError(f"{where}: {name} uses groups {sorted(missing)} not in match")
        if used:
            templated.add(name)
    vocabulary = raw.get("vocabulary") or {}
    if not isinstance(vocabulary, dict) or set(vocabulary) - set(NAME_FIELDS) or not all(
            isinstance(v, list) and v and all(isinstance(x, str) and x for x in v) for v in vocabulary.values()):
        raise RuleError(f"{where}: vocabulary must be a table of {list(NAME_FIELDS)} -> non-empty name lists")
    for name in NAME_FIELDS:
        if name in templated and name not in vocabulary:
            raise RuleError(f"{where}: {name} is templated, so the rule needs vocabulary.{name} "
                            "(the names it may select; free text never becomes a name)")
    for name, vocab in (("os_family", OS_FAMILIES), ("device_type", DEVICE_TYPES)):
        if name in fields and name not in templated and fields[name] not in vocab:
            raise RuleError(f"{where}: {name} {fields[name]!r} not in {sorted(vocab)}")
    examples = []
    for ex in raw.get("examples") or ():
        if not isinstance(ex, dict) or not isinstance(ex.get("banner"), str):
            raise RuleError(f"{where}: each example needs a string banner")
        expect = ex.get("expect")
        if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS or not expect:
            raise RuleError(f"{where}: example expect must be a table of fields")
        if not templated <= set(expect):
            raise RuleError(f"{where}: examples must pin templated fields {sorted(templated)}")
        examples.append(Example(ex["banner"], dict(expect), ex.get("banner_type")))
    if not examples:
        raise RuleError(f"{where}: needs at least one example")
    if any("cpe" in ex.expect for ex in examples) and not cpe:
        raise RuleError(f"{where}: an example pins cpe but the rule has none")
    return Rule(rid, pattern, fields, tuple(examples), search, cpe, cpe_version,
                {f: tuple(v) for f, v in vocabulary.items()})


def parse_rules(protocol: str, text: str) -> RuleSet:
    """Build a RuleSet from TOML text; raises RuleError when malformed."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{protocol}.toml: {exc}") from None
    unknown = set(doc) - {"rule"}
    if unknown:
        raise RuleError(f"{protocol}.toml: unknown top-level keys {sorted(unknown)}")
    rules = tuple(_parse_rule(protocol, r, i) for i, r in enumerate(doc.get("rule", ())))
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuleError(f"{protocol}.toml: duplicate rule ids {dupes}")
    return RuleSet(protocol, rules)


@functools.cache
def load_rules(protocol: str) -> RuleSet:
    """The packaged rules of one protocol (empty when it has no rule file)."""
    # rules/ is a data folder next to this module (not a package: it would
    # shadow this module's name), read through the package's resources.
    resource = importlib.resources.files("scanners.protocols").joinpath("rules", f"{protocol}.toml")
    if not resource.is_file():
        return RuleSet(protocol, ())
    return parse_rules(protocol, resource.read_text(encoding="utf-8"))
