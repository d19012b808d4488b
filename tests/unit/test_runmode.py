"""The defaults chosen from a week's size: the bucket count
(pipelines/config.py auto_buckets) and the running mode (pipelines/runmode.py).
What the operator gives always wins."""
import pytest

from pipelines import config as c
from pipelines.runmode import THREADS_MIN_BYTES, busy_workers, with_default_running_mode

MIB = 1 << 20


@pytest.mark.parametrize("size, buckets", [
    (0, 1), (1, 1), (2 * MIB, 1), (2 * MIB + 1, 2), (6 * MIB, 4), (8 * MIB, 4), (8 * MIB + 1, 8),
    (30 * MIB, 16), (64 * MIB, 32), (64 * MIB + 1, 64), (129 * MIB, c.AUTO_BUCKETS_MAX),
    (10_000 * MIB, c.AUTO_BUCKETS_MAX)])
def test_auto_buckets_grow_with_the_input_in_powers_of_two(size, buckets):
    assert c.auto_buckets(size) == buckets


def test_a_given_bucket_count_is_kept_and_none_is_settled_by_size():
    cfg = c.RunConfig(week="2013-W37")
    assert cfg.buckets is None
    assert cfg.sized_for(5 * MIB).buckets == 4
    assert c.RunConfig(week="2013-W37", buckets=3).sized_for(5 * MIB).buckets == 3
    with pytest.raises(c.ConfigError, match="--buckets must be 1..4096"):
        c.RunConfig(week="2013-W37", buckets=0, country_db=None, asn_db=None).validate()


BIG, SMALL = THREADS_MIN_BYTES, THREADS_MIN_BYTES - 1


def test_a_big_week_on_two_cores_gets_two_worker_threads():
    args, mode = with_default_running_mode(["--runner=FnApiRunner"], BIG, cores=2)
    assert args == ["--runner=FnApiRunner", "--direct_running_mode=multi_threading", "--direct_num_workers=2"]
    assert "2 worker threads" in mode
    # no runner named is the in-process FnApiRunner too; more cores still get two threads (measured)
    args, _ = with_default_running_mode([], BIG, cores=16)
    assert args[-1] == "--direct_num_workers=2"


@pytest.mark.parametrize("args, size, cores, shuffle", [
    (["--runner=FnApiRunner"], SMALL, 2, "files"),                  # a small week: start-up is not won back
    (["--runner=FnApiRunner"], BIG, 1, "files"),                    # one core
    (["--runner=FnApiRunner"], BIG, 2, "beam"),                     # refused with the runner's own shuffle
    (["--runner=FnApiRunner", "--direct_running_mode=in_memory"], BIG, 2, "files"),   # said so
    (["--runner", "FnApiRunner", "--direct_running_mode", "multi_processing"], BIG, 2, "files"),
    (["--runner=apache_beam.runners.dask.dask_runner.DaskRunner"], BIG, 2, "files"),  # another runner
    (["--runner=FnApiRunner", "--direct_num_workers=1"], BIG, 2, "files"),          # one worker asked for
])
def test_the_args_are_left_alone_otherwise(args, size, cores, shuffle):
    got, _ = with_default_running_mode(list(args), size, shuffle, cores=cores)
    assert got == args


def test_a_worker_count_given_without_a_mode_is_kept():
    got, mode = with_default_running_mode(["--direct_num_workers=3"], BIG, cores=2)
    assert got == ["--direct_num_workers=3", "--direct_running_mode=multi_threading"]
    assert "3 worker threads" in mode


@pytest.mark.parametrize("runner", ["FnApiRunner", "fnapirunner", "FnApi",
                                    "apache_beam.runners.portability.fn_api_runner.FnApiRunner"])
def test_every_spelling_of_the_in_process_runner_gets_threads(runner):
    got, _ = with_default_running_mode([f"--runner={runner}"], BIG, cores=2)
    assert "--direct_running_mode=multi_threading" in got


@pytest.mark.parametrize("args, cores, want", [
    ([], 2, 1), (["--direct_running_mode=in_memory"], 2, 1),
    (["--direct_running_mode=multi_threading", "--direct_num_workers=2"], 2, 2),
    (["--direct_running_mode", "multi_processing", "--direct_num_workers", "3"], 2, 3),
    (["--direct_running_mode=multi_threading", "--direct_num_workers=0"], 4, 4),   # Beam's 0: one per core
    (["--direct_running_mode=multi_threading"], 2, 1),                             # Beam's default count
    (["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", "--direct_num_workers=2"], 2, 1),
])
def test_busy_workers_counts_the_bundles_run_at_once(args, cores, want):
    assert busy_workers(args, cores=cores) == want


def test_a_big_weeks_default_run_parses_without_pyarrows_threads():
    # the runner's two threads fill both cores: readers then parse serially
    args, _ = with_default_running_mode([], BIG, cores=2)
    assert busy_workers(args, cores=2) == 2
    args, _ = with_default_running_mode([], SMALL, cores=2)
    assert busy_workers(args, cores=2) == 1


def test_a_bare_double_dash_never_reaches_beam():
    """Beam's parser discards every flag after a bare "--", the running mode
    and type-check flags the run adds included."""
    from pipelines.cli_beam import beam_args_for
    args = beam_args_for(["--", "--direct_num_workers=3"])
    assert "--" not in args and "--direct_num_workers=3" in args


_POOL_SCRIPT = """
import subprocess, sys
from pipelines.runmode import use_system_allocator
import pyarrow as pa
pa.array(range(1000))                      # the default pool is in use before the switch
chosen = use_system_allocator()
child = subprocess.run([sys.executable, "-c", "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"],
                       capture_output=True, text=True, check=True).stdout.strip()
print(chosen, pa.default_memory_pool().backend_name, pa.array(range(1000)).buffers()[1] is not None, child)
"""


@pytest.mark.parametrize("given, want", [(None, "system"), ("jemalloc", "jemalloc"), ("mimalloc", "mimalloc")])
def test_the_run_uses_the_system_allocator_unless_the_operator_chose_one(given, want):
    """This process and the worker processes it starts (multi_processing):
    a real interpreter each, as a run would be."""
    import os
    import subprocess
    import sys

    import pyarrow as pa
    if given == "jemalloc":
        try:
            pa.jemalloc_memory_pool()
        except NotImplementedError:
            pytest.skip("this pyarrow is built without jemalloc")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if given:
        env["ARROW_DEFAULT_MEMORY_POOL"] = given
    out = subprocess.run([sys.executable, "-c", _POOL_SCRIPT], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [want, want, "True", want]
