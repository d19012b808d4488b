"""Process one week end to end: stage, run the Beam pipeline, verify the
manifest, then publish the week by swapping its folder into place.

Output layout: one folder per week, replaced as a whole::

    OUT/week=<W>/manifest.json                   counts that prove the sum
    OUT/week=<W>/clean/port-<P>/part-<B>.parquet one row per observation
                                                 (part-<B>-<pass> for a bucket merged in passes)
    OUT/week=<W>/quarantine/<source>.parquet     one row per refused record
    OUT/clean/<W> -> ../week=<W>/clean           every week's clean data in one folder

(pipelines/layout.py: the clean files' shape and names.)

Nothing under ``week=<W>`` is touched until the pipeline has finished and its
manifest's identity holds and it is no regression of the published week
(pipelines/regression.py); then ``pipelines.publish.swap_in`` exchanges the
staged folder with the live one in one atomic step. A failed or killed run
leaves the previous week exactly as it was.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import uuid

from pipelines.config import RunConfig
from pipelines.faults import pause_at
from pipelines.layout import link_week, week_path
from pipelines.manifest import check_identity
from pipelines.publish import recover, swap_in
from pipelines.regression import check_regression


class RunError(Exception):
    """The pipeline failed; the message says where."""


def staging_dir(out: str, week: str) -> str:
    return os.path.join(out, ".staging", f"{week}-{uuid.uuid4().hex[:8]}")


def process_week(cfg: RunConfig, beam_args: list[str]) -> dict:
    """Run the week and publish it; returns the manifest."""
    from pipelines.pipeline import run_pipeline

    os.makedirs(cfg.out, exist_ok=True)
    live = week_path(cfg.out, cfg.week)
    recover(live)
    staging = staging_dir(cfg.out, cfg.week)
    # Beside staging, not inside it: the staged folder is what gets published.
    shuffle = staging + ".shuffle"
    try:
        run_pipeline(cfg, staging, beam_args, shuffle)
        manifest_path = os.path.join(staging, "manifest.json")
        if not os.path.exists(manifest_path):
            raise RunError("the pipeline finished without writing its manifest")
        with open(manifest_path) as f:
            manifest = json.load(f)
        check_identity(manifest)
        # A worse copy (a damaged re-copy, a lost shard) never silently
        # replaces a good week: refused here, before anything is swapped.
        accepted = check_regression(load_manifest(cfg.out, cfg.week), manifest,
                                    cfg.regression_threshold, cfg.accept_regression)
        if accepted:
            logging.getLogger("portcensus").warning(
                f"week {cfg.week}: regression accepted (--accept-regression): {'; '.join(accepted)}",
                extra={"week": cfg.week, "regression": accepted})
        pause_at("publish", cfg.pause_at)
        swap_in(staging, live)
        link_week(cfg.out, cfg.week)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(shuffle, ignore_errors=True)
        _remove_if_empty(os.path.dirname(staging))


def clear_stale_staging(out: str) -> None:
    """Remove staging folders of runs that died (call only while holding the run lock)."""
    shutil.rmtree(os.path.join(out, ".staging"), ignore_errors=True)


def _remove_if_empty(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty (another run's staging) or already gone


def load_manifest(out: str, week: str) -> dict | None:
    path = os.path.join(week_path(out, week), "manifest.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def published_weeks(out: str) -> list[str]:
    """Weeks with a published manifest, oldest first."""
    if not os.path.isdir(out):
        return []
    weeks = [d[len("week="):] for d in os.listdir(out)
             if d.startswith("week=") and os.path.exists(os.path.join(out, d, "manifest.json"))]
    return sorted(weeks)
