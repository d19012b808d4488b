"""Where published data lives under OUT, and clean Parquet written and read
in one place: the Beam write stage (pipelines/transforms/write.py), every
reader (summary, report, host-key churn) and any later rewrite of a
published week use these functions, so the layout cannot drift between them.

Layout (docs/DATA.md)::

    OUT/week=<W>/                                   one week, published as a whole
    OUT/week=<W>/clean/port-<P>/part-<B>[-<pass>].parquet
    OUT/week=<W>/clean/port-other/part-<B>...       ports outside the partition ports
    OUT/clean/<W> -> ../week=<W>/clean              every week's clean data in one folder

Every file holds every ``CLEAN_SCHEMA`` column, ``week`` and ``port``
included, and nothing below ``week=<W>`` is named ``key=value``: a hive
reader would otherwise make ``port`` a second, string-typed column (and
``port=other`` would lose the real port). So ``pandas.read_parquet``,
``pyarrow.dataset(..., partitioning="hive")``, DuckDB's
``read_parquet(..., hive_partitioning=true)`` and Spark read
``OUT/clean`` (every week) or ``OUT/week=<W>/clean`` (one week) with the
columns' own types. The ``OUT/clean/<W>`` entries are relative symbolic links
to the week folders: a week is still published by swapping its one folder
(pipelines/publish.py), and the link always names the live version.
"""
from __future__ import annotations

import glob
import os
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipelines.schema import CLEAN_SCHEMA

CLEAN_DIR = "clean"
VIEW_DIR = "clean"          # OUT/clean/: one entry per published week
OTHER = "other"
# Sort key of the rows of port-other: after every real port (0..65535).
OTHER_KEY = 1 << 16
_WEEK_DIR = re.compile(r"week=\d{4}-W\d{2}\Z")
PARQUET_OPTS = dict(compression="zstd", use_dictionary=True, write_statistics=True)
# The clean files' encodings, chosen per column (measured on the 2M bench
# week's 256 files, docs/BENCHMARKS.md: 3.4 s / 64.8 MB with dictionaries and
# statistics everywhere, 2.2 s / 54.0 MB with these). A dictionary only where
# values repeat: not for the address, times, offsets, moduli and fingerprints,
# which are nearly unique, and where a dictionary page only adds work.
# Statistics (min/max per row group, what readers prune by) only for the
# columns one filters on; min/max of banners and free text would be written
# for nobody.
_UNIQUE = {"ip", "ip_bytes", "first_seen", "last_seen", "source_offset", "rsa_modulus", "key_fingerprint_sha256"}
_FILTERED = ("week", "ip_bytes", "ip_version", "port", "transport", "status", "first_seen", "last_seen",
             "tool", "country", "asn", "protocol", "vendor", "product", "port_source")


def _leaves(field: pa.Field) -> list[str]:
    """The Parquet column paths of one Arrow field (a map or list is stored as its leaves)."""
    if pa.types.is_map(field.type):
        return [f"{field.name}.key_value.key", f"{field.name}.key_value.value"]
    if pa.types.is_list(field.type):
        return [f"{field.name}.list.element"]
    return [field.name]


# Encodings for nearly unique columns (measured on the 2M bench week's 128
# files, zstd on top, column by column): times and offsets delta-packed
# (first_seen 0.055 -> 0.032 s and 7.8 -> 6.8 MB: a week's microseconds need
# far fewer than 64 bits), the address text prefix-shared (rows are sorted by
# address: ip 9.5 -> 7.2 MB in the same time). Parquet's standard delta
# encodings, read by pyarrow, pandas and DuckDB (tests/pipeline/
# test_parquet_readers.py) and Spark from 3.3 (docs/DATA.md). Not for
# ip_bytes: DELTA_BYTE_ARRAY on a fixed-size binary column (0.065 -> 0.054 s,
# 6.4 -> 5.4 MB) is refused by several readers (ClickHouse, Velox, older
# DuckDB), as BYTE_STREAM_SPLIT on it would be by more.
_ENCODINGS = {"first_seen": "DELTA_BINARY_PACKED", "last_seen": "DELTA_BINARY_PACKED",
              "source_offset": "DELTA_BINARY_PACKED", "ip": "DELTA_BYTE_ARRAY"}
CLEAN_PARQUET_OPTS = dict(
    compression="zstd",
    use_dictionary=[leaf for f in CLEAN_SCHEMA if f.name not in _UNIQUE for leaf in _leaves(f)],
    column_encoding=_ENCODINGS,
    write_statistics=list(_FILTERED))

