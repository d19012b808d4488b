"""HostKeyStats: the week's SSH host-key statistics (counts only).

    (bucket, clean table) ─SshRows─▶ (None, ssh rows) ─GroupAll─▶ week_key_stats + churn ─▶
        <root>/aggregates/host_keys.json

Batch GCD needs every distinct RSA modulus of the week in one place, so the
SSH rows (a few columns, only observations that carry a key) are gathered
with GatherAll (a seeded single-key GroupByKey); ``pipelines/keys/batchgcd.py`` bounds the
memory of the GCD itself. Key churn compares with the previous ISO week's
published clean data, when there is one. A week without any host key (a
masscan-only week) writes no file: it has no key statistics.
"""
from __future__ import annotations

import datetime
import json

import pyarrow as pa
import pyarrow.compute as pc

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.aggregate import AGG_DIR
from pipelines.layout import clean_dataset, clean_files
from pipelines.transforms.common import GatherAll

KEYS_FILE = "host_keys.json"
INPUT_COLUMNS = ("ip", "port", "key_algorithm", "key_fingerprint_sha256", "rsa_modulus",
                 "rsa_exponent", "key_bits", "product", "asn", "responder_group")
GROUPED = ("by_product", "by_asn")


def previous_week(week: str) -> str:
    year, wk = int(week[:4]), int(week[6:])
    d = datetime.date.fromisocalendar(year, wk, 1) - datetime.timedelta(days=7)
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def ssh_key_rows(table: pa.Table) -> pa.Table:
    """The open observations that carry a host key, in the stats' input shape."""
    has = pc.and_(pc.equal(table.column("status"), "open"),
                  pc.is_valid(table.column("key_fingerprint_sha256")))
    t = table.filter(has).select(list(INPUT_COLUMNS))
    return t.set_column(1, "port", t.column("port").cast(pa.int32()))


def fold_small_groups(stats: dict, k: int) -> dict:
    """The k rule on host-key statistics, as on every other public cell
    (pipelines/keys/suppress.py ``apply_k``: small labels fold into "other",
    any cell still under k is published as fewer than k)."""
    from pipelines.keys.suppress import apply_k
    return apply_k(stats, k)


def key_stats_doc(rows: pa.Table, week: str, k: int, previous: pa.Table | None) -> dict:
    """The week's ``host_keys.json`` from its ``ssh_key_rows`` (and the
    previous week's keyed rows, for churn): counts only, k everywhere. Also
    used when an opt-out is applied to a published week (pipelines/optout_reapply.py)."""
    from pipelines.keys.stats import key_churn, week_key_stats
    from pipelines.keys.suppress import churn_k
    doc = {"week": week, "k": k, "stats": fold_small_groups(week_key_stats(rows), k),
           "churn": None, "previous_week": previous_week(week)}
    if previous is not None:
        doc["churn"] = churn_k(key_churn(rows, previous), k)
    return doc


class _SshRowsFn(beam.DoFn):
    def process(self, element):
        _bucket, table = element
        rows = ssh_key_rows(table)
        if rows.num_rows:
            yield rows


class _StatsFn(beam.DoFn):
    def __init__(self, root: str, week: str, out: str, k: int):
        self.root, self.week, self.out, self.k = root, week, out, k

    def process(self, element):
        tables = element
        if not tables:
            yield {"host_key_observations": 0}
            return
        t = pa.concat_tables(tables)
        doc = key_stats_doc(t, self.week, self.k, self._previous())
        with FileSystems.create(FileSystems.join(self.root, AGG_DIR, KEYS_FILE)) as h:
            h.write((json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
        yield {"host_key_observations": t.num_rows}

    def _previous(self) -> pa.Table | None:
        return previous_keys(self.out, self.week)


def previous_keys(out: str, week: str) -> pa.Table | None:
    """The previous ISO week's published observations that carry a host key
    (for churn), or None when that week is not published here."""
    if not clean_files(out, previous_week(week)):
        return None
    t = clean_dataset(out, previous_week(week)).to_table(
        columns=["ip", "port", "status", "key_fingerprint_sha256"])
    return t.filter(pc.is_valid(t.column("key_fingerprint_sha256")))


class HostKeyStats(beam.PTransform):
    """PCollection[(part name, clean table)] -> ``root/aggregates/host_keys.json``;
    emits one {"host_key_observations": n} element (it feeds the manifest, so
    every runner computes this branch)."""

    def __init__(self, root: str, week: str, out: str, k: int):
        super().__init__()
        self.root, self.week, self.out, self.k = root, week, out, k

    def expand(self, clean):
        return (clean
                | "SshRows" >> beam.ParDo(_SshRowsFn())
                | "Gather" >> GatherAll()
                | "Stats" >> beam.ParDo(_StatsFn(self.root, self.week, self.out, self.k)))
