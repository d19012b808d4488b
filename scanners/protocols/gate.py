"""The one gate every public string passes: redact, then check its shape.

Whatever can reach the site, a download, the feed or the public aggregates
goes through ``public(field, value)``; what fails its field's shape is
published as ``REDACTED`` (``"<redacted>"``) and counted by the caller
(``is_redacted``)::

    >>> public("version", "5.9p1")
    '5.9p1'
    >>> public("version", "bastion.corp.example")
    '<redacted>'
    >>> public("product", "OpenSSH")
    'OpenSSH'
    >>> public("product", "app.corp.example")
    '<redacted>'

Fields (a closed set, ``FIELDS``) and their shapes:

* ``banner``, ``title`` -- free text: ``redact.py`` (``title`` in its
  free-text mode), then no address-, MAC-, DN-, e-mail- or UUID-shaped token
  may remain (``leakscan.find_identifiers``), at most ``MAX_TEXT`` characters.
* ``version`` -- a literal version some rule writes (``<=9.6``), or
  version-shaped: letters, digits and ``.+~_-``, starting with a letter or
  digit, holding a digit, at most ``MAX_VERSION`` characters, no host-name
  shape (``web01.corp``, ``corp-web01``) and never address-shaped: no hex
  integer, no integer of 8+ digits unless it is a date (``20100324``), no
  dotted, dashed or underscored run of four octet-sized numbers -- unless the
  identified product is one whose rules' own (reviewed) examples carry such
  versions (``7.2.1.0``: Oracle, IBM, Tectia) and the value has their parts
  and no more digits in any part (``_quad_fits``).
* ``vendor``, ``product``, ``os_family``, ``os_release``, ``device_type`` --
  a name from the rules' own vocabulary (``vocabulary(field)``: the literal
  values of every rule, the names a templated rule lists in its
  ``vocabulary``, os_releases.toml, the HTTP OS comments, the closed OS and
  device sets), or a rule template with literal text around version-shaped
  groups (``AIX {aix}`` -> ``AIX 7.1``). A caller with a narrower list passes
  ``vocabulary=``.
* ``cpe`` -- ``cpe:2.3:<part>:<vendor>:<product>:<version>:*:*:*:*:*:*:*``
  with a part:vendor:product some rule names and a version component that
  is ``*``, ``-`` or a version.
* ``country`` -- two capital letters; ``as_org`` -- an organisation name
  from the ASN database: control characters escaped, no identifier shape.

The gate is pure and cheap enough per distinct value; callers run it once
per distinct value (identify.py per distinct banner, aggregate.py per
dictionary entry), never per record.
"""
from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Collection

from scanners.escapes import escape_unsafe
from scanners.protocols.hostwords import is_host_word, known_words
from scanners.protocols.leakscan import find_identifiers
from scanners.protocols.redact import redact

REDACTED = "<redacted>"
FIELDS = ("banner", "title", "vendor", "product", "version", "os_family", "os_release", "device_type",
          "cpe", "country", "as_org")
NAME_FIELDS = ("vendor", "product", "os_family", "os_release", "device_type")
MAX_TEXT = 4096 + len("<truncated>")
MAX_VERSION = 48
MAX_NAME = 80

