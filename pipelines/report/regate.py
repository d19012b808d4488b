"""Stored aggregates through the gate again before they are published.

A week's aggregates.parquet may have been written before the gate existed,
or by an older writer with a weaker one: its values are not trusted. Each
stored value is gated under the field its dimension is built from
(scanners/protocols/gate.py); values that become equal are summed (a host
has one value per dimension and port, so the sum counts no host twice).
"""
from __future__ import annotations

import pyarrow as pa

from pipelines import aggregate as agg
from scanners.protocols.gate import REDACTED, public

# Dimensions whose values come from one closed vocabulary of the writer:
# anything else in them is not the writer's, and is not published.
_FIXED = {"total": {"open"}, "identification": set(agg.IDENTIFICATION_VALUES), "version_age": set(agg.AGE_VOCAB),
          "eol": set(agg.EOL_VOCAB), "many_ports": {"flagged"}}
_SINGLE = {"banner": "banner", "cpe": "cpe", "product": "product", "device_type": "device_type",
           "country": "country"}


def _os(value: str) -> str:
    for field in ("os_release", "os_family"):
        if public(field, value) == value:
            return value
    return REDACTED


def _version(value: str) -> str:
    # "product version": the product may hold spaces, so try every split
    parts = value.split(" ")
    for i in range(len(parts) - 1, 0, -1):
        product, version = " ".join(parts[:i]), " ".join(parts[i:])
        if public("product", product) == product:
            return f"{product} {public('version', version, product=product)}"
    return REDACTED


def _asn(value: str) -> str:
    number, _, org = value.partition(" ")
    if not (number.startswith("AS") and number[2:].isdigit()):
        return REDACTED
    return f"{number} {public('as_org', org)}" if org else number


def gate_value(dimension: str, value: str | None) -> str | None:
    if value is None or value == "" or value == agg.OTHER:   # the fold of rare values (agg.suppress)
        return value
    if dimension in _FIXED:
        return value if value in _FIXED[dimension] else REDACTED
    if dimension in _SINGLE:
        return public(_SINGLE[dimension], value)
    if dimension == "os":
        return _os(value)
    if dimension == "version":
        return _version(value)
    if dimension == "asn":
        return _asn(value)
    return REDACTED          # a dimension this code does not know: publish no value of it


def gate_stored(table: pa.Table) -> pa.Table:
    """``table`` (AGG_SCHEMA) with every value gated; rows summed where
    gating made two keys equal."""
    if table.num_rows == 0:
        return table
    cache: dict = {}
    dims, values = table.column("dimension").to_pylist(), table.column("value").to_pylist()
    gated = []
    for d, v in zip(dims, values):
        key = (d, v)
        if key not in cache:
            cache[key] = gate_value(d, v)
        gated.append(cache[key])
    if gated == values:
        return table
    i = table.schema.get_field_index("value")
    out = table.set_column(i, table.schema.field(i), pa.array(gated, table.schema.field(i).type))
    return agg.combine([out])
