"""Parquet an analyst reads in one line (issue 15, item 7): two weeks through
the real pipeline, then pandas, pyarrow's hive dataset and DuckDB read every
week from ``OUT/clean`` (and one week from ``OUT/week=<W>/clean``) with the
schema's own types, no duplicate column, the real port of every row filed
under ``port-other`` and a sortable binary address."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipelines.config import DEFAULT_PARTITION_PORTS
from pipelines.layout import clean_files, link_week
from pipelines.schema import CLEAN_SCHEMA
from scanners.synth import writers as w
from tests.pipeline.conftest import run_week

WEEKS = ("2026-W47", "2026-W48")
# Public addresses (special-purpose space is excluded) of both families; ports
# of the plan (own folders) and off-plan ones (port-other).
HOSTS = ["47.0.0.9", "47.0.0.10", "47.1.2.3", "185.60.1.1", "2a00:1450:4001::5", "2606:4700::1111"]
PORTS = [22, 80, 2222, 8081]


def _week_raw(raw, week: str, n_hosts: int) -> None:
    monday = dt.datetime.combine(dt.date.fromisocalendar(int(week[:4]), int(week[6:]), 1),
                                 dt.time(12), dt.timezone.utc)
    t0 = int(monday.timestamp())
    lines = []
    for i, ip in enumerate(HOSTS[:n_hosts]):
        for j, port in enumerate(PORTS):
            lines.append(w.masscan_ndjson_line(w.MasscanRecord(ip=ip, port=port, proto="tcp", timestamp=t0 + i + j,
                                                               status="open", ttl=60)))
        lines.append(w.masscan_ndjson_line(w.MasscanRecord(ip=ip, port=22, proto="tcp", timestamp=t0 + i + 9,
                                                           service="ssh", banner=b"SSH-2.0-OpenSSH_9.2p1")))
    d = raw / week
    d.mkdir(parents=True)
    (d / "masscan-tcp.ndjson").write_bytes(b"".join(lines))


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    base = tmp_path_factory.mktemp("readers")
    for week, n in zip(WEEKS, (len(HOSTS), len(HOSTS) - 2)):
        _week_raw(base / "raw", week, n)
        run_week(base / "raw", base / "out", week=week)
    return base / "out"


def _expected_rows() -> int:
    return len(PORTS) * (len(HOSTS) + len(HOSTS) - 2)


def _ip16(text: str) -> bytes:
    a = ipaddress.ip_address(text)
    return (b"\x00" * 10 + b"\xff\xff" + a.packed) if a.version == 4 else a.packed


def test_pandas_reads_every_week_with_the_schemas_types(out):
    df = pd.read_parquet(out / "clean")
    assert list(df.columns) == CLEAN_SCHEMA.names          # no partition column added, none twice
    assert len(df) == _expected_rows() and set(df["week"]) == set(WEEKS)
    assert str(df["port"].dtype) == "uint16" and str(df["first_seen"].dtype) == "datetime64[us, UTC]"
    assert set(df["port"]) == set(PORTS)                    # 2222 and 8081 live under port-other
    assert all(b == _ip16(ip) for ip, b in zip(df["ip"], df["ip_bytes"]))
    one = pd.read_parquet(out / f"week={WEEKS[1]}" / "clean")
    assert list(one.columns) == CLEAN_SCHEMA.names and set(one["week"]) == {WEEKS[1]}


def test_pyarrow_hive_dataset_reads_every_week(out):
    t = ds.dataset(out / "clean", partitioning="hive").to_table()
    assert [(f.name, f.type) for f in t.schema] == [(f.name, f.type) for f in CLEAN_SCHEMA]
    assert t.num_rows == _expected_rows()
    one = ds.dataset(out / f"week={WEEKS[0]}" / "clean", partitioning="hive").to_table()
    assert one.schema.names == CLEAN_SCHEMA.names and one.num_rows == len(PORTS) * len(HOSTS)


@pytest.mark.parametrize("pattern", ["clean/*/*/*.parquet", "week=*/clean/*/*.parquet"])
def test_duckdb_hive_partitioning_reads_every_week(out, pattern):
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{out}/{pattern}', hive_partitioning=true)")
    assert rel.columns == CLEAN_SCHEMA.names
    types = dict(zip(rel.columns, map(str, rel.types)))
    assert (types["port"], types["week"], types["ip_bytes"]) == ("USMALLINT", "VARCHAR", "BLOB")
    rows = duckdb.sql(f"SELECT week, port, count(*) FROM read_parquet('{out}/{pattern}', hive_partitioning=true) "
                      "GROUP BY ALL ORDER BY ALL").fetchall()
    assert sum(n for *_, n in rows) == _expected_rows()
    assert {p for _, p, _ in rows} == set(PORTS)


def test_sorting_by_ip_bytes_is_numeric_order(out):
    got = duckdb.sql(f"SELECT DISTINCT ip, ip_bytes FROM read_parquet('{out}/clean/*/*/*.parquet') "
                     "ORDER BY ip_bytes").fetchall()
    assert [ip for ip, _ in got] == sorted(HOSTS, key=lambda a: _ip16(a))
    assert [ip for ip, _ in got][:2] == ["47.0.0.9", "47.0.0.10"]   # text order would swap them


def test_port_folders_are_no_hive_names_and_keep_their_ports(out):
    files = clean_files(str(out))
    assert files and not any("=" in os.path.relpath(f, out).split(os.sep, 1)[1] for f in files)
    for f in files:
        folder = os.path.basename(os.path.dirname(f))
        ports = set(ds.dataset(f).to_table(columns=["port"]).column("port").to_pylist())
        if folder == "port-other":
            assert ports and not ports & set(DEFAULT_PARTITION_PORTS)
        else:
            assert ports == {int(folder.removeprefix("port-"))}


def test_view_links_are_relative_and_repaired(out, tmp_path):
    assert os.readlink(out / "clean" / WEEKS[0]) == os.path.join("..", f"week={WEEKS[0]}", "clean")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)                         # follows the links: real folders in copy/clean/
    assert not os.path.islink(copy / "clean" / WEEKS[0])
    os.symlink("../week=2001-W01/clean", copy / "clean" / "2001-W01")   # a week that is gone
    link_week(str(copy), WEEKS[0])
    assert os.path.islink(copy / "clean" / WEEKS[0]) and not os.path.lexists(copy / "clean" / "2001-W01")
    assert pa.Table.equals(ds.dataset(copy / "clean" / WEEKS[0]).to_table(),
                           ds.dataset(out / "clean" / WEEKS[0]).to_table())


def test_clean_files_use_per_column_encodings(out):
    """Dictionaries where values repeat, none for the address; min/max only
    for the columns one filters on (pipelines/layout.py CLEAN_PARQUET_OPTS)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(clean_files(str(out), WEEKS[0])[0]).metadata
    rg = meta.row_group(0)
    cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    assert "RLE_DICTIONARY" in {str(e) for e in cols["country"].encodings} | {str(e) for e in cols["tool"].encodings}
    assert not any("DICTIONARY" in str(e) for e in cols["ip"].encodings), cols["ip"].encodings
    assert cols["port"].is_stats_set and cols["port"].statistics.has_min_max
    assert cols["ip_bytes"].is_stats_set
    assert not cols["banner_public"].is_stats_set
    # zstd where it pays; columns of a few values per file and empty ones stored plain
    assert cols["ip"].compression == cols["banners.key_value.value"].compression == "ZSTD"
    assert cols["week"].compression == cols["port"].compression == "UNCOMPRESSED"
    table = pq.read_table(clean_files(str(out), WEEKS[0])[0])
    for name, col in zip(table.column_names, table.columns):
        if col.null_count == len(col):
            assert all(c.compression == "UNCOMPRESSED" for p, c in cols.items() if p.split(".")[0] == name), name
