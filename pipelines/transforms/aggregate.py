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

from pipelines.aggregate import AGG_DIR, combine, empty, partial_aggregates, serialise, suppress


class _PartialFn(beam.DoFn):
    def __init__(self, week: str):
        self.week = week

    def process(self, element):
        _bucket, table = element
        # One key for all: the partials are small (one row per port and value),
        # so a single GroupByKey gathers them on every runner alike.
        yield None, partial_aggregates(table, self.week)


class _FinishFn(beam.DoFn):
    def __init__(self, root: str, week: str, k: int):
        self.root, self.week, self.k = root, week, k
        self.rows = Metrics.counter("portcensus", "aggregate_rows")

    def process(self, element):
        _, partials = element
        table = suppress(combine(p for p in partials if p is not None), self.k)
        for name, data in serialise(table).items():
            with FileSystems.create(FileSystems.join(self.root, AGG_DIR, name)) as handle:
                handle.write(data)
        self.rows.inc(table.num_rows)
        yield {"aggregate_rows": table.num_rows}


class Aggregate(beam.PTransform):
    """PCollection[(bucket, clean pa.Table)] -> aggregate files under
    ``root/aggregates/``; emits one {"aggregate_rows": n} element.

    A single-key GroupByKey, not CombineGlobally/Top/Count, because those
    break on the DaskRunner (see docs/SCALING.md); a seed element makes an
    empty week still write (empty) files."""

    def __init__(self, root: str, week: str, k: int):
        super().__init__()
        suppress(empty(), k)  # a bad k fails here, at construction, not on a worker
        self.root, self.week, self.k = root, week, k

    def expand(self, clean):
        seed = clean.pipeline | "Seed" >> beam.Create([(None, None)])
        partials = clean | "Partial" >> beam.ParDo(_PartialFn(self.week))
        return ((seed, partials)
                | "Flatten" >> beam.Flatten()
                | "GroupAll" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_FinishFn(self.root, self.week, self.k)))
