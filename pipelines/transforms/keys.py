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
    (pipelines/keys/stats.py ``apply_k``: small labels fold into "other",
    any cell still under k is published as fewer than k)."""
    from pipelines.keys.stats import apply_k
    return apply_k(stats, k)


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
        from pipelines.keys.stats import churn_k, key_churn, week_key_stats
        tables = element
        if not tables:
            yield {"host_key_observations": 0}
            return
        t = pa.concat_tables(tables)
        doc = {"week": self.week, "k": self.k,
               "stats": fold_small_groups(week_key_stats(t), self.k),
               "churn": None, "previous_week": previous_week(self.week)}
        prev = self._previous()
        if prev is not None:
            doc["churn"] = churn_k(key_churn(t, prev), self.k)
        with FileSystems.create(FileSystems.join(self.root, AGG_DIR, KEYS_FILE)) as h:
            h.write((json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
        yield {"host_key_observations": t.num_rows}

    def _previous(self) -> pa.Table | None:
        if not clean_files(self.out, previous_week(self.week)):
            return None
        t = clean_dataset(self.out, previous_week(self.week)).to_table(
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
