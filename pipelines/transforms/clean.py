"""Normalize and Deduplicate: RAW batches -> one clean row per observation.

Dedup is hash-partitioned: every valid row gets a uint64 key of its network
(/24 or /48) and is routed to one of ``buckets`` buckets, so only
(batches x buckets) elements cross the shuffle -- never one element per
record -- and each bucket is merged by a pure vectorized function. By default
the rows themselves go through files and only references cross the shuffle
(pipelines/spill.py); a bucket above ``max_rows`` is merged in passes.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.merge import merge_bucket
from pipelines.normalize import Limits, normalize_batch, pack, unpack_table
from pipelines.schema import ExclusionReason
from pipelines.spill import Part, in_pass, passes_for, read_part, spill_name, write_parts
from pipelines.transforms.common import split_by_kind

WORK = "work"
QUARANTINE = "quarantine"
COUNTS = "counts"
CLEAN = "clean"


class _NormalizeFn(beam.DoFn):
    def __init__(self, buckets: int, limits: Limits, optout_path: str | None,
                 shuffle_dir: str | None):
        self.buckets = buckets
        self.limits = limits
        self.optout_path = optout_path
        self.shuffle_dir = shuffle_dir
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
        if res.excluded or res.special:
            self.excluded.inc(sum(res.excluded.values()) + sum(res.special.values()))
            yield COUNTS, {"files": _excluded_counts(res.excluded, res.special)}
        work = res.work
        if work.num_rows == 0:
            return
        bucket = (work.column("bucket_key").to_numpy() % np.uint64(self.buckets)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        sorted_b = bucket[order]
        # Packed first, then gathered: the gather then skips the address text
        # and moves dictionary indices instead of repeated strings (15-16 ms
        # against 23-24 ms per 100k-row batch).
        packed = pack(work, keep=("bucket_key",) if self.shuffle_dir is not None else ())
        if self.shuffle_dir is not None:
            path = FileSystems.join(self.shuffle_dir, spill_name())
            for b, part in write_parts(path, packed.take(pa.array(order)), sorted_b):
                yield WORK, (b, part)
            return
        bounds = np.flatnonzero(np.diff(sorted_b)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(sorted_b)]])
        for s, e in zip(starts, ends):
            # take(), not slice(): a pickled pyarrow slice carries its parent's
            # whole buffers, so each bucket element would ship the full batch
            # through the shuffle (buckets x the data; it ran out of memory).
            yield WORK, (int(sorted_b[s]), packed.take(pa.array(order[s:e])))


def _excluded_counts(optout: dict, special: dict) -> dict:
    """{file: {"excluded": n, "excluded_reasons": {reason: n}}} (ExclusionReason values)."""
    out: dict = {}
    for reason, counts in ((ExclusionReason.OPTOUT, optout), (ExclusionReason.SPECIAL_PURPOSE, special)):
        for f, c in counts.items():
            e = out.setdefault(f, {"excluded": 0, "excluded_reasons": {}})
            e["excluded"] += c
            e["excluded_reasons"][reason.value] = c
    return out


class Normalize(beam.PTransform):
    """PCollection[RAW batch] -> {work: (bucket, packed WORK batch or spill
    Part), quarantine: batch, counts: {"files": {name: {"excluded": n,
    "excluded_reasons": {"optout" | "special_purpose": n}}}}}.

    With ``shuffle_dir`` the rows go to files there (pipelines/spill.py) and
    only references cross the shuffle; without it the packed rows do."""

    def __init__(self, buckets: int, limits: Limits, optout_path: str | None,
                 shuffle_dir: str | None = None):
        super().__init__()
        self.fn = _NormalizeFn(buckets, limits, optout_path, shuffle_dir)

    def expand(self, batches):
        tagged = batches | "Validate" >> beam.ParDo(self.fn)
        return split_by_kind(tagged, (WORK, QUARANTINE, COUNTS), "Split")


class _MergeFn(beam.DoFn):
    def __init__(self, week: str, buckets: int, max_rows: int, partition_ports: tuple[int, ...] | None):
        self.week, self.buckets, self.max_rows = week, buckets, max_rows
        self.partition_ports = partition_ports
        self.observations = Metrics.counter("portcensus", "observations")

    def process(self, element):
        bucket, items = element
        items = list(items)
        parts = [i for i in items if isinstance(i, Part)]
        inline = [i for i in items if not isinstance(i, Part) and i.num_rows]
        passes = passes_for(sum(p.rows for p in parts), self.max_rows) if parts else 1
        # One shuffle mode per run: inline batches would be merged once per pass.
        assert not (inline and passes > 1), "a bucket mixes inline batches and file parts"
        for which in range(passes):
            batches = list(inline)
            for part in parts:
                rows = in_pass(read_part(part), self.buckets, passes, which)
                if rows.num_rows:
                    batches.append(rows)
            if not batches:
                continue
            res = merge_bucket(unpack_table(batches), self.week, self.partition_ports)
            self.observations.inc(res.clean.num_rows)
            # The part name keys the clean files: one per bucket, or per pass
            # when a big bucket was merged in several.
            yield CLEAN, (f"{bucket:04d}" if passes == 1 else f"{bucket:04d}-{which:02d}", res.clean)
            yield COUNTS, {"files": _files_counts(res.accepted, res.merged)}


def _files_counts(accepted: dict, merged: dict) -> dict:
    out: dict = {}
    for f, c in accepted.items():
        out.setdefault(f, {})["accepted"] = c
    for f, c in merged.items():
        out.setdefault(f, {})["merged"] = c
    return out


class Deduplicate(beam.PTransform):
    """PCollection[(bucket, packed WORK batch or spill Part)] -> {clean: (part
    name "BBBB" or "BBBB-PP" for a pass, clean pa.Table), counts: {"files":
    {name: {"accepted": n, "merged": m}}}}.

    Deterministic: the merge is a total order on record content, so any file
    order or shard split gives the same clean rows. With ``partition_ports``
    they come in the order WriteClean writes them (pipelines/merge.py)."""

    def __init__(self, week: str, buckets: int, max_rows: int, partition_ports: tuple[int, ...] | None = None):
        super().__init__()
        self.week, self.buckets, self.max_rows = week, buckets, max_rows
        self.partition_ports = partition_ports

    def expand(self, keyed):
        tagged = (keyed
                  | "GroupByBucket" >> beam.GroupByKey()
                  | "Merge" >> beam.ParDo(_MergeFn(self.week, self.buckets, self.max_rows, self.partition_ports)))
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



class _ScreenQuarantineFn(beam.DoFn):
    def __init__(self, optout_path: str):
        self.optout_path = optout_path
        self.optout = None
        self.excluded = Metrics.counter("portcensus", "records_excluded")

    def setup(self):
        from pipelines.optout import load_optout
        self.optout = load_optout(self.optout_path)

    def process(self, batch: pa.RecordBatch):
        from pipelines.optout import listed_excerpts
        hit = listed_excerpts(batch.column("excerpt"), self.optout)
        if not hit.any():
            yield QUARANTINE, batch
            return
        self.excluded.inc(int(hit.sum()))
        yield COUNTS, {"files": _excluded_counts(_count_files(batch.column("source_file").filter(pa.array(hit))), {})}
        if not hit.all():
            yield QUARANTINE, batch.filter(pa.array(~hit))


def _count_files(files: pa.Array) -> dict[str, int]:
    import pyarrow.compute as pc
    return {v["values"].as_py(): v["counts"].as_py() for v in pc.value_counts(files)}


class ExcludeOptedOut(beam.PTransform):
    """Quarantine batches (reader and validation) -> {quarantine: the batches
    without rows whose excerpt names an address of the opt-out list, counts:
    {"files": {name: {"excluded": n, "excluded_reasons": {"optout": n}}}}}.

    A record the reader could not parse has no address column to exclude it
    by before validation (Normalize does that for the others), but its
    excerpt may still spell the host's address: such a row is counted as
    excluded and never written to the quarantine Parquet."""

    def __init__(self, optout_path: str):
        super().__init__()
        self.fn = _ScreenQuarantineFn(optout_path)

    def expand(self, batches):
        tagged = batches | "Screen" >> beam.ParDo(self.fn)
        return split_by_kind(tagged, (QUARANTINE, COUNTS), "Split")
