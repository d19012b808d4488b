"""The weekly pipeline: wiring only (read -> stages -> write), as in Beam's
UserScore example. Every stage is a named PTransform in pipelines/transforms/.

    raw files ─ReadScanFiles─▶ RAW batches ─Normalize─▶ (network bucket, rows)
        │                          │                        │
        │ reports                  │ quarantine, excluded   ▼
        │                          │                  Deduplicate ─▶ FlagResponders ─▶ EnrichGeoAsn ─▶ IdentifyProducts ─┬▶ WriteClean
        │                          │                        │                                                        ├▶ Aggregate
        │                          │                        │                                                        └▶ HostKeyStats
        ▼                          ▼                        │
    WriteManifest ◀───── counts ◀──┴── WriteQuarantine ◀────┘ counts
"""
from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions

from pipelines.beam_costs import Options, remember_dofn_specs
from pipelines.beam_guard import disable_timed_flush
from pipelines.config import RunConfig
from pipelines.discover import RawFile, discover
from pipelines.runmode import busy_workers, usable_cores, use_system_allocator, with_default_running_mode
from pipelines.transforms.aggregate import Aggregate
from pipelines.transforms.coders import register as register_coder
from pipelines.transforms.clean import COUNTS, QUARANTINE, WORK, CLEAN, Deduplicate, ExcludeOptedOut, Normalize
from pipelines.transforms.keys import HostKeyStats
from pipelines.transforms.enrich import EnrichGeoAsn, FlagResponders, IdentifyProducts
from pipelines.transforms.read import QUARANTINE as READ_QUARANTINE
from pipelines.transforms.read import RECORDS, REPORTS, ReadScanFiles
from pipelines.transforms.write import WriteClean, WriteManifest, WriteQuarantine


def input_bytes(files: list[RawFile]) -> int:
    """The raw bytes a week's run will read (what sizes its buckets and running mode)."""
    return sum(f.size for f in files if f.problem is None)


def build(p: beam.Pipeline, cfg: RunConfig, staging: str, shuffle_dir: str | None = None,
          files: list[RawFile] | None = None, parse_threads: bool = True) -> None:
    """Add the week's stages to ``p``; outputs land under ``staging``. With
    ``shuffle_dir`` (``cfg.shuffle == "files"``) the dedup rows go through
    files there (pipelines/spill.py); the caller removes it afterwards.
    ``files``: the week's discovered raw files (discovered here if not given).
    ``parse_threads``: readers may use pyarrow's thread pool (off when the
    runner's own workers keep the cores busy, pipelines/runmode.py)."""
    register_coder()   # Beam's fallback coder for the untyped PCollections (see coders.py)
    files = discover(cfg.raw, cfg.week) if files is None else files
    cfg = cfg.sized_for(input_bytes(files))
    read = (p
            | "DiscoverFiles" >> beam.Create(files, reshuffle=False)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadScanFiles" >> ReadScanFiles(cfg.batch_rows, cfg.pause_at, cfg.max_inflation, parse_threads))
    spill = shuffle_dir if cfg.shuffle == "files" else None
    norm = read[RECORDS] | "Normalize" >> Normalize(cfg.buckets, cfg.normalize_limits(), cfg.exclude, spill)
    dedup = norm[WORK] | "Deduplicate" >> Deduplicate(cfg.week, cfg.buckets, cfg.merge_rows, cfg.partition_ports)
    enriched = (dedup[CLEAN]
                | "FlagResponders" >> FlagResponders(cfg.responders)
                | "EnrichGeoAsn" >> EnrichGeoAsn(cfg.country_db, cfg.asn_db, cfg.geoip_cache)
                | "IdentifyProducts" >> IdentifyProducts())
    written = enriched | "WriteClean" >> WriteClean(staging, cfg.partition_ports)
    aggregated = enriched | "Aggregate" >> Aggregate(staging, cfg.week, cfg.k, spill)
    key_stats = enriched | "HostKeyStats" >> HostKeyStats(staging, cfg.week, cfg.out, cfg.k)
    quarantine = (read[READ_QUARANTINE], norm[QUARANTINE]) | "AllQuarantine" >> beam.Flatten()
    screened_counts = ()
    if cfg.exclude:   # a quarantined record that spells a listed address is excluded, not kept
        screened = quarantine | "ExcludeOptedOut" >> ExcludeOptedOut(cfg.exclude)
        quarantine, screened_counts = screened[QUARANTINE], (screened[COUNTS],)
    quarantine_counts = quarantine | "WriteQuarantine" >> WriteQuarantine(staging, cfg.week)
    # Every branch feeds the manifest, the one final transform: DaskRunner
    # computes only the last transform and what feeds it (docs/SCALING.md), so
    # a side branch that fed nothing would silently never run there.
    counts = ((norm[COUNTS], dedup[COUNTS], *screened_counts, quarantine_counts, aggregated, key_stats)
              | "AllCounts" >> beam.Flatten())
    _ = ({"reports": read[REPORTS], "counts": counts, "written": written}
         | "WriteManifest" >> WriteManifest(staging, cfg.week, cfg.run_info()))


def run_pipeline(cfg: RunConfig, staging: str, beam_args: list[str],
                 shuffle_dir: str | None = None) -> None:
    """Build and run the pipeline to completion (raises on failure). The
    bucket count and running mode not given are chosen from the week's input
    size (pipelines/config.py auto_buckets, pipelines/runmode.py)."""
    files = discover(cfg.raw, cfg.week)
    size = input_bytes(files)
    cfg = cfg.sized_for(size)
    beam_args, mode = with_default_running_mode(beam_args, size, cfg.shuffle)
    pool = use_system_allocator()
    logging.getLogger("portcensus").info(
        f"week {cfg.week}: {len(files)} raw files, {size:,} bytes; {cfg.buckets} buckets; {mode}; "
        f"Arrow memory pool {pool}",
        extra={"week": cfg.week, "buckets": cfg.buckets, "running_mode": mode, "arrow_pool": pool})
    if "--no_pipeline_type_check" not in beam_args:
        # Beam infers every PCollection's element type from the DoFns' bytecode
        # while the graph is built (~0.5 s of every run). Our elements are
        # Arrow batches and tuples that go through our own coder whatever the
        # inferred type (pipelines/transforms/coders.py), so the inference buys
        # nothing here. Always off: Beam has no flag that turns it back on.
        beam_args = [*beam_args, "--no_pipeline_type_check"]
    options = Options(beam_args)      # Beam's per-run fixed costs, pipelines/beam_costs.py
    remember_dofn_specs()
    # multi_threading lost rows to Beam's timed flush (pipelines/beam_guard.py)
    disable_timed_flush(options.view_as(DirectOptions).direct_running_mode)
    with beam.Pipeline(options=options) as p:
        # pyarrow's parse threads only where the runner's own workers leave a core free
        build(p, cfg, staging, shuffle_dir, files, parse_threads=busy_workers(beam_args) < usable_cores())
