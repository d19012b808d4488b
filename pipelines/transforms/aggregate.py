"""The Aggregate stage: per-bucket partial aggregates, summed and k-suppressed,
written as Parquet, CSV and JSON (pipelines/aggregate.py does the work).

    (part, clean table) ─Partial─▶ partial ─GatherAll─▶ combine ─▶ suppress ─▶ files

With the file shuffle (``spill_dir``) each partial is written there and only
its file name is gathered; ``combine`` then opens a few at a time.

Files (same bytes for the same rows, whatever the bucket order)::

    <root>/aggregates/aggregates.parquet
    <root>/aggregates/aggregates.csv
    <root>/aggregates/aggregates.json

``root`` is the week's staging folder, so the week's swap-in publishes the
aggregates together with its clean data and manifest.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.spill import read_table, spill_name, write_table
from pipelines.transforms.common import GatherAll
from pipelines.aggregate import (AGG_DIR, combine, empty, identification_summary, partial_aggregates,
                                 redacted_summary, serialise, suppress)


class _PartialFn(beam.DoFn):
    def __init__(self, week: str, spill_dir: str | None):
        self.week, self.spill_dir = week, spill_dir

    def process(self, element):
        part, table = element
        partial = partial_aggregates(table, self.week)
        if self.spill_dir is None:
            yield partial
            return
        # A partial has a row per (port, value) of its networks -- tens of
        # thousands with ASNs -- and a week has buckets x passes of them: held
        # together by the gather they were the run's last memory peak. With
        # the file shuffle they go to files and only their names are gathered.
        yield write_table(FileSystems.join(self.spill_dir, "aggregates", spill_name(part)), partial)


class _FinishFn(beam.DoFn):
    def __init__(self, root: str, week: str, k: int):
        self.root, self.week, self.k = root, week, k
        self.rows = Metrics.counter("portcensus", "aggregate_rows")
        self.redacted = Metrics.counter("portcensus", "public_values_redacted")

    def process(self, partials):
        # combine() sums a few at a time, so at most those few are open at once
        combined = combine(read_table(p) if isinstance(p, str) else p for p in partials)
        redacted = redacted_summary(combined)           # before k folds rare ones into "other"
        self.redacted.inc(sum(redacted.values()))
        table = suppress(combined, self.k)
        for name, data in serialise(table).items():
            with FileSystems.create(FileSystems.join(self.root, AGG_DIR, name)) as handle:
                handle.write(data)
        self.rows.inc(table.num_rows)
        # the coverage of the knowledge per port, for the manifest (exact: never suppressed)
        # and the hosts whose value the gate refused, per dimension (manifest: public_redacted)
        yield {"aggregate_rows": table.num_rows, "identification": identification_summary(table),
               "public_redacted": redacted}


class Aggregate(beam.PTransform):
    """PCollection[(part name, clean pa.Table)] -> aggregate files under
    ``root/aggregates/``; emits one {"aggregate_rows": n} element.

    Gathered with GatherAll (a seeded single-key GroupByKey), so an empty
    week still writes (empty) files on every runner."""

    def __init__(self, root: str, week: str, k: int, spill_dir: str | None = None):
        super().__init__()
        suppress(empty(), k)  # a bad k fails here, at construction, not on a worker
        self.root, self.week, self.k, self.spill_dir = root, week, k, spill_dir

    def expand(self, clean):
        return (clean
                | "Partial" >> beam.ParDo(_PartialFn(self.week, self.spill_dir))
                | "Gather" >> GatherAll()
                | "Write" >> beam.ParDo(_FinishFn(self.root, self.week, self.k)))
