"""The Beam options of the processing commands: our defaults, the runner's
short names, and the refusals (a misspelt flag, Beam's --dry_run,
multi_threading with --shuffle beam) that Beam itself would let through.
Split from pipelines/cli_ops.py, which had outgrown the house's ~400 lines.
"""
from __future__ import annotations

from pipelines import config as c


DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
DEFAULT_DASK_PARTITIONS = 64


def beam_args_for(extra: list[str], shuffle: str = "files") -> list[str]:
    """Beam flags with our defaults: the in-process runner unless one is named.

    ``DaskRunner`` is accepted by its short name (Beam 2.77 only knows the
    dotted path), and gets ``--dask_npartitions`` when none is given: Beam's
    Reshuffle does nothing on Dask, so without it a week of fewer than 128
    files runs as a single task (docs/SCALING.md).

    multi_threading runs with Beam's periodic data-plane flush turned off
    (pipelines/beam_guard.py: that flush lost rows); it is refused with
    ``--shuffle beam``, which sends every row through that data plane and was
    the path that lost them (docs/SCALING.md)."""
    if shuffle != "files" and "multi_threading" in " ".join(extra):
        raise c.ConfigError(f"--direct_running_mode multi_threading is refused with --shuffle {shuffle}: "
                            "use --shuffle files (the default) or another running mode")
    if any(a == "--dry_run" or a.startswith("--dry_run=") for a in extra):
        # Beam's own --dry_run (Dataflow: do not submit) would not stop us from publishing
        raise c.ConfigError("--dry_run is a Beam option and would not stop portcensus from processing "
                            "and publishing; use --dry-run")
    # A bare "--" would make Beam's parser discard every flag after it (ours included).
    args = [a for a in extra if a != "--"]
    for i, a in enumerate(args):
        if a == "--runner=DaskRunner":
            args[i] = f"--runner={DASK_RUNNER}"
        elif a == "DaskRunner" and i and args[i - 1] == "--runner":
            args[i] = DASK_RUNNER
    if not any(a == "--runner" or a.startswith("--runner=") for a in args):
        args = ["--runner=FnApiRunner"] + args
    if DASK_RUNNER in " ".join(args):
        try:  # its options (--dask_client_address, ...) exist once the runner module is loaded
            import apache_beam.runners.dask.dask_runner  # noqa: F401
        except ImportError:
            raise c.ConfigError("DaskRunner needs the dask extra: pip install -e '.[dask]'") from None
        if not any(a.startswith("--dask_npartitions") for a in args):
            args.append(f"--dask_npartitions={DEFAULT_DASK_PARTITIONS}")
    _refuse_unknown(args)
    return args


def _refuse_unknown(args: list[str]) -> None:
    """A misspelt flag (--exlcude) would otherwise be handed to Beam, which
    drops what it does not know with a warning: refuse it here instead."""
    import logging

    from apache_beam.options.pipeline_options import PipelineOptions
    beam_log = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_log.level
    beam_log.setLevel(logging.ERROR)   # we report the problem ourselves
    import contextlib
    import io
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):   # Beam's argparse prints its whole usage on a bad value
            opts = PipelineOptions(args)
            unknown = sorted(set(opts.get_all_options(retain_unknown_options=True)) - set(opts.get_all_options()))
    except SystemExit:
        last = (said.getvalue().strip().splitlines() or ["invalid value"])[-1]
        raise c.ConfigError(f"Beam option: {last.split('error: ', 1)[-1]}") from None
    finally:
        beam_log.setLevel(level)
    if unknown:
        flags = ", ".join("--" + u for u in unknown)
        raise c.ConfigError(f"unknown option(s) {flags}: neither a portcensus flag (see --help) nor a Beam option")
