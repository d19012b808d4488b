"""The week on a real distributed engine equals the week in-process.

The demo week runs once on the FnApiRunner and once on Beam's DaskRunner
against a loopback dask.distributed cluster (scheduler + 2 worker processes
that import portcensus from the installed package, no PYTHONPATH), and every
published file must match: manifest byte for byte (but for the driver's
hash of the source tree, see without_code_hash), each Parquet file row for row
(sorted), aggregates when the pipeline writes them.

The DaskRunner computes only what feeds the LAST transform of the pipeline
(apache_beam/runners/dask/dask_runner.py:251): a stage that is not upstream of
WriteManifest silently never runs there. ``test_every_stage_feeds_*`` checks
that statically, so a new sink fails here in a second, not in production.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.bench_threads import files_differ, published, without_code_hash
from pipelines.config import RunConfig
from pipelines.week import process_week

distributed = pytest.importorskip("distributed", reason="needs apache-beam[dask]")

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"

WEEK = "2013-W37"


# -- a loopback cluster (also used by test_dask_transforms.py) ---------------

@contextlib.contextmanager
def loopback_cluster(workdir, workers: int = 2, timeout: float = 60.0, extra_paths: tuple[str, ...] = ()):
    """Start ``dask scheduler`` and ``workers`` x ``dask worker`` as separate
    processes bound to 127.0.0.1; yield the scheduler address; stop them.

    Port 0 + --scheduler-file: the scheduler picks a free port itself, so
    parallel test runs (pytest -n) never race for one. Workers import the
    project from the installed package; ``extra_paths`` go on their
    PYTHONPATH only for DoFns defined in a test module."""
    dask_cli = os.path.join(os.path.dirname(sys.executable), "dask")
    if not os.path.exists(dask_cli):
        dask_cli = shutil.which("dask") or pytest.skip("no dask CLI (pip install apache-beam[dask])")
    os.makedirs(workdir, exist_ok=True)
    sched_file = os.path.join(workdir, "scheduler.json")
    procs: list[tuple[str, subprocess.Popen]] = []
    env = dict(os.environ)
    if extra_paths:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*extra_paths, env.get("PYTHONPATH")]))

    def start(name, *args):
        with open(os.path.join(workdir, f"{name}.log"), "wb") as log:  # the child keeps its own copy
            procs.append((name, subprocess.Popen([dask_cli, *args], stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, cwd=workdir, env=env)))

    def logs() -> str:
        return "\n".join(f"--- {n}.log\n" + open(os.path.join(workdir, f"{n}.log"), errors="replace").read()[-2000:]
                         for n, _ in procs)

    try:
        # --dashboard-address: without it the HTTP endpoint (health, metrics)
        # listens on 0.0.0.0 even with --no-dashboard
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--dashboard-address", "127.0.0.1:0", "--scheduler-file", sched_file)
        deadline = time.monotonic() + timeout
        while not os.path.exists(sched_file):
            if procs[0][1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dask scheduler did not start\n" + logs())
            time.sleep(0.1)
        for i in range(workers):
            start(f"worker{i}", "worker", "--scheduler-file", sched_file, "--host", "127.0.0.1",
                  "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                  "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}",
                  "--local-directory", os.path.join(workdir, f"w{i}"), "--death-timeout", "60")
        with distributed.Client(scheduler_file=sched_file, timeout=timeout) as client:
            try:
                client.wait_for_workers(workers, timeout=timeout)
            except TimeoutError:
                raise RuntimeError("dask workers did not join\n" + logs()) from None
            address = client.scheduler.address
        yield address
    finally:
        _stop(procs, sched_file)


def _stop(procs, sched_file) -> None:
    """Ask the scheduler to close itself and its workers (a SIGTERMed nanny
    waits 8 s for its worker before killing it); signal what is left."""
    if procs and procs[0][1].poll() is None and os.path.exists(sched_file):
        try:
            # shutdown() closes the client too; a ``with`` block would then
            # wait out a second close against the stopped scheduler
            distributed.Client(scheduler_file=sched_file, timeout=10).shutdown()
        except (OSError, TimeoutError):
            pass  # scheduler already unreachable: the signals below stop the rest
    for _, proc in reversed(procs):  # workers first, so none reconnects to a dying scheduler
        if proc.poll() is None:
            proc.terminate()
    for _, proc in reversed(procs):
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def close_runner_clients() -> None:
    """Close every Client this process still has open (a DaskRunner that
    failed before returning its result leaves its Client behind)."""
    while True:
        try:
            client = distributed.default_client()
        except ValueError:
            return  # none left
        client.close()




@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory):
    from scanners.synth.demo import write_demo_week
    raw = tmp_path_factory.mktemp("raw")
    write_demo_week(str(raw), WEEK, 2013)
    return str(raw)


@pytest.mark.slow
def test_dask_week_equals_fnapi_week(demo_raw, tmp_path):
    cfg = {"week": WEEK, "raw": demo_raw, "buckets": 4}  # 4 buckets: a quarter of the files to compare
    ref_out, dask_out = str(tmp_path / "fnapi"), str(tmp_path / "dask")
    ref = process_week(RunConfig(out=ref_out, **cfg).validate(), ["--runner=FnApiRunner"])
    with loopback_cluster(str(tmp_path / "cluster")) as address:
        try:
            # --dask_npartitions: the default (128 elements a partition) would
            # put all 15 files, and so every later stage, in one task
            got = process_week(RunConfig(out=dask_out, **cfg).validate(),
                               [f"--runner={DASK_RUNNER}", f"--dask_client_address={address}",
                                "--dask_npartitions=4"])
        finally:
            close_runner_clients()  # the runner never closes its Client
        with distributed.Client(address) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and min(executed.values()) > 0, executed  # both workers did work

    assert without_code_hash(got) == without_code_hash(ref)
    assert ref["totals"]["identity_holds"] and ref["totals"]["accepted"] > 1000
    assert ref["totals"]["quarantined"] > 0 and ref["files_damaged"] > 0  # the demo's damage came through

    a, b = published(ref_out), published(dask_out)
    assert sorted(a) == sorted(b)
    clean = [p for p in a if "/clean/" in p and p.endswith(".parquet")]
    quarantine = [p for p in a if "/quarantine/" in p and p.endswith(".parquet")]
    assert quarantine and any(p.endswith("manifest.json") for p in a)
    # not a vacuous comparison: the clean files hold every accepted observation
    assert sum(pq.read_metadata(a[p]).num_rows for p in clean) == ref["totals"]["accepted"]
    differ = [rel for rel in sorted(a) if files_differ(a[rel], b[rel])]
    assert differ == []
    agg = [p for p in a if "aggregates/" in p]
    if agg:  # once the pipeline writes OUT/week=<W>/aggregates/, they were compared above
        assert all(p in b for p in agg)


def never_computed_on_dask(p: beam.Pipeline) -> list[str]:
    """Labels of transforms the DaskRunner would never run: those whose dask
    bag is not in the graph of the last bag, the only one it computes
    (dask_runner.py:243-252, replayed here without a cluster)."""
    from apache_beam.runners.dask.dask_runner import DaskRunner
    from apache_beam.runners.dask.overrides import dask_overrides
    # Pipeline.run round-trips a non-FnAPI runner's pipeline through the runner API first
    q = beam.Pipeline.from_runner_api(p.to_runner_api(use_fake_coders=True), DaskRunner(), p.options)
    q.replace_all(dask_overrides())
    visitor = DaskRunner.to_dask_bag_visitor()
    q.visit(visitor)
    bags = [(applied, bag) for applied, bag in visitor.bags.items() if bag is not None]
    computed = set(bags[-1][1].__dask_graph__().keys())
    return [applied.full_label for applied, bag in bags if not set(bag.__dask_keys__()) <= computed]


def test_every_stage_feeds_the_transform_dask_computes(demo_raw, tmp_path):
    from pipelines.pipeline import build
    cfg = RunConfig(week=WEEK, raw=demo_raw, out=str(tmp_path / "out"))
    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    build(p, cfg, str(tmp_path / "staging"), str(tmp_path / "shuffle"))
    assert never_computed_on_dask(p) == []


def test_the_feeds_check_finds_a_second_sink():
    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    c = p | "Create" >> beam.Create([1, 2])
    _ = c | "SideSink" >> beam.Map(str)
    _ = c | "MainSink" >> beam.Map(repr)
    assert never_computed_on_dask(p) == ["SideSink"]


def test_cli_accepts_the_short_runner_name():
    import importlib

    from apache_beam.options.pipeline_options import StandardOptions
    from apache_beam.runners.runner import create_runner
    found = [getattr(importlib.import_module(m), "beam_args_for", None) for m in ("pipelines.cli_beam", "pipelines.cli_ops", "pipelines.cli")]
    beam_args_for = next(f for f in found if f is not None)  # StopIteration, not ValueError, if it moved
    args = beam_args_for(["--runner", "DaskRunner", "--dask_client_address", "tcp://127.0.0.1:8786"])
    runner = PipelineOptions(args).view_as(StandardOptions).runner
    assert type(create_runner(runner)).__name__ == "DaskRunner"   # Beam alone: ValueError, unknown runner
    assert any(a.startswith("--dask_npartitions=") for a in args)
