"""``portcensus`` command line: the only place that turns exceptions into
one-line messages and exit codes (the library raises, the CLI translates).

Exit codes (also in ``portcensus --help`` and the README):
  0 ok; 1 failed; 2 usage or configuration error;
  3 done and published, but some input files were damaged (their intact records are in);
  4 another portcensus run holds the lock (nothing was done);
  5 the leak check found an identifier in the new site build: it was not swapped in;
  6 a week was not replaced: the new run is a regression of the published one;
  7 ``status --check``: a week is damaged, stale or not up to date.
``weekly`` goes on when a week fails and exits with the worst week's code.
"""
from __future__ import annotations

import argparse
import logging
import sys

import time

from pipelines.cli_ops import PROCESS_COMMANDS
from pipelines.exits import (EXIT_BUSY, EXIT_CHECK, EXIT_DAMAGED, EXIT_FAILED, EXIT_OK,  # noqa: F401
                             EXIT_REGRESSION, EXIT_USAGE)

EPILOG = """\
exit codes: 0 ok, 1 failed, 2 usage or configuration error,
            3 published but some inputs were damaged, 4 another run holds the lock,
            5 the leak check blocked the site build (the previous site stays),
            6 a week was not replaced (the new run is a regression; --accept-regression),
            7 status --check: a week is damaged, stale or not up to date.
'portcensus COMMAND --help' explains each command; every command takes --config FILE."""

# Modules that add subcommands: add_parsers(subparsers) and dispatch(args[, extra]).
COMMAND_MODULES = ("pipelines.cli_ops", "pipelines.cli_scan", "pipelines.cli_report")


def _modules():
    import importlib
    return [importlib.import_module(m) for m in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portcensus", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Raw masscan/zmap/zgrab2 output in; clean, accounted weekly data and an "
                    "anonymized public report out.")
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _modules():
        mod.add_parsers(sub)
    from pipelines.config_file import CONFIG_HELP
    for p in sub.choices.values():   # one --config for every command
        if not any(a.dest == "config" for a in p._actions):  # noqa: SLF001
            p.add_argument("--config", metavar="TOML", help=CONFIG_HELP)
    return parser


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from pipelines.config import PIPELINE_VERSION
    try:
        beam = version("apache-beam")
    except PackageNotFoundError:
        beam = "not installed"
    return (f"portcensus {PIPELINE_VERSION} (Apache Beam {beam}, "
            f"Python {'.'.join(map(str, sys.version_info[:3]))})")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "config", None):
        try:
            args, extra = _with_config_file(parser, argv, args.command, args.config)
        except (OSError, ValueError) as exc:
            print(f"portcensus: --config {args.config}: {_config_message(exc)}", file=sys.stderr)
            return EXIT_USAGE
    from pipelines.logs import setup_logging, start_run
    start_run()
    setup_logging(None)   # stderr as it is now; commands that write outputs add their log file
    code = _run(args, extra)
    if code is None:
        parser.error(f"unknown command {args.command}")
        return EXIT_USAGE
    _finished(args, code, started)
    return code


def entry() -> None:
    """The ``portcensus`` command (console script and ``python -m pipelines``):
    ``main()``, then an exit without the interpreter's teardown. Once Beam is
    imported, tearing its modules and objects down takes 0.17 s of every run
    (a 50k-record week runs 1.8 s), and nothing of ours waits for it: every
    output is written and closed inside ``main()``. The exit handlers still
    run (logging's shutdown, a local Dask cluster's or a job server's
    cleanup, multiprocessing's: about 0.1 ms), the streams are flushed, and
    under a profiler or tracer (cProfile, coverage), which write their output
    at exit, the exit is the usual one. ``main()`` called from Python (tests,
    other code) returns as usual."""
    import atexit
    import os
    code = main()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    try:
        atexit._run_exitfuncs()   # what a normal exit runs first; logging.shutdown is one
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:    # None: started with the stream closed (>&-)
                try:
                    stream.flush()
                except Exception:     # noqa: BLE001 -- a closed pipe (| head): nothing left to say
                    pass
    finally:
        os._exit(code)


def _run(args, extra) -> int | None:
    try:
        for mod in _modules():
            code = _call(mod.dispatch, args, extra)
            if code is not None:
                return code
    except KeyboardInterrupt:
        print("portcensus: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 -- the CLI edge: one line, never a traceback
        code, message = translate(exc)
        logging.getLogger("portcensus").error(message, exc_info=code == EXIT_FAILED)
        if not any(isinstance(h, logging.StreamHandler) and h.stream is sys.stderr
                   for h in logging.getLogger().handlers):
            print(f"portcensus: {message}", file=sys.stderr)
        return code
    return None


def _finished(args, code: int, started: float) -> None:
    """The last log line of every command, no-op runs included: what ran, how
    long, how it ended (the run id is on every line of the log file)."""
    logging.getLogger("portcensus").info(
        f"finished {args.command}: exit {code}",
        extra={"command": args.command, "exit_code": code,
               "duration_s": round(time.monotonic() - started, 3),
               "dry_run": bool(getattr(args, "dry_run", False))})


def _call(fn, args, extra):
    import inspect
    return fn(args, extra) if len(inspect.signature(fn).parameters) == 2 else (
        fn(args) if not extra else _unrecognized(args, extra))


def _unrecognized(args, extra) -> int:
    print(f"portcensus {args.command}: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
    return EXIT_USAGE


def translate(exc: BaseException) -> tuple[int, str]:
    """Domain exception -> (exit code, one-line message)."""
    from pipelines.config import ConfigError
    from pipelines.discover import DiscoveryError
    from pipelines.geoip import GeoIPError
    from pipelines.lock import LockBusy
    from pipelines.manifest import IdentityError
    from pipelines.optout import OptOutError
    from pipelines.exits import WeeksFailed, worst
    from pipelines.regression import RegressionError
    from pipelines.leakcheck import LeakError
    if isinstance(exc, WeeksFailed):   # weekly: the worst of every week's code
        code = worst([translate(e)[0] for _, e in exc.errors] + exc.codes)
        return code, f"{exc}; exit {code}"
    if isinstance(exc, LockBusy):
        return EXIT_BUSY, str(exc)
    if isinstance(exc, RegressionError):
        return EXIT_REGRESSION, str(exc)
    if isinstance(exc, LeakError):
        from pipelines.exits import EXIT_LEAK
        return EXIT_LEAK, str(exc)
    if isinstance(exc, (ConfigError, DiscoveryError, GeoIPError, OptOutError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, IdentityError):
        return EXIT_FAILED, str(exc)
    return EXIT_FAILED, f"failed: {_one_line(exc)}"


def _with_config_file(parser, argv, command, path):
    """Re-parse with the TOML file's typed values as defaults (command-line
    flags win); its [beam] table goes before the command line's Beam flags."""
    from pipelines.config_file import defaults_for, load
    values = load(path)
    choices = parser._subparsers._group_actions[0].choices  # noqa: SLF001 -- argparse has no public accessor
    sub = choices[command]
    typed, beam = defaults_for(sub, choices, values, command in PROCESS_COMMANDS)
    sub.set_defaults(**typed)
    for action in sub._actions:  # noqa: SLF001 -- a value from the file satisfies required=True
        if action.dest in typed:
            action.required = False
    args, extra = parser.parse_known_args(argv)
    return args, beam + extra


def _config_message(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:300]


if __name__ == "__main__":
    sys.exit(main())
