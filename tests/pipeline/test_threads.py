"""``--direct_running_mode multi_threading`` gives the same week as the
in-process default, on a week built to break it.

The CLI refused multi_threading from the first commit on ("it silently lost
rows"). The cause was Beam's periodic data-plane flush, which drops what a
bundle writes while it runs (pipelines/beam_guard.py turns it off;
tests/pipeline/test_beam_flush.py shows it on a tiny pipeline). Besides, in
multi_threading the FnApiRunner splits every bundle's input into one part per
worker and runs the parts on threads at once (``ParallelBundleManager``), so
any state two DoFn instances share in the process -- a spill file name, a
module-level cache, a shared builder -- could lose or double rows. The week
here has what made such bugs show before: one ``-oJ`` object with thousands
of ports (several batches with the same source offsets), small batches and a
small ``--merge-rows`` (many spill files, buckets merged in passes), a cut
gzip stream and refused records (quarantine from the reader and from
validation). Every published file must match the in-process run.

``python -m pipelines.bench_threads`` repeats this many times on a larger
week (docs/SCALING.md has the record of those runs).
"""
from __future__ import annotations

import pytest

from pipelines.bench_threads import IN_PROCESS, MULTI_THREADING, compare_outputs, run_stress_week, write_stress_week

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stress_raw(tmp_path_factory):
    raw = tmp_path_factory.mktemp("stress") / "raw"
    write_stress_week(str(raw), bulk_records=20_000)
    return str(raw)


@pytest.fixture(scope="module")
def reference(stress_raw, tmp_path_factory):
    """The in-process run: (out, manifest)."""
    out = str(tmp_path_factory.mktemp("ref") / "out")
    return out, run_stress_week(stress_raw, out, IN_PROCESS)


def test_multi_threading_publishes_the_same_week(stress_raw, reference, tmp_path, monkeypatch):
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    from pipelines import beam_guard

    ref_out, ref = reference
    # Beam's own timer back on: the week's run must turn it off itself.
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", beam_guard.BEAM_DEFAULT_MS)
    t = ref["totals"]
    # The week exercises what it claims to: several batches per wide line,
    # merges in passes, quarantine and damage.
    assert t["identity_holds"] and t["accepted"] > 20_000 and t["quarantined"] > 0
    assert ref["files_damaged"] >= 1
    for i in range(2):
        out = str(tmp_path / f"mt{i}")
        got = run_stress_week(stress_raw, out, MULTI_THREADING)
        assert beam_guard.timed_flush_ms() == 0
        assert compare_outputs(ref_out, out) == [], f"repetition {i}"
        assert got["totals"] == ref["totals"]


def test_a_default_run_of_a_big_week_gets_threads_and_the_same_week(stress_raw, reference, tmp_path,
                                                                    monkeypatch, caplog):
    """No running mode given: a week from runmode.THREADS_MIN_BYTES on gets two
    worker threads (lowered here to this small week's size), and publishes
    what the in-process run did."""
    import logging

    from pipelines import runmode

    ref_out, ref = reference
    monkeypatch.setattr(runmode, "THREADS_MIN_BYTES", 1)
    monkeypatch.setattr(runmode, "usable_cores", lambda: 2)
    out = str(tmp_path / "default")
    with caplog.at_level(logging.INFO, logger="portcensus"):
        got = run_stress_week(stress_raw, out, [])
    assert any("2 worker threads (multi_threading)" in r.getMessage() for r in caplog.records)
    assert compare_outputs(ref_out, out) == []
    assert got["totals"] == ref["totals"]


def test_the_comparison_sees_a_lost_row(reference, tmp_path):
    """compare_outputs is what the test above relies on: it must see one row
    missing from one Parquet file."""
    import glob
    import os
    import shutil

    import pyarrow.parquet as pq

    out = reference[0]
    assert compare_outputs(out, out) == []
    copy = str(tmp_path / "b")
    shutil.copytree(out, copy, symlinks=True)   # OUT/clean/<W> stay links (pipelines/layout.py)
    victim = sorted(glob.glob(os.path.join(copy, "week=*", "clean", "**", "*.parquet"), recursive=True))[0]
    table = pq.read_table(victim)
    pq.write_table(table.slice(1), victim)
    assert compare_outputs(out, copy) == [os.path.relpath(victim, copy)]