# Columns with one value or a few per file by what they are: after the
# dictionary and RLE encodings their chunks are a few bytes to a few kB, zstd
# saves next to nothing there, and every compressed page costs a compressor
# set-up (~20 us; two pages a column, 39 columns a file: 1.4 ms of a small
# file's 2.2 ms). They, and a column with no value in the file, are stored
# uncompressed: the 2M bench week's 128 files 1.05 -> 0.93 s, 45.09 -> 45.28 MB
# (docs/BENCHMARKS.md). Any Parquet reader reads uncompressed chunks.
_FEW_VALUES = ("week", "ip_version", "port", "transport", "status", "reason", "tool", "tool_version",
               "protocol", "port_source", "many_ports", "key_algorithm", "key_bits", "rsa_exponent",
               "banner_fallback", "responder_group", "host_open_ports", "device_type", "os_family")
assert set(_FEW_VALUES) <= set(CLEAN_SCHEMA.names)


def clean_parquet_opts(table: pa.Table) -> dict:
    """``CLEAN_PARQUET_OPTS`` with each column's codec for the file of
    ``table``: none for ``_FEW_VALUES`` and for an all-null column, zstd else."""
    codecs = {}
    for f in table.schema:
        col = table.column(f.name)
        plain = f.name in _FEW_VALUES or col.null_count == len(col)
        codecs.update(dict.fromkeys(_leaves(f), "none" if plain else "zstd"))
    return {**CLEAN_PARQUET_OPTS, "compression": codecs}


def week_path(out: str, week: str) -> str:
    """The published folder of ``week``."""
    return os.path.join(out, f"week={week}")


def port_folder(port: int | str) -> str:
    """``port-22``, ``port-other``: plain names, never ``port=22`` (see above)."""
    return f"port-{port}"


def clean_path(root: str, port: int | str, part: str) -> str:
    """``part``: the bucket as four digits, plus ``-PP`` when a big bucket
    was merged in passes (pipelines/spill.py)."""
    from apache_beam.io.filesystems import FileSystems   # readers (the site) never load Beam
    return FileSystems.join(root, CLEAN_DIR, port_folder(port), f"part-{part}.parquet")


def write_parquet(table: pa.Table, path: str, opts: dict = PARQUET_OPTS) -> None:
    # FileSystems.create makes parent folders on local disk and works on
    # object stores; pyarrow writes to the returned file-like object.
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.create(path) as handle:
        pq.write_table(table, handle, **opts)


def clean_table(table: pa.Table) -> pa.Table:
    """The written shape: exactly ``CLEAN_SCHEMA``, in its order, so every
    file of every week reads the same way. ``ip_bytes`` is the pipeline's
    internal ``ip16`` (16 bytes, network order, IPv4 as ``::ffff:a.b.c.d``)
    where the table has no ``ip_bytes`` yet; other internal columns stay behind."""
    if "ip_bytes" not in table.column_names and "ip16" in table.column_names:
        table = table.append_column("ip_bytes", table.column("ip16"))
    return table.select(CLEAN_SCHEMA.names).cast(CLEAN_SCHEMA)


def _take(table: pa.Table, order: np.ndarray) -> pa.Table:
    """``table.take(order)``, gathered as one RecordBatch: Arrow does that
    faster than column by column of chunked arrays (zero-copy for the usual
    one-chunk bucket)."""
    if table.num_rows == 0:
        return table
    batches = table.combine_chunks().to_batches()
    if len(batches) > 1:   # a column past Arrow's 2 GiB per array stays chunked
        return table.take(order)
    return pa.Table.from_batches([batches[0].take(order)])


def file_keys(ports, partition_ports: tuple[int, ...]) -> np.ndarray:
    """Per row the clean file it belongs in, as an integer that sorts in file
    order: its port for a partition port, ``OTHER_KEY`` (after every port)
    for the rest. The merge orders its groups by it (pipelines/merge.py), so
    that ``write_clean`` finds them already grouped."""
    ports = np.asarray(ports).astype(np.int32)   # room for OTHER_KEY
    return np.where(np.isin(ports, np.asarray(sorted(partition_ports), dtype=np.int32)), ports, OTHER_KEY)


