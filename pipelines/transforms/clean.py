"""Normalize and Deduplicate: RAW batches -> one clean row per observation.

Dedup is hash-partitioned: every valid row gets a uint64 key of
(ip, port, transport) and is routed to one of ``buckets`` buckets, so only
(batches x buckets) elements cross the shuffle -- never one element per
record -- and each bucket is merged by a pure vectorized function.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.merge import merge_bucket
from pipelines.normalize import Limits, normalize_batch, pack, unpack
from pipelines.transforms.common import split_by_kind

WORK = "work"
QUARANTINE = "quarantine"
COUNTS = "counts"
CLEAN = "clean"


class _NormalizeFn(beam.DoFn):
    def __init__(self, buckets: int, limits: Limits, optout_path: str | None):
        self.buckets = buckets
        self.limits = limits
        self.optout_path = optout_path
        self.optout = None
        self.quarantined = Metrics.counter("portcensus", "records_quarantined")
        self.excluded = Metrics.counter("portcensus", "records_excluded")

    def setup(self):
        if self.optout_path:
            from pipelines.optout import load_optout  # heavy only when used
            self.optout = load_optout(self.optout_path)

    def process(self, batch: pa.RecordBatch):
        res = normalize_batch(batch, self.limits,
                              excluded=self.optout.contains if self.optout is not None else None)
        if res.quarantine is not None:
            self.quarantined.inc(res.quarantine.num_rows)
            yield QUARANTINE, res.quarantine
        if res.excluded:
            self.excluded.inc(sum(res.excluded.values()))
            yield COUNTS, {"files": {f: {"excluded": c} for f, c in res.excluded.items()}}
        work = res.work
        if work.num_rows == 0:
            return
        bucket = (work.column("bucket_key").to_numpy() % np.uint64(self.buckets)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        sorted_b = bucket[order]
        bounds = np.flatnonzero(np.diff(sorted_b)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(sorted_b)]])
        for s, e in zip(starts, ends):
            # take(), not slice(): a pickled pyarrow slice carries its parent's
            # whole buffers, so each bucket element would ship the full batch
            # through the shuffle (buckets x the data; it ran out of memory).
            yield WORK, (int(sorted_b[s]), pack(work.take(pa.array(order[s:e]))))


class Normalize(beam.PTransform):
    """PCollection[RAW batch] -> {work: (bucket, WORK batch), quarantine: batch,
    counts: {"files": {name: {"excluded": n}}}}."""

    def __init__(self, buckets: int, limits: Limits, optout_path: str | None):
        super().__init__()
        self.fn = _NormalizeFn(buckets, limits, optout_path)

    def expand(self, batches):
        tagged = batches | "Validate" >> beam.ParDo(self.fn)
        return split_by_kind(tagged, (WORK, QUARANTINE, COUNTS), "Split")


class _MergeFn(beam.DoFn):
    def __init__(self, week: str):
        self.week = week
        self.observations = Metrics.counter("portcensus", "observations")

    def process(self, element):
        bucket, batches = element
        batches = [unpack(b) for b in batches if b.num_rows]
        if not batches:
            return
        work = pa.Table.from_batches(batches)
        res = merge_bucket(work, self.week)
        self.observations.inc(res.clean.num_rows)
        yield CLEAN, (bucket, res.clean)
        yield COUNTS, {"files": _files_counts(res.accepted, res.merged)}


def _files_counts(accepted: dict, merged: dict) -> dict:
    out: dict = {}
    for f, c in accepted.items():
        out.setdefault(f, {})["accepted"] = c
    for f, c in merged.items():
        out.setdefault(f, {})["merged"] = c
    return out


class Deduplicate(beam.PTransform):
    """PCollection[(bucket, WORK batch)] -> {clean: (bucket, clean pa.Table),
    counts: {"files": {name: {"accepted": n, "merged": m}}}}.

    Deterministic: the merge is a total order on record content, so any file
    order or shard split gives the same clean rows."""

    def __init__(self, week: str):
        super().__init__()
        self.week = week

    def expand(self, keyed):
        tagged = (keyed
                  | "GroupByBucket" >> beam.GroupByKey()
                  | "Merge" >> beam.ParDo(_MergeFn(self.week)))
        return split_by_kind(tagged, (CLEAN, COUNTS), "Split")


def quarantine_counts(t: pa.Table) -> dict:
    """{"files": {name: {"quarantined": n, "reasons": {reason: n}}}} of quarantine rows."""
    out: dict = {}
    grouped = t.group_by(["source_file", "reason"], use_threads=False).aggregate([("reason", "count")])
    for row in grouped.to_pylist():
        f = out.setdefault(row["source_file"], {"quarantined": 0, "reasons": {}})
        f["quarantined"] += row["reason_count"]
        f["reasons"][row["reason"]] = f["reasons"].get(row["reason"], 0) + row["reason_count"]
    return {"files": out}

