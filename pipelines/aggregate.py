"""Weekly aggregates: how many hosts answered on each port, and what they said.

Pure Arrow, no Beam and no files: the Beam stage
(``pipelines/transforms/aggregate.py``) and the site renderer
(``pipelines/report/``) both call these functions.

Input: one dedup bucket's clean rows (``CLEAN_SCHEMA`` columns; the internal
``ip16`` column may be present and is ignored). Only ``status == "open"``
rows count. Output is long format, ``AGG_SCHEMA``: one row per
(week, port, transport, dimension, value), for example::

    week      port transport dimension value                 hosts_raw hosts_adjusted
    2013-W37    22 tcp       banner    SSH-2.0-OpenSSH_4.3        1368           1136

* ``hosts_raw`` counts every open (address, port) observation with the value.
* ``hosts_adjusted`` counts a suspected single-responder group once: rows
  outside any group, plus the number of *distinct* groups with the value.
  Groups are bucket-local (a group is one /24 or /48, and buckets are keyed by
  network), so partial aggregates of different buckets simply add up.

Only public text reaches an aggregate: the banner dimension is
``banner_public`` (redacted), never the raw ``banners`` map, and no address
column is read at all.
"""
from __future__ import annotations

import io
import json
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.schema import AGG_SCHEMA  # noqa: E402 (re-exported for the renderer)

DIMENSIONS = ("total", "banner", "product", "version", "os", "device_type", "country", "asn",
              "many_ports")
OTHER = "other"
DEFAULT_K = 10
# Fixed vocabularies: a count of "open" or "flagged" names nobody, so these
# dimensions are never folded (the port total must stay exact).
NOT_SUPPRESSED = ("total", "many_ports")
KEYS = ["week", "port", "transport", "dimension", "value"]
SORT = [("week", "ascending"), ("port", "ascending"), ("transport", "ascending"),
        ("dimension", "ascending"), ("hosts_raw", "descending"), ("value", "ascending")]
NEEDED = ("status", "port", "transport", "responder_group", "many_ports", "country", "asn",
          "as_org", "banner_public", "product", "version", "os_family", "os_release",
          "device_type")

# Where a week's aggregates live inside its folder (OUT/week=<W>/aggregates/).
AGG_DIR = "aggregates"
AGG_FILES = ("aggregates.parquet", "aggregates.csv", "aggregates.json")
PARQUET_OPTS = dict(compression="zstd", use_dictionary=True, write_statistics=True)


class AggregateError(ValueError):
    """The input cannot be aggregated (missing columns, bad k)."""


def empty() -> pa.Table:
    return AGG_SCHEMA.empty_table()


