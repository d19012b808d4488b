"""How the in-process runner is run when the operator did not say: both
cores for a big week, one thread for a small one.

Beam's FnApiRunner runs its one SDK worker in the calling thread by default,
so a week used one core however many the machine had. ``--direct_running_mode
multi_threading --direct_num_workers N`` runs N workers as threads of the
same process: the elements still cross the runner's data plane but no
process boundary, and our heavy stages (pyarrow's JSON reader, Parquet,
numpy's sort and compute kernels) release the GIL, so two threads do use two
cores. It lost rows once; the cause is understood and guarded
(pipelines/beam_guard.py, docs/SCALING.md: stress runs identical to the
in-process week). Measured on 2 cores (docs/BENCHMARKS.md) it is 1.3-1.7x
faster from about 2M records on, and no faster for a small week, whose time
is start-up and per-bucket overhead: so it is the default only from
``THREADS_MIN_BYTES`` of raw input on.

Anything the operator says wins: ``--direct_running_mode in_memory`` keeps
one thread, ``multi_processing`` or another runner is left alone.
"""
from __future__ import annotations

import os

# From this much raw input (a ~500k-record masscan -oD gzip week) a week gets
# threads; below it their start-up is not won back.
THREADS_MIN_BYTES = 8 << 20
# Measured on 2 cores only; more workers than that are not measured, and
# each one holds its own bucket's merge in memory (docs/SCALING.md).
MAX_THREADS = 2


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2
    CPU quota (a container limited to one CPU sees the host's in its affinity)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not Linux
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _named(args: list[str], flag: str) -> str | None:
    """The value of ``--flag=v`` / ``--flag v`` in Beam args (last one wins)."""
    value = None
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            value = a.split("=", 1)[1]
        elif a == flag and i + 1 < len(args):
            value = args[i + 1]
    return value


def _in_process_runner(args: list[str]) -> bool:
    """The runner of ``args`` is the in-process FnApiRunner (named or not);
    Beam's own lookup of a runner name ignores case and the "Runner" suffix."""
    runner = _named(args, "--runner") or "FnApiRunner"
    return runner.rsplit(".", 1)[-1].lower() in ("fnapirunner", "fnapi")


def with_default_running_mode(beam_args: list[str], input_bytes: int, shuffle: str = "files",
                              cores: int | None = None) -> tuple[list[str], str]:
    """``beam_args`` plus multi_threading when the week is big, the runner is
    the in-process FnApiRunner with no running mode given, the shuffle is the
    file shuffle (the only one multi_threading is allowed with, see
    pipelines/cli_beam.py) and there is more than one core. Returns the args
    and a short description of the mode for the log."""
    mode = _named(beam_args, "--direct_running_mode")
    if mode is not None or not _in_process_runner(beam_args):
        runner = _named(beam_args, "--runner") or "FnApiRunner"
        return beam_args, f"{runner}, running mode {mode or 'default'} (as given)"
    given = _named(beam_args, "--direct_num_workers")
    cores = usable_cores() if cores is None else cores
    try:   # a count given without a mode is kept (Beam's 0 means one per core)
        workers = (int(given) or cores) if given is not None else min(cores, MAX_THREADS)
    except ValueError:
        return beam_args, "in-process (Beam will refuse --direct_num_workers)"
    if shuffle != "files" or workers < 2 or input_bytes < THREADS_MIN_BYTES:
        return beam_args, "in-process, one thread"
    extra = ["--direct_running_mode=multi_threading"] + ([] if given else [f"--direct_num_workers={workers}"])
    return [*beam_args, *extra], f"in-process, {workers} worker threads (multi_threading)"


def busy_workers(beam_args: list[str], cores: int | None = None) -> int:
    """How many bundles the in-process runner works on at once in ``beam_args``
    (with_default_running_mode's output): its worker threads or processes,
    else 1. Readers use pyarrow's own threads only when this is below the
    usable cores (scanners.base.ReadContext.parse_threads): with every core
    already busy those threads cost CPU and win nothing (docs/BENCHMARKS.md).
    Another runner counts as 1: its workers' load is not known here."""
    if not _in_process_runner(beam_args):
        return 1
    if (_named(beam_args, "--direct_running_mode") or "in_memory") == "in_memory":
        return 1
    try:
        given = int(_named(beam_args, "--direct_num_workers") or 1)
    except ValueError:
        return 1
    return given or (usable_cores() if cores is None else cores)


# Arrow's allocator for a run. pyarrow's default, mimalloc, hands freed pages
# back to the system soon and faults them in again on the next batch: the 2M
# bench week spent 2.2-2.7 s in the kernel with it and 1.1-1.5 s with the
# system allocator (glibc malloc), 14.2-16.6 s of CPU against 14.8-17.7, and
# peaked at 532-605 MB against 661-681 (three interleaved rounds); at 10M the
# gain is smaller, 4.7 s of kernel time against 5.5-5.7 and 60-61 s of CPU
# against 61-63 (a first A/B in a noisier hour showed 60-62 against 67-68);
# jemalloc was no better (docs/BENCHMARKS.md). pyarrow reads this variable
# when it first needs its default pool, so the one set here is what worker
# processes started by this one (multi_processing) use.
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_allocator() -> str:
    """Make the system allocator Arrow's default pool for this process and
    the worker processes it starts, unless ``ARROW_DEFAULT_MEMORY_POOL`` says
    otherwise (the operator's choice wins). Returns the pool now in use."""
    import pyarrow as pa
    if os.environ.get(ARROW_POOL_ENV):
        return pa.default_memory_pool().backend_name
    os.environ[ARROW_POOL_ENV] = "system"
    # Buffers already allocated keep the pool they came from: switching is safe at any time.
    pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name
