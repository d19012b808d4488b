"""Vectorised entry point: clean-row columns in, protocol and product columns out.

``identify_table(port, transport, banners)`` takes the ``port``,
``transport`` and ``banners`` (``map<string, string>``: banner type -> text)
columns of ``CLEAN_SCHEMA`` rows and returns one row per input row with
``IDENTIFY_SCHEMA``: ``protocol``, ``banner_public``, ``vendor``,
``product``, ``version``, ``os_family``, ``os_release``, ``device_type``,
``cpe`` (CPE 2.3 formatted string from the rule's ``cpe`` and the version).

How a row is read:

1. Its **primary banner** is the first of its banner types in
   ``PRIMARY_ORDER`` (unknown types after, by name; empty banners last) --
   picked with Arrow/numpy over the flattened map, not per row.
2. The protocol is the one whose module reads that banner type; a row
   without a banner gets its port's registered protocol (or null); a banner
   type no module reads (``vnc``, ``telnet``) gives null.
3. The protocol module parses the banner, its rules identify the subject
   (at each offset of ``parsed.starts`` when the parser gives them, see
   ``RuleSet.first_match``), the module's optional ``refine(parsed, identity)``
   adds what the parse knows beside the rule (the HTTP OS comments), and the
   public form comes from the module (``redact.py`` for unknown types, in
   its free-text mode). The public form and every identity field then pass
   the gate (``gate.py``): a value that fails its field's shape is
   ``<redacted>``.

Scan data repeats itself (millions of ``nginx``), so step 3 runs once per
**distinct** ``(port, transport, primary type, primary text)``: the four
columns are dictionary-encoded, combined into one group id, identified per
group, and the results taken back over the rows.
"""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scanners import protocols
from scanners.protocols.gate import REDACTED, public
from scanners.protocols.redact import redact
from scanners.protocols.rules import FIELDS, NO_IDENTITY, Identity, load_rules

# Identity fields in output order: the rule fields, then the derived cpe.
OUT_FIELDS = (*FIELDS, "cpe")
IDENTIFY_SCHEMA = pa.schema(
    [pa.field("protocol", pa.string()), pa.field("banner_public", pa.string())]
    + [pa.field(f, pa.string()) for f in OUT_FIELDS])


def identify_parsed(name: str, parsed) -> Identity:
    """The identity of one parsed banner of protocol ``name``: its rules at
    the parser's start offsets, then the module's ``refine`` hook."""
    if not parsed.subject:
        return NO_IDENTITY
    ident = load_rules(name).identify(parsed.subject, getattr(parsed, "starts", (0,)))
    refine = getattr(protocols.module(name), "refine", None)
    return refine(parsed, ident) if refine else ident


def describe(port: int | None, transport: str | None, banner_type: str | None,
             text: str | None) -> tuple[str | None, ...]:
    """One (protocol, banner_public, *OUT_FIELDS) tuple; the per-group work."""
    if banner_type is None or text is None:
        guess = protocols.by_port(port, transport)
        return (guess.name if guess else None, None) + (None,) * len(OUT_FIELDS)
    reader = protocols.by_banner_type(banner_type)
    if reader is None:
        # A banner type no module reads (vnc, telnet, ...) says the port speaks
        # something else than its registered protocol: no protocol, generic public form.
        return (None, public("banner", redact(text, free=True))) + (None,) * len(OUT_FIELDS)
    name = reader.name
    parsed = protocols.module(name).parse(text, banner_type)
    ident = identify_parsed(name, parsed)
    # Every public value through the one gate: the banner's public form and
    # each identity field (templates are filled from the banner). A cpe whose
    # version the gate refused is refused with it.
    fields = {f: public(f, getattr(ident, f), product=ident.product) for f in OUT_FIELDS}
    if fields["version"] == REDACTED and fields["cpe"]:
        fields["cpe"] = REDACTED
    text_field = "title" if banner_type == "title" else "banner"      # a title is free text throughout
    return (name, public(text_field, parsed.public)) + tuple(fields[f] for f in OUT_FIELDS)


# Each bucket sees the week's popular banners again: the answer is remembered
# for the process, so a distinct banner is parsed, matched and gated once and
# not once per bucket (describe is pure: rules and vocabularies are loaded
# once). Bounded in entries and in text size, so hostile long banners cannot
# make the cache a memory sink.
_CACHE_TEXT = 4096


@functools.lru_cache(maxsize=1 << 14)
def _describe_cached(*key) -> tuple[str | None, ...]:
    return describe(*key)