_VERSION = re.compile(rf"[A-Za-z0-9][A-Za-z0-9.+~_-]{{0,{MAX_VERSION - 1}}}")
_LONG_INT = re.compile(r"\d{8,}")
_QUADISH = re.compile(r"(?<![\d])\d{1,4}[._-]\d{1,4}[._-]\d{1,4}[._-]\d{1,4}(?![\d])")
_HEX_INT = re.compile(r"(?i)0x[0-9a-f]{6,}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_VERSION_IDS = re.compile(r"(?i)(?<![0-9a-f])(?:[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}|[0-9a-f]{2}(?:-[0-9a-f]{2}){5}"
                          r"|[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12})(?![0-9a-f])")
_VERSION_START = re.compile(r"\d|v\d|[A-Z]{1,3}\d")
_CPE = re.compile(r"cpe:2\.3:([aoh]:[a-z0-9][a-z0-9_.\-~!]*:[a-z0-9][a-z0-9_.\-~!]*):((?:\\.|[A-Za-z0-9._\-])+|\*|-)"
                  r"(?::\*){7}")


class GateError(ValueError):
    """An unknown field name: a programming error, raised before any data is read."""


def is_redacted(value: str | None) -> bool:
    return value == REDACTED


def _date8(digits: str) -> bool:
    """An 8-digit run that is a date (20100324: tnftpd, Jetty's v20210629)."""
    if len(digits) != 8:
        return False
    try:
        datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return False
    return 1990 <= int(digits[:4]) <= 2099


def version_shaped(value: str, product: str | None = None) -> bool:
    """A version as the gate accepts it (see the module doc). Four or more
    octet-sized numbers (7.2.1.0) read as an address unless ``product`` is
    one whose rules' own examples carry such versions and the value fits
    their digit profile (``_quad_fits``)."""
    if not _VERSION.fullmatch(value) or not any(c.isdigit() for c in value):
        return False
    if _HEX_INT.search(value) or any(not _date8(m.group(0)) for m in _LONG_INT.finditer(value)):
        return False
    quads_ok = _quad_fits(value, product)
    if not quads_ok:
        # Octets joined by dots, dashes or underscores are an address whatever
        # the product says (10.66.23.1); a part over 255 (6.0.3790.4675) is not.
        for m in _QUADISH.finditer(value):
            if all(int(g) <= 255 for g in re.split(r"[._-]", m.group(0))):
                return False
    # Two dotted labels with letters are a host name (web01.corp), and so is
    # a host-shaped word (corp-web01, dc01) unless it starts as versions do
    # (a digit, "v2", "R6_2_1", "SP1", or a word the rules know: "Xerox11").
    if sum(1 for label in value.split(".") if re.search(r"[A-Za-z]", label)) > 1:
        return False
    if is_host_word(value) and not (_VERSION_START.match(value) or (
            re.fullmatch(r"[A-Za-z]+\d[\d.]*", value)
            and re.match(r"[A-Za-z]+", value).group(0).lower() in known_words())):
        return False
    # The other identifier shapes a version's characters allow (no ":", "@",
    # "=" or space can be in it): a dotted or dashed MAC, a UUID, a dashed
    # IPv6 (2001-db8-77-a--40).
    if _VERSION_IDS.search(value):
        return False
    if "-" in value:
        shapes = {h.shape for h in find_identifiers(value)} - ({"ipv4", "ipv4_dashed"} if quads_ok else set())
        return not shapes
    return True


def _profile(version: str) -> tuple[int, ...]:
    return tuple(len(p) for p in re.split(r"[._-]", version))


def _quad_fits(value: str, product: str | None) -> bool:
    """Whether ``value`` is numbered as ``product``'s own examples are: the
    same number of parts, none with more digits than the examples have
    there (389 Directory Server's 1.4.3.39 admits 1.4.4.17, not 10.20.15.40)."""
    profiles = _quad_products().get(product)
    if not profiles:
        return False
    mine = _profile(value)
    return any(len(p) == len(mine) and all(a <= b for a, b in zip(mine, p)) for p in profiles)


@functools.cache
def _quad_products() -> dict[str, frozenset[tuple[int, ...]]]:
    """{product: digit profiles of its examples' four-octet versions}: the
    rules' own (reviewed) examples are the evidence that a product numbers
    its releases so."""
    from scanners import protocols
    from scanners.protocols.identify import identify_parsed
    from scanners.protocols.rules import load_rules
    out: dict[str, set] = {}
    for name in protocols.names():
        module = protocols.module(name)
        for rule in load_rules(name).rules:
            if "version" not in rule.templated() or "product" not in rule.fields:
                continue
            for ex in rule.examples:
                version = ex.expect.get("version") or ""
                if any(all(int(g) <= 255 for g in re.split(r"[._-]", m.group(0)))
                       for m in _QUADISH.finditer(version)):
                    ident = identify_parsed(name, module.parse(ex.banner, ex.banner_type
                                                               or protocols.info(name).banner_types[0]))
                    if ident.product:
                        out.setdefault(ident.product, set()).add(_profile(version))
    return {p: frozenset(v) for p, v in out.items()}


@functools.cache
def _vocabularies() -> dict[str, tuple[frozenset[str], tuple[re.Pattern, ...]]]:
    """{field: (names, template patterns)} from every rule file and table."""
    from scanners import protocols
    from scanners.protocols.http import OS_COMMENTS
    from scanners.protocols.os_releases import table
    from scanners.protocols.rules import DEVICE_TYPES, OS_FAMILIES, load_rules
    names: dict[str, set[str]] = {f: set() for f in (*NAME_FIELDS, "version", "cpe")}
    templates: dict[str, set[str]] = {f: set() for f in NAME_FIELDS}
    names["os_family"] |= OS_FAMILIES
    names["device_type"] |= DEVICE_TYPES
    names["os_release"] |= table().vocabulary()
    for _, family, release in OS_COMMENTS:
        names["os_family"].add(family)
        if release:
            names["os_release"].add(release)
    for proto in protocols.names():
        for rule in load_rules(proto).rules:
            for field, value in rule.fields.items():
                if "{" not in value:
                    names[field].add(value)
                elif field in NAME_FIELDS and not re.fullmatch(r"\{\w+\}", value):
                    templates[field].add(value)
            for field, listed in rule.vocabulary.items():
                names[field] |= set(listed)
            if rule.cpe:
                names["cpe"].add(rule.cpe)
    out = {}
    for field, known in names.items():
        pats = tuple(_template_pattern(t) for t in sorted(templates.get(field, ())))
        out[field] = (frozenset(known), pats)
    return out


def _template_pattern(template: str) -> re.Pattern:
    """'AIX {aix}' -> a pattern whose groups must be version-shaped."""
    parts = re.split(r"\{\w+\}", template)
    return re.compile("(.+?)".join(re.escape(p) for p in parts))


def vocabulary(field: str) -> frozenset[str]:
    """Every literal name the rules and tables may publish in ``field``."""
    return _vocabularies()[field][0]


def _name(field: str, value: str, listed: Collection[str] | None) -> bool:
    if len(value) > MAX_NAME:
        return False
    known, patterns = _vocabularies()[field]
    if value in (known if listed is None else listed):
        return True
    for p in patterns:
        m = p.fullmatch(value)
        if m and all(version_shaped(g) for g in m.groups()):
            return True
    return False


def _cpe(value: str, product: str | None) -> bool:
    m = _CPE.fullmatch(value)
    if not m or m.group(1) not in _vocabularies()["cpe"][0]:
        return False
    version = m.group(2)
    # CPE writes versions in lower case; the shape is case-blind.
    version = re.sub(r"\\(.)", r"\1", version)
    return version in ("*", "-") or version_shaped(version, product) or version_shaped(version.upper(), product)


def _free(value: str, free: bool) -> str:
    out = redact(value, free=free)
    if len(out) > MAX_TEXT or find_identifiers(out):
        return REDACTED
    return out


def public(field: str, value: str | None, vocabulary: Collection[str] | None = None,
           product: str | None = None) -> str | None:
    """The public form of ``value`` in ``field`` (see the module doc); None
    and "" stay as they are (no value is no leak). ``product`` is the
    identified product, for a version or cpe (see ``version_shaped``)."""
    if field not in FIELDS:
        raise GateError(f"gate: unknown field {field!r}; known: {', '.join(FIELDS)}")
    if not value or value == REDACTED:
        return value
    if vocabulary is None:
        return _public_cached(field, value, product)
    return _public(field, value, vocabulary, product)


@functools.lru_cache(maxsize=1 << 16)
def _public_cached(field: str, value: str, product: str | None) -> str:
    # Buckets of one week repeat the same values: each is gated once per worker.
    return _public(field, value, None, product)


def _public(field: str, value: str, vocabulary: Collection[str] | None, product: str | None) -> str:
    if field in ("banner", "title"):
        return _free(value, free=field == "title")
    if field == "as_org":
        out = escape_unsafe(value)
        return REDACTED if find_identifiers(out) or len(out) > MAX_NAME * 2 else out
    if field == "country":
        return value if _COUNTRY.fullmatch(value) else REDACTED
    if field == "version":
        if (vocabulary is not None and value in vocabulary) or value in _vocabularies()["version"][0]:
            return value
        return value if version_shaped(value, product) else REDACTED
    if field == "cpe":
        return value if _cpe(value, product) else REDACTED
    return value if _name(field, value, vocabulary) else REDACTED


# -- Arrow columns: once per distinct value -----------------------------------

def _codes(arr):
    """(dictionary, per row its entry's index, -1 where null) of an Arrow column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from scanners.codes import row_indices
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    return enc.dictionary, row_indices(enc.indices)


def gate_column(values, field: str, product=None):
    """``public(field, v)`` over an Arrow string column, once per distinct
    value (or distinct (product, value) pair when ``product`` is given).

    Returns a ``dictionary<int32, string>`` array, whatever the input's
    type (string, large_string, a dictionary), whose dictionary holds each public value once
    (values the gate folds together, such as two ``<redacted>``, share one
    entry). No per-row string is built: the distinct values are found by a
    hash pass, the pairs by integer keys, and the rows keep integer indices
    -- what the aggregates count by anyway (pipelines/aggregate.py)."""
    import numpy as np
    import pyarrow as pa
    from scanners.codes import factorize
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if len(arr) == 0 or arr.null_count == len(arr):
        # The same type as every other result, whatever the input's: a
        # caller concatenates the dictionaries of several gated columns.
        return pa.DictionaryArray.from_arrays(pa.nulls(len(arr), pa.int32()), pa.array([], pa.string()))
    entries, idx = _codes(arr)
    entries = entries.to_pylist()
    if product is None:
        keys, gated = idx, [public(field, v) for v in entries]
    else:
        prod = product.combine_chunks() if isinstance(product, pa.ChunkedArray) else product
        prod_entries, prod_idx = _codes(prod)
        prod_entries = prod_entries.to_pylist()
        has = idx >= 0
        # (product, value) as one integer; product -1 (none) becomes 0
        pair, inverse = factorize((prod_idx[has] + 1) * len(entries) + idx[has],
                                  (len(prod_entries) + 1) * len(entries))
        gated = [public(field, entries[v], product=(prod_entries[p - 1] if p else None) or None)
                 for p, v in zip((pair // len(entries)).tolist(), (pair % len(entries)).tolist())]
        keys = np.full(len(idx), -1, np.int64)
        keys[has] = inverse
    public_values, public_idx = _codes(pa.array(gated, pa.string()))
    remap = np.append(public_idx, -1)           # the last slot: a null row stays null
    rows = remap[keys]
    return pa.DictionaryArray.from_arrays(pa.array(rows.astype(np.int32), mask=rows < 0), public_values)


# Clean-table columns and the gate field each is published under.
COLUMN_FIELDS = {"banner_public": "banner", "vendor": "vendor", "product": "product", "version": "version",
                 "os_family": "os_family", "os_release": "os_release", "device_type": "device_type",
                 "cpe": "cpe", "country": "country", "as_org": "as_org"}


def gate_table(table):
    """Every public column of a clean table (``COLUMN_FIELDS``) through the
    gate; version and cpe with the row's product as context."""
    for column, field in COLUMN_FIELDS.items():
        if column not in table.column_names:
            continue
        context = table.column("product") if field in ("version", "cpe") and "product" in table.column_names \
            else None
        i = table.schema.get_field_index(column)
        gated = gate_column(table.column(column), field, context)
        table = table.set_column(i, table.schema.field(i).with_type(gated.type), gated)
    return table
