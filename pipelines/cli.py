"""``portcensus`` command line: the only place that turns exceptions into
one-line messages and exit codes (the library raises, the CLI translates).

Exit codes (also in ``portcensus --help`` and the README):
  0 ok; 1 failed; 2 usage or configuration error;
  3 done and published, but some input files were damaged (their intact records are in);
  4 another portcensus run holds the lock (nothing was done).
"""
from __future__ import annotations

import argparse
import logging
import sys

from pipelines.cli_ops import EXIT_BUSY, EXIT_DAMAGED, EXIT_FAILED, EXIT_OK, EXIT_USAGE  # noqa: F401

EPILOG = """\
exit codes: 0 ok, 1 failed, 2 usage or configuration error,
            3 published but some inputs were damaged, 4 another run holds the lock.
'portcensus COMMAND --help' explains each command."""

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _modules():
        mod.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "config", None):
        try:
            args, extra = _with_config_file(parser, argv, args.command, args.config)
        except (OSError, ValueError) as exc:
            print(f"portcensus: --config {args.config}: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
    from pipelines.logs import setup_logging
    setup_logging(None)   # stderr as it is now; commands that write outputs add their log file
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
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


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
    if isinstance(exc, LockBusy):
        return EXIT_BUSY, str(exc)
    if isinstance(exc, (ConfigError, DiscoveryError, GeoIPError, OptOutError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, IdentityError):
        return EXIT_FAILED, str(exc)
    return EXIT_FAILED, f"failed: {_one_line(exc)}"


def _with_config_file(parser, argv, command, path):
    """Re-parse with the TOML file's values as defaults (command-line flags win)."""
    import tomllib
    with open(path, "rb") as f:
        values = tomllib.load(f)
    sub = parser._subparsers._group_actions[0].choices[command]  # noqa: SLF001 -- argparse has no public accessor
    known = {a.dest for a in sub._actions}  # noqa: SLF001
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    sub.set_defaults(**values)
    for action in sub._actions:  # noqa: SLF001 -- a value from the file satisfies required=True
        if action.dest in values:
            action.required = False
    return parser.parse_known_args(argv)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:300]


if __name__ == "__main__":
    sys.exit(main())
