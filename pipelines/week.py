"""Process one week end to end: stage, run the Beam pipeline, verify the
manifest, then publish the week's outputs by renaming them into place.

Output layout under ``out``::

    clean/week=<W>/port=<P>/part-<bucket>.parquet   one row per observation
    quarantine/week=<W>/<source>.parquet            one row per refused record
    manifests/<W>.json                              counts that prove the sum

Nothing under ``clean/``, ``quarantine/`` or ``manifests/`` is touched until the
pipeline has finished and its manifest's identity holds; a failed or killed
run leaves the previous outputs as they were.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid

from pipelines.config import RunConfig
from pipelines.manifest import check_identity


class RunError(Exception):
    """The pipeline failed; the message says where."""


def staging_dir(out: str, week: str) -> str:
    return os.path.join(out, ".staging", f"{week}-{uuid.uuid4().hex[:8]}")


def process_week(cfg: RunConfig, beam_args: list[str]) -> dict:
    """Run the week and publish it; returns the manifest."""
    from pipelines.pipeline import run_pipeline

    os.makedirs(cfg.out, exist_ok=True)
    staging = staging_dir(cfg.out, cfg.week)
    try:
        run_pipeline(cfg, staging, beam_args)
        manifest_path = os.path.join(staging, "manifest.json")
        if not os.path.exists(manifest_path):
            raise RunError("the pipeline finished without writing its manifest")
        with open(manifest_path) as f:
            manifest = json.load(f)
        check_identity(manifest)
        publish(staging, cfg.out, cfg.week)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(os.path.dirname(staging))


def _remove_if_empty(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty (another run's staging) or already gone


def publish(staging: str, out: str, week: str) -> None:
    """Swap the staged week into place, one rename per output folder.

    Each swap is: live -> trash, staged -> live, delete trash. A crash between
    the two renames leaves the old version in ``.trash`` (recoverable), never a
    half-written folder under the live name."""
    pairs = [
        (os.path.join(staging, "clean", f"week={week}"), os.path.join(out, "clean", f"week={week}")),
        (os.path.join(staging, "quarantine", f"week={week}"), os.path.join(out, "quarantine", f"week={week}")),
        (os.path.join(staging, "manifest.json"), os.path.join(out, "manifests", f"{week}.json")),
    ]
    trash = os.path.join(out, ".trash", os.path.basename(staging))
    os.makedirs(trash, exist_ok=True)
    for i, (new, live) in enumerate(pairs):
        os.makedirs(os.path.dirname(live), exist_ok=True)
        # The old version goes even when the new run has nothing there (e.g. a
        # repaired week with no quarantine left): the week is replaced whole.
        if os.path.exists(live):
            os.replace(live, os.path.join(trash, str(i)))
        if os.path.exists(new):
            os.replace(new, live)
    shutil.rmtree(trash, ignore_errors=True)
    _remove_if_empty(os.path.dirname(trash))


def load_manifest(out: str, week: str) -> dict | None:
    path = os.path.join(out, "manifests", f"{week}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