def _describe_once(port, transport, banner_type, text) -> tuple[str | None, ...]:
    """``describe``, remembered when the text is short enough to keep."""
    if text is not None and len(text) > _CACHE_TEXT:
        return describe(port, transport, banner_type, text)
    return _describe_cached(port, transport, banner_type, text)


def _codes(arr: pa.Array) -> np.ndarray:
    """Dense int64 codes of an array's values, -1 for null."""
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return pc.fill_null(enc.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)


def _rank_types(keys: pa.Array) -> np.ndarray:
    """Priority of each banner type: PRIMARY_ORDER first, then others by name."""
    order = list(protocols.PRIMARY_ORDER)
    others = sorted(set(pc.unique(keys).to_pylist()) - set(order) - {None})
    rank = pc.index_in(keys, value_set=pa.array(order + others, pa.string()))
    return pc.fill_null(rank, len(order) + len(others)).to_numpy(zero_copy_only=False)


def primary_banners(banners: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(type, text) of each row's primary banner; nulls where a row has none."""
    n = len(banners)
    if pa.types.is_map(banners.type):
        # Compute kernels take lists, not maps: view it as list<struct<key, value>>.
        banners = banners.cast(pa.list_(pa.struct([banners.type.key_field, banners.type.item_field])))
    flat = pc.list_flatten(banners)
    if len(flat) == 0:
        return pa.nulls(n, pa.string()), pa.nulls(n, pa.string())
    parent = pc.list_parent_indices(banners).to_numpy(zero_copy_only=False)
    keys, items = flat.field(0), flat.field(1)
    # 0 = has text, 1 = empty text, 2 = null: a row's real banner beats its empty ones.
    emptiness = pc.fill_null(pc.equal(pc.utf8_length(items), 0).cast(pa.int8()), 2)
    # Sort entries by (row, emptiness, type rank); the first entry of each row wins.
    order = np.lexsort((_rank_types(keys), emptiness.to_numpy(zero_copy_only=False), parent))
    rows, first = np.unique(parent[order], return_index=True)
    pick = np.full(n, -1, dtype=np.int64)
    pick[rows] = order[first]
    indices = pa.array(pick, pa.int64(), mask=pick < 0)      # null index -> null value
    return keys.take(indices), items.take(indices)


def _group(*columns: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct key, group id of each row) over the columns.

    The columns' codes are combined into one int64 key (mixed radix), which
    one hash pass numbers in order of first appearance; only if the radix
    product would overflow are the codes so far renumbered densely first."""
    n = len(columns[0])
    key, span = np.zeros(n, dtype=np.int64), 1
    for col in columns:
        codes = _codes(col) + 1                  # 0 = null
        radix = int(codes.max(initial=0)) + 1
        if span * radix >= 1 << 62:
            span, key = _dense(key)
        key, span = key * radix + codes, span * radix
    span, gid = _dense(key)
    first_rows = np.full(span, n, dtype=np.int64)
    np.minimum.at(first_rows, gid, np.arange(n, dtype=np.int64))
    return first_rows, gid


def _dense(key: np.ndarray) -> tuple[int, np.ndarray]:
    """(number of distinct values, 0-based id of each value in order of first appearance)."""
    enc = pc.dictionary_encode(pa.array(key))
    return len(enc.dictionary), enc.indices.to_numpy().astype(np.int64)


def identify_table(port: pa.Array, transport: pa.Array, banners: pa.Array) -> pa.Table:
    """IDENTIFY_SCHEMA rows for the given clean-row columns (see module doc)."""
    port = port.combine_chunks() if isinstance(port, pa.ChunkedArray) else port
    transport = transport.combine_chunks() if isinstance(transport, pa.ChunkedArray) else transport
    banners = banners.combine_chunks() if isinstance(banners, pa.ChunkedArray) else banners
    if not len(port) == len(transport) == len(banners):
        raise ValueError("port, transport and banners must have the same length")
    ptype, ptext = primary_banners(banners)
    first_rows, gid = _group(port, transport, ptype, ptext)
    reps = pa.array(first_rows, pa.int64())
    keys = zip(port.take(reps).to_pylist(), transport.take(reps).to_pylist(),
               ptype.take(reps).to_pylist(), ptext.take(reps).to_pylist())
    results = [_describe_once(*k) for k in keys]
    take = pa.array(gid, pa.int64())
    columns = []
    for i, field in enumerate(IDENTIFY_SCHEMA):
        distinct = pa.array([r[i] for r in results], field.type)
        # Most fields are null for most groups (no banner, no product): then no take.
        columns.append(pa.nulls(len(gid), field.type) if distinct.null_count == len(distinct)
                       else distinct.take(take))
    return pa.Table.from_arrays(columns, schema=IDENTIFY_SCHEMA)