def write_clean(root: str, table: pa.Table, part: str, partition_ports: tuple[int, ...]) -> tuple[pa.Table, dict]:
    """Write one bucket's (or pass's) clean rows under ``root/clean/``: one
    file per partition port, one ``port-other`` file for every other port.
    Returns (the written table, {port label: rows}); the table is in file
    order (each file a slice of it)."""
    table = clean_table(table)
    key = file_keys(table.column("port").to_numpy(), partition_ports)
    if len(key) > 1 and (key[1:] < key[:-1]).any():
        # One stable sort by file: rows keep their input order inside a
        # file, and each file is a zero-copy slice of the one sorted copy
        # (rather than one full-table filter per port). A merged bucket is
        # in file order already (pipelines/merge.py): no copy at all.
        order = np.argsort(key, kind="stable")
        table, key = _take(table, order), key[order]
    counts = {}
    files, starts, sizes = np.unique(key, return_index=True, return_counts=True)
    for file, start, size in zip(files.tolist(), starts.tolist(), sizes.tolist()):
        port = OTHER if file == OTHER_KEY else file
        piece = table.slice(start, size)
        write_parquet(piece, clean_path(root, port, part), clean_parquet_opts(piece))
        counts[str(port)] = size
    return table, counts


def folder_clean_files(folder: str) -> list[str]:
    """The clean Parquet files of one week folder (published or staged), sorted.
    Weeks published before the ``port-<P>`` folders (``port=<P>``) are found too."""
    return sorted(glob.glob(os.path.join(glob.escape(folder), CLEAN_DIR, "*", "*.parquet")))


def clean_files(out: str, week: str | None = None) -> list[str]:
    """The clean Parquet files of one published week (or of all), sorted."""
    if week:
        return folder_clean_files(week_path(out, week))
    files = glob.glob(os.path.join(glob.escape(out), "week=*", CLEAN_DIR, "*", "*.parquet"))
    # Published week folders only, not a fallback swap's week=<W>.old-<id> (pipelines/publish.py).
    return sorted(f for f in files if _WEEK_DIR.match(os.path.basename(os.path.dirname(os.path.dirname(
        os.path.dirname(f))))))


def clean_dataset(out: str, week: str | None = None) -> ds.Dataset:
    """The clean Parquet of one week (or all weeks) as a pyarrow dataset with
    ``CLEAN_SCHEMA`` (a column an older week lacks reads as null)."""
    return ds.dataset(clean_files(out, week), format="parquet", schema=CLEAN_SCHEMA, partitioning=None)


def link_week(out: str, week: str) -> None:
    """Make ``OUT/clean/<week>`` name the week's clean folder (a relative
    link, so OUT can be moved or copied with its links) and drop links to
    weeks that are no longer there. Local output roots only: object stores
    have no links, and there the week folders are the way in."""
    view = os.path.join(out, VIEW_DIR)
    os.makedirs(view, exist_ok=True)
    target = os.path.join("..", f"week={week}", CLEAN_DIR)
    link = os.path.join(view, week)
    if not (os.path.islink(link) and os.readlink(link) == target):
        # A dot name: readers skip it, and a run killed here leaves nothing they see.
        tmp = os.path.join(view, f".{week}.tmp-{os.getpid()}")
        if os.path.lexists(tmp):
            os.remove(tmp)
        os.symlink(target, tmp)
        if os.path.isdir(link) and not os.path.islink(link):
            shutil.rmtree(link)   # a dereferenced copy (cp -L, copytree) of an old link
        os.replace(tmp, link)     # atomic: a reader sees the old or the new link
    for name in os.listdir(view):
        path = os.path.join(view, name)
        if os.path.islink(path) and (name.startswith(".") or not os.path.exists(path)):
            os.remove(path)       # a killed run's temporary link, or a week that is gone


# docs/DATA.md's column list is generated from the schema (tests/unit/test_data_doc.py
# keeps it in sync): ``python -m pipelines.layout`` rewrites it between these markers.
DOC_BEGIN = "<!-- clean columns: generated from pipelines/schema.py by `python -m pipelines.layout` -->"
DOC_END = "<!-- end of clean columns -->"


def columns_markdown(schema: pa.Schema = CLEAN_SCHEMA) -> str:
    """One Markdown table row per column: name, Arrow type, null or not, documentation."""
    from pipelines.schema import field_docs
    docs = field_docs(schema)
    rows = ["| column | type | nullable | meaning |", "|---|---|---|---|"]
    for f in schema:
        rows.append(f"| `{f.name}` | `{f.type}` | {'yes' if f.nullable else 'no'} | "
                    f"{docs[f.name].replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def doc_with_columns(text: str) -> str:
    """``text`` (docs/DATA.md) with its generated column list replaced by the current one."""
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    return f"{head}{DOC_BEGIN}\n{columns_markdown()}\n{DOC_END}{tail}"


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "DATA.md")
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:
        fh.write(doc_with_columns(text))
