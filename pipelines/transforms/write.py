"""Writers: clean Parquet, quarantine Parquet and the run manifest.

All writes go through Beam's FileSystems under one root: the week's staging
folder, which becomes ``OUT/week=W/`` when the run succeeded::

    manifest.json
    clean/port-<P>/part-<bucket>[-<pass>].parquet   (port-other: ports outside the plan;
                                                     shape and names: pipelines/layout.py)
    quarantine/<source file>-<hash>.parquet

File names are derived from content keys (week, port, bucket, source file), never from
worker ids or time, so a retried bundle rewrites the same file and the same
inputs give the same files.
"""
from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.layout import write_clean, write_parquet
from pipelines.manifest import build_manifest, dumps
from pipelines.transforms.clean import quarantine_counts
from pipelines.transforms.common import GatherAll, sum_dicts


class _WriteCleanFn(beam.DoFn):
    def __init__(self, root: str, partition_ports: tuple[int, ...]):
        self.root = root
        self.partition_ports = tuple(sorted(partition_ports))

    def process(self, element):
        part, table = element
        table, counts = write_clean(self.root, table, part, self.partition_ports)
        out = {"rows": table.num_rows, "by_port": counts}
        if table.num_rows:
            # The week's actual time span, for the manifest (min/max, not summed).
            out["seen"] = (pc.min(table.column("first_seen")).cast(pa.int64()).as_py(),
                           pc.max(table.column("last_seen")).cast(pa.int64()).as_py())
        yield out


class WriteClean(beam.PTransform):
    """(bucket, clean table) -> Parquet under clean/port-P/ (port-other for
    ports outside ``partition_ports``); emits {"rows": n, "by_port": {...}}
    per bucket for the manifest."""

    def __init__(self, root: str, partition_ports: tuple[int, ...]):
        super().__init__()
        self.root, self.partition_ports = root, partition_ports

    def expand(self, clean):
        return clean | "WriteParquet" >> beam.ParDo(_WriteCleanFn(self.root, self.partition_ports))


def _safe_name(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-80:] + "-" + digest


class _WriteQuarantineFn(beam.DoFn):
    def __init__(self, root: str, week: str):
        self.root, self.week = root, week

    def process(self, element):
        source, batches = element
        table = pa.Table.from_batches(list(batches))
        table = table.sort_by([("source_offset", "ascending"), ("reason", "ascending"),
                               ("excerpt", "ascending")])
        path = FileSystems.join(self.root, "quarantine", _safe_name(source) + ".parquet")
        write_parquet(table, path)
        yield quarantine_counts(table)


def _by_source(batch: pa.RecordBatch):
    files = batch.column("source_file")
    for f in pc.unique(files).to_pylist():
        yield f, batch.filter(pc.equal(files, f))


class WriteQuarantine(beam.PTransform):
    """Quarantine batches (any stage) -> one Parquet file per source file;
    emits {"files": {name: {"quarantined": n, "reasons": {...}}}}."""

    def __init__(self, root: str, week: str):
        super().__init__()
        self.root, self.week = root, week

    def expand(self, batches):
        return (batches
                | "KeyBySource" >> beam.FlatMap(_by_source)
                | "GroupBySource" >> beam.GroupByKey()
                | "WriteParquet" >> beam.ParDo(_WriteQuarantineFn(self.root, self.week)))


class _ManifestFn(beam.DoFn):
    def __init__(self, root: str, week: str, run_info: dict):
        self.root, self.week, self.run_info = root, week, run_info

    def process(self, items):
        reports, counts, written = [], [], []
        for kind, payload in items:
            {"report": reports, "counts": counts, "written": written}[kind].append(payload)
        spans = [x["seen"] for x in written if x.get("seen")]
        seen = (min((a for a, _ in spans if a is not None), default=None),
                max((b for _, b in spans if b is not None), default=None))
        w = sum_dicts({k: v for k, v in x.items() if k != "seen"} for x in written)
        manifest = build_manifest(self.week, reports, sum_dicts(counts),
                                  {"rows": w.get("rows", 0), "by_port": w.get("by_port", {})},
                                  self.run_info, seen)
        with FileSystems.create(FileSystems.join(self.root, "manifest.json")) as h:
            h.write(dumps(manifest).encode())
        yield manifest


def _tag(kind: str):
    def tag(payload):
        return kind, payload
    return tag


class WriteManifest(beam.PTransform):
    """{reports, counts, written} PCollections -> manifest.json (one element out).

    Gathered with GatherAll rather than CombineGlobally, so that the same code
    runs on every runner (see docs/SCALING.md)."""

    def __init__(self, root: str, week: str, run_info: dict):
        super().__init__()
        self.root, self.week, self.run_info = root, week, run_info

    def expand(self, inputs):
        tagged = tuple(inputs[name] | f"Tag[{name}]" >> beam.Map(_tag(kind))
                       for name, kind in (("reports", "report"), ("counts", "counts"), ("written", "written")))
        return (tagged
                | "Gather" >> GatherAll()
                | "Build" >> beam.ParDo(_ManifestFn(self.root, self.week, self.run_info)))
