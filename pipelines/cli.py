"""``portcensus`` command line: the only place that turns exceptions into
one-line messages and exit codes (the library raises, the CLI translates).

Exit codes: 0 ok, 1 failed, 2 usage or configuration error,
3 processed but some input files were damaged (their intact records are in).
"""
from __future__ import annotations

import argparse
import logging
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3

BEAM_HELP = """\
Beam options: any other --flag is handed to Apache Beam, e.g.
  --runner FnApiRunner            in-process runner (the default)
  --runner DirectRunner --direct_running_mode multi_processing --direct_num_workers 2
                                  use 2 worker processes
  --runner DaskRunner --dask_client_address tcp://127.0.0.1:8786
                                  a dask.distributed cluster (docs/SCALING.md)
direct_running_mode=multi_threading is refused: it silently lost rows here.
"""


def _add_run_args(p: argparse.ArgumentParser) -> None:
    from pipelines import config as c
    from pipelines.responders import ResponderThresholds
    p.add_argument("--week", required=True, help="ISO week to process, e.g. 2013-W37")
    p.add_argument("--raw", default=c.DEFAULT_RAW,
                   help=f"raw data root; the week's files are read from RAW/WEEK/** (default: {c.DEFAULT_RAW})")
    p.add_argument("--out", default=c.DEFAULT_OUT,
                   help=f"output root for clean/, quarantine/ and manifests/ (default: {c.DEFAULT_OUT})")
    p.add_argument("--exclude", metavar="FILE",
                   help="opt-out list in masscan --excludefile syntax; matching records are counted as "
                        "excluded and never kept")
    p.add_argument("--buckets", type=int, default=c.DEFAULT_BUCKETS,
                   help=f"dedup hash partitions; more for bigger weeks (default: {c.DEFAULT_BUCKETS})")
    p.add_argument("--batch-rows", type=int, default=c.DEFAULT_BATCH_ROWS,
                   help=f"rows per Arrow batch read from a file (default: {c.DEFAULT_BATCH_ROWS})")
    p.add_argument("--geoip-country-db", metavar="MMDB", default=c.DEFAULT_COUNTRY_DB,
                   help="country database: GeoLite2/GeoIP2 Country or City, or DB-IP Country/City Lite "
                        "(.mmdb or .mmdb.xz; default: the embedded DB-IP Lite)")
    p.add_argument("--geoip-asn-db", metavar="MMDB", default=c.DEFAULT_ASN_DB,
                   help="ASN database: GeoLite2-ASN, GeoIP2-ISP or DB-IP ASN Lite (default: embedded DB-IP Lite)")
    p.add_argument("--geoip-cache", metavar="DIR", default=c.DEFAULT_GEOIP_CACHE,
                   help="where decompressed databases and their lookup tables are cached")
    p.add_argument("--responder-min-hosts", type=int, default=ResponderThresholds.min_hosts,
                   help="addresses of one /24 or /48 with identical answers on a port before they count "
                        f"as one suspected responder (default: {ResponderThresholds.min_hosts})")
    p.add_argument("--responder-min-share", type=float, default=ResponderThresholds.min_share,
                   help="...and the share of that network's responders they must be "
                        f"(default: {ResponderThresholds.min_share})")
    p.add_argument("--many-ports", type=int, default=ResponderThresholds.many_ports,
                   help="flag addresses open on at least this many ports "
                        f"(default: {ResponderThresholds.many_ports})")
    p.add_argument("--config", metavar="TOML",
                   help="read defaults for these flags from a TOML file (keys as the flags, with "
                        "underscores: week, raw, out, exclude, geoip_country_db, ...); flags win")
    p.add_argument("--quiet", action="store_true", help="print no summary, only errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portcensus",
        description="Turn raw masscan/zmap/zgrab2 output into clean, accounted weekly data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit codes: 0 ok, 1 failed, 2 usage/config error, 3 done but inputs were damaged.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser(
        "run", help="process one week: read, validate, deduplicate, write Parquet + manifest",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BEAM_HELP,
        description="Process one week of raw scanner files into clean Parquet, a quarantine and a "
                    "manifest whose counts prove read = accepted + quarantined + excluded + merged.")
    _add_run_args(run)

    demo = sub.add_parser("demo", help="write the synthetic demo week (real scanner formats)")
    demo.add_argument("--raw", default="data/raw", help="raw data root (default: data/raw)")
    demo.add_argument("--week", default="2013-W37", help="week folder to write (default: 2013-W37)")
    demo.add_argument("--seed", type=int, default=2013, help="random seed (default: 2013)")
    demo.add_argument("--force", action="store_true", help="rewrite the week even if it exists")
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
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_beam_noise)
    try:
        if args.command == "run":
            return _run(args, extra)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command == "demo":
            return _demo(args)
    except KeyboardInterrupt:
        print("portcensus: interrupted", file=sys.stderr)
        return EXIT_FAILED
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


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


def beam_args_for(extra: list[str]) -> list[str]:
    """Beam flags with our defaults: the in-process runner unless one is named."""
    from pipelines.config import ConfigError
    joined = " ".join(extra)
    if "multi_threading" in joined:
        raise ConfigError("--direct_running_mode multi_threading is refused: it silently lost rows "
                          "in our tests; use in_memory (default) or multi_processing")
    if not any(a == "--runner" or a.startswith("--runner=") for a in extra):
        extra = ["--runner=FnApiRunner"] + extra
    return extra


def _run(args, extra: list[str]) -> int:
    from pipelines.config import ConfigError, RunConfig
    from pipelines.discover import DiscoveryError
    from pipelines.manifest import IdentityError
    from pipelines.responders import ResponderThresholds
    from pipelines.summary import format_summary
    from pipelines.week import process_week

    try:
        cfg = RunConfig(
            week=args.week, raw=args.raw, out=args.out, exclude=args.exclude,
            buckets=args.buckets, batch_rows=args.batch_rows,
            responders=ResponderThresholds(args.responder_min_hosts, args.responder_min_share,
                                           args.many_ports),
            country_db=args.geoip_country_db or None, asn_db=args.geoip_asn_db or None,
            geoip_cache=args.geoip_cache).validate()
        beam_args = beam_args_for(extra)
        manifest = process_week(cfg, beam_args)
        summary = None if args.quiet else format_summary(manifest, cfg.out)
    except (ConfigError, DiscoveryError) as exc:
        print(f"portcensus: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IdentityError as exc:
        print(f"portcensus: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 -- the CLI edge: one line, never a traceback
        logging.getLogger("portcensus").debug("run failed", exc_info=True)
        print(f"portcensus: run failed: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    if summary:
        print(summary)
    return EXIT_DAMAGED if manifest["files_damaged"] else EXIT_OK


def _demo(args) -> int:
    import os
    from scanners.synth.demo import write_demo_week
    target = os.path.join(args.raw, args.week)
    if os.path.isdir(target) and os.listdir(target) and not args.force:
        print(f"demo week already present in {target} (use --force to rewrite)")
        return EXIT_OK
    truth = write_demo_week(args.raw, args.week, args.seed)
    print(f"wrote demo week {args.week} to {target}: {len(truth.get('files', {}))} files")
    return EXIT_OK


def _drop_beam_noise(record: logging.LogRecord) -> bool:
    # Beam warns at import time about Google Cloud client libraries we do not use.
    return "apitools not found" not in record.getMessage()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:300]


if __name__ == "__main__":
    sys.exit(main())
