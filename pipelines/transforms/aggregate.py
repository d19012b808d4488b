"""The Aggregate stage: per-bucket partial aggregates, summed and k-suppressed,
written as Parquet, CSV and JSON (pipelines/aggregate.py does the work).

    (bucket, clean table) ─Partial─▶ (None, partial) ─GroupAll─▶ combine ─▶ suppress ─▶ files

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

from pipelines.transforms.common import GatherAll
from pipelines.aggregate import AGG_DIR, combine, empty, partial_aggregates, serialise, suppress


class _PartialFn(beam.DoFn):
    def __init__(self, week: str):
        self.week = week

    def process(self, element):
        _bucket, table = element
        # The partials are small (one row per port and value): GatherAll
        # brings them to one place on every runner alike.
        yield partial_aggregates(table, self.week)


class _FinishFn(beam.DoFn):
    def __init__(self, root: str, week: str, k: int):
        self.root, self.week, self.k = root, week, k
        self.rows = Metrics.counter("portcensus", "aggregate_rows")

    def process(self, partials):
        table = suppress(combine(partials), self.k)
        for name, data in serialise(table).items():
            with FileSystems.create(FileSystems.join(self.root, AGG_DIR, name)) as handle:
                handle.write(data)
        self.rows.inc(table.num_rows)
        yield {"aggregate_rows": table.num_rows}


class Aggregate(beam.PTransform):
    """PCollection[(bucket, clean pa.Table)] -> aggregate files under
    ``root/aggregates/``; emits one {"aggregate_rows": n} element.

    Gathered with GatherAll (a seeded single-key GroupByKey), so an empty
    week still writes (empty) files on every runner."""

    def __init__(self, root: str, week: str, k: int):
        super().__init__()
        suppress(empty(), k)  # a bad k fails here, at construction, not on a worker
        self.root, self.week, self.k = root, week, k

    def expand(self, clean):
        return (clean
                | "Partial" >> beam.ParDo(_PartialFn(self.week))
                | "Gather" >> GatherAll()
                | "Write" >> beam.ParDo(_FinishFn(self.root, self.week, self.k)))
