"""No public dimension without the gate: walk pipelines/aggregate.py's
dimension list and prove each one's values come out of gate.public, both
for clean rows written by anything (hostile values straight in the
columns) and for rows that went the real identify path."""
from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines import aggregate as agg
from pipelines.schema import CLEAN_SCHEMA
from scanners.protocols.gate import REDACTED, public
from scanners.protocols.identify import identify_table
from scanners.protocols.leakscan import find_identifiers

WEEK = "2026-W48"
# Dimensions whose values are a closed vocabulary the code writes itself.
FIXED = {"total": {"open"}, "many_ports": {"flagged"}, "identification": set(agg.IDENTIFICATION_VALUES),
         "version_age": set(agg.AGE_VOCAB), "eol": set(agg.EOL_VOCAB)}
# Dimensions built from data, and the gate fields their value is made of.
GATED = {"banner": ("banner",), "product": ("product",), "version": ("product", "version"),
         "os": ("os_release", "os_family"), "device_type": ("device_type",), "country": ("country",),
         "asn": ("as_org",), "cpe": ("cpe",)}
HOSTILE = {
    "banner_public": "SSH-2.0-OpenSSH ip10.20.16.40 corp-web01.corp.example \x1b[2J",
    "vendor": "CN=dc01,OU=Servers,DC=corp", "product": "app.corp.example", "version": "10.20.16.40",
    "os_family": "bastion-01", "os_release": "Ubuntu 10.20.16.40", "device_type": "dc01",
    "cpe": "cpe:2.3:a:corp:dc01:10.20.16.40:*:*:*:*:*:*:*", "country": "10.20", "as_org": "Org ip10.20.16.40",
}


def test_every_dimension_is_classified():
    """A new dimension must be listed here (and so be shown gated) to pass."""
    assert set(agg.DIMENSIONS) == set(FIXED) | set(GATED)


def _rows(values: dict, n: int = 3) -> pa.Table:
    rows = []
    for i in range(n):
        base = {name: None for name in CLEAN_SCHEMA.names}
        base.update(week=WEEK, ip=f"198.18.0.{i}", ip_version=4, port=22, transport="tcp", status="open",
                    records=1, many_ports=False, host_open_ports=1, asn=64500, **values)
        rows.append(base)
    return pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)


def _check(out: pa.Table) -> dict[str, set[str]]:
    by_dim: dict[str, set[str]] = {}
    for r in out.to_pylist():
        by_dim.setdefault(r["dimension"], set()).add(r["value"])
    for dim, values in by_dim.items():
        if dim in FIXED:
            assert values <= FIXED[dim], dim
            continue
        for v in values:
            assert not find_identifiers(v), (dim, v)
            for bad in ("10.20", "corp", "dc01", "bastion", "\x1b"):
                assert bad not in v, (dim, v)
            if dim in ("product", "device_type", "cpe", "country"):
                assert public(GATED[dim][0], v) == v, (dim, v)      # a gate output is a fixed point
    return by_dim


def test_hostile_clean_columns_are_gated_in_every_dimension():
    out = agg.partial_aggregates(_rows(HOSTILE), WEEK)
    by_dim = _check(out)
    for dim in GATED:
        assert dim in by_dim, f"hostile rows produced no {dim} value: the walk would miss it"
    assert by_dim["product"] == {REDACTED} and by_dim["version"] == {f"{REDACTED} {REDACTED}"}
    assert agg.redacted_summary(out)["product"] == 3


def test_real_identify_path_then_aggregate():
    banners = ["SSH-2.0-OpenSSH_bastion.corp.example", "SSH-2.0-Cisco-10.66.23.1",
               "SSH-2.0-OpenSSH_7.4p1 ip10.20.16.40", "SSH-2.0-dropbear_corp-web01"]
    rows = []
    for b in banners:
        for i in range(3):
            rows.append({"port": 22, "transport": "tcp", "banners": [("ssh", b)]})
    t = pa.Table.from_pylist(rows, schema=pa.schema([("port", pa.int32()), ("transport", pa.string()),
                                                      ("banners", pa.map_(pa.string(), pa.string()))]))
    ident = identify_table(t.column("port"), t.column("transport"), t.column("banners"))
    values = {name: ident.column(name).to_pylist() for name in ident.column_names if name != "protocol"}
    clean = _rows({}, len(rows))
    for name, col in values.items():
        clean = clean.set_column(clean.schema.get_field_index(name), CLEAN_SCHEMA.field(name),
                                 pa.array(col, pa.string()))
    _check(agg.partial_aggregates(clean, WEEK))


@pytest.mark.parametrize("column,field", [("banner_public", "banner"), ("product", "product"),
                                          ("version", "version"), ("cpe", "cpe"), ("as_org", "as_org")])
def test_the_gate_keeps_what_is_fine(column, field):
    fine = {"banner_public": "SSH-2.0-OpenSSH_9.2p1", "product": "OpenSSH", "version": "9.2p1",
            "cpe": "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*", "as_org": "Amazon.com, Inc."}
    out = agg.partial_aggregates(_rows({"product": "OpenSSH", column: fine[column]}), WEEK)
    values = {r["value"] for r in out.to_pylist()}
    assert any(fine[column] in v for v in values)


def test_dictionary_and_large_string_columns_are_gated_too():
    t = _rows(HOSTILE)
    for name in ("product", "banner_public"):
        i = t.schema.get_field_index(name)
        col = t.column(name).combine_chunks()
        t = t.set_column(i, pa.field(name, pa.dictionary(pa.int32(), pa.string())),
                         col.dictionary_encode()) if name == "product" else \
            t.set_column(i, pa.field(name, pa.large_string()), col.cast(pa.large_string()))
    from scanners.protocols.gate import gate_table
    gated = gate_table(t)
    assert set(gated.column("product").to_pylist()) == {REDACTED}
    assert not any(find_identifiers(v) for v in gated.column("banner_public").to_pylist())


def test_the_gate_gives_one_type_whatever_the_column_holds():
    """Every gated column comes back as dictionary<int32, string>: an all-null
    large_string os_release beside a filled one once broke the os dimension
    (two dictionaries of different types concatenated)."""
    from scanners.protocols.gate import gate_column
    want = pa.dictionary(pa.int32(), pa.string())
    for col in (pa.array([], pa.string()), pa.nulls(3, pa.large_string()), pa.array(["4.3", None], pa.large_string()),
                pa.chunked_array([pa.array(["a"]), pa.array([None], pa.string())]),
                pa.DictionaryArray.from_arrays(pa.array([0, None, 1], pa.uint32()), pa.array(["4.3", "10.20.16.40"]))):
        out = gate_column(col, "version")
        assert out.type == want, col.type
    # unsigned indices with nulls (a Polars categorical): the same values as the plain strings
    cat = pa.DictionaryArray.from_arrays(pa.array([0, None, 1, 0], pa.uint32()), pa.array(["4.3", "10.20.16.40"]))
    assert gate_column(cat, "version").to_pylist() == ["4.3", None, REDACTED, "4.3"]
    t = _rows({"product": "OpenSSH", "version": "4.3", "os_family": "Linux"})
    for name in ("os_family", "os_release"):
        i = t.schema.get_field_index(name)
        t = t.set_column(i, pa.field(name, pa.large_string()), t.column(name).cast(pa.large_string()))
    out = agg.partial_aggregates(t, WEEK)
    os_values = {r["value"] for r in out.to_pylist() if r["dimension"] == "os"}
    assert os_values == {"Linux"}