def _nonempty(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Null where the string is null or empty: an empty answer names no value."""
    return pc.if_else(pc.equal(pc.fill_null(arr, ""), ""), pa.scalar(None, pa.string()), arr)


def _dimension_values(t: pa.Table) -> list[tuple[str, pa.ChunkedArray]]:
    """(dimension, value per row; null = the row has no value for it)."""
    n = t.num_rows
    product, version = _nonempty(t.column("product")), _nonempty(t.column("version"))
    asn = t.column("asn").cast(pa.string())
    org = _nonempty(t.column("as_org"))
    asn_text = pc.binary_join_element_wise("AS", asn, "")
    asn_text = pc.if_else(pc.is_valid(org), pc.binary_join_element_wise(asn_text, org, " "), asn_text)
    flagged = pc.fill_null(t.column("many_ports"), False)
    return [
        ("total", pa.chunked_array([pa.array(["open"] * n, pa.string())])),
        ("banner", _nonempty(t.column("banner_public"))),
        ("product", product),
        # Null propagates: a version without its product is not a value.
        ("version", pc.binary_join_element_wise(product, version, " ")),
        ("os", pc.coalesce(_nonempty(t.column("os_release")), _nonempty(t.column("os_family")))),
        ("device_type", _nonempty(t.column("device_type"))),
        ("country", _nonempty(t.column("country"))),
        ("asn", asn_text),
        ("many_ports", pc.if_else(flagged, "flagged", pa.scalar(None, pa.string()))),
    ]


def partial_aggregates(table: pa.Table, week: str) -> pa.Table:
    """AGG_SCHEMA rows (sorted) for one bucket's clean rows."""
    missing = [c for c in NEEDED if c not in table.column_names]
    if missing:
        raise AggregateError(f"clean table lacks column(s): {', '.join(missing)}")
    t = table.filter(pc.fill_null(pc.equal(table.column("status"), "open"), False))
    if t.num_rows == 0:
        return empty()
    group = t.column("responder_group")
    parts = []
    for dim, values in _dimension_values(t):
        part = pa.table({
            "port": t.column("port").cast(pa.uint16()),
            "transport": t.column("transport"),
            "dimension": pa.array([dim] * t.num_rows, pa.string()),
            "value": values,
            "group": group,
        })
        parts.append(part.filter(pc.is_valid(part.column("value"))))
    long = pa.concat_tables(parts)
    long = long.append_column("ungrouped", pc.is_null(long.column("group")).cast(pa.int64()))
    g = long.group_by(["port", "transport", "dimension", "value"], use_threads=False).aggregate([
        ("ungrouped", "count", pc.CountOptions(mode="all")),
        ("ungrouped", "sum"),
        ("group", "count_distinct", pc.CountOptions(mode="only_valid")),
    ])
    adjusted = pc.add(g.column("ungrouped_sum"), g.column("group_count_distinct").cast(pa.int64()))
    out = pa.table({
        "week": pa.array([week] * g.num_rows, pa.string()),
        "port": g.column("port"),
        "transport": g.column("transport"),
        "dimension": g.column("dimension"),
        "value": g.column("value"),
        "hosts_raw": g.column("ungrouped_count").cast(pa.int64()),
        "hosts_adjusted": adjusted,
    })
    return sort(out.cast(AGG_SCHEMA))


def combine(partials: Iterable[pa.Table]) -> pa.Table:
    """Sum partial aggregates (of any buckets, any order) into one table."""
    tables = [p.select(AGG_SCHEMA.names).cast(AGG_SCHEMA) for p in partials if p is not None]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return empty()
    return _sum(pa.concat_tables(tables))


def _sum(t: pa.Table) -> pa.Table:
    g = t.group_by(KEYS, use_threads=False).aggregate([("hosts_raw", "sum"), ("hosts_adjusted", "sum")])
    out = pa.table({**{k: g.column(k) for k in KEYS},
                    "hosts_raw": g.column("hosts_raw_sum"),
                    "hosts_adjusted": g.column("hosts_adjusted_sum")})
    return sort(out.cast(AGG_SCHEMA))


def suppress(table: pa.Table, k: int = DEFAULT_K) -> pa.Table:
    """Fold every value seen on fewer than ``k`` hosts (raw) into ``"other"``,
    per (week, port, transport, dimension). Idempotent for the same k, and a
    larger k folds further; a real value spelled "other" joins the fold.
    ``total`` and ``many_ports`` are never folded (see NOT_SUPPRESSED)."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise AggregateError(f"k must be an integer >= 1, not {k!r}")
    if table.num_rows == 0:
        return empty()
    t = table.select(AGG_SCHEMA.names).cast(AGG_SCHEMA)
    foldable = pc.invert(pc.is_in(t.column("dimension"), pa.array(NOT_SUPPRESSED)))
    rare = pc.or_(pc.less(t.column("hosts_raw"), k), pc.equal(t.column("value"), OTHER))
    fold = pc.and_(foldable, rare)
    t = t.set_column(t.schema.get_field_index("value"), AGG_SCHEMA.field("value"),
                     pc.if_else(fold, OTHER, t.column("value")))
    return _sum(t)


def sort(table: pa.Table) -> pa.Table:
    """The one order of every aggregate output: keys ascending, within a
    dimension the biggest first (ties by value), so files diff cleanly."""
    return table.sort_by(SORT).combine_chunks() if table.num_rows else empty()


# -- serialisation: the same bytes for the same table, wherever written ------

def serialise(table: pa.Table) -> dict[str, bytes]:
    """{file name: bytes} for the three published forms (AGG_FILES)."""
    return {"aggregates.parquet": to_parquet_bytes(table), "aggregates.csv": to_csv_bytes(table),
            "aggregates.json": to_json_bytes(table)}


def to_parquet_bytes(table: pa.Table) -> bytes:
    buf = pa.BufferOutputStream()
    pq.write_table(table.cast(AGG_SCHEMA), buf, **PARQUET_OPTS)
    return buf.getvalue().to_pybytes()


# A CSV cell starting with one of these is a formula to a spreadsheet; banners
# are attacker-written, so such values get a leading ' in CSV (only in CSV:
# JSON and Parquet carry the value as it is).
FORMULA_START = r"^[=+\-@\t\r]"


def defuse_formulas(values: pa.Array) -> pa.Array:
    risky = pc.fill_null(pc.match_substring_regex(values, FORMULA_START), False)
    return pc.if_else(risky, pc.binary_join_element_wise("'", values, ""), values)


def to_csv_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    table = table.cast(AGG_SCHEMA)
    table = table.set_column(table.schema.get_field_index("value"), AGG_SCHEMA.field("value"),
                             defuse_formulas(table.column("value")))
    # Plain header names: the schema metadata is documentation, not data.
    pacsv.write_csv(table.replace_schema_metadata(None), buf,
                    pacsv.WriteOptions(include_header=True))
    return buf.getvalue()


def to_json_bytes(table: pa.Table) -> bytes:
    rows = table.cast(AGG_SCHEMA).to_pylist()
    return (json.dumps(rows, sort_keys=True, indent=1, ensure_ascii=True) + "\n").encode()
