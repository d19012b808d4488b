"""Subcommands that process weeks: run, reprocess, weekly, status, verify, demo.

Each handler returns an exit code; exceptions go up to ``pipelines.cli``,
which turns them into one line on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from pipelines import config as c
from pipelines.cli_beam import beam_args_for
from pipelines.cli_weekly import say
from pipelines.config_file import CONFIG_HELP
from pipelines import faults
from pipelines.responders import ResponderThresholds

from pipelines.exits import (EXIT_BUSY, EXIT_CHECK, EXIT_DAMAGED, EXIT_FAILED, EXIT_OK,  # noqa: F401
                             EXIT_REGRESSION, EXIT_USAGE, worst)

PROCESS_COMMANDS = ("run", "reprocess", "weekly")   # the commands that take Beam options
DEFAULT_MAX_AGE = 8
STATUS_EPILOG = """\
exit codes: 0 ok (or, with --check, every week whole and current), 2 usage,
            7 (--check) a week is damaged, stale or not up to date: the lines say which.
Example cron/monitoring line (mails only when something needs attention):
  portcensus status --check --quiet --raw /srv/scans/raw --out /srv/portcensus/data
"""
BEAM_HELP = """\
Beam options: any other --flag is handed to Apache Beam, e.g.
  --runner FnApiRunner            in-process runner (the default)
  --runner DirectRunner --direct_running_mode multi_processing --direct_num_workers 2
                                  use 2 worker processes
  --runner DaskRunner --dask_client_address tcp://127.0.0.1:8786
                                  a dask.distributed cluster (docs/SCALING.md)
  --direct_running_mode multi_threading --direct_num_workers 2
                                  2 threads in one process (not with --shuffle beam); the
                                  default for a week of 8 MiB or more on 2+ cores
  --direct_running_mode in_memory one thread, whatever the week's size
Beam options can also sit in the --config file's [beam] table.

exit codes: 0 ok or nothing to do, 1 failed, 2 usage or configuration error
            (also: --raw missing, unmounted or without week folders),
            3 published but some inputs were damaged, 4 another run holds the lock,
            5 the leak check blocked the new site (data published, site unchanged),
            6 a week was not replaced because the new run is a regression.
weekly goes on with the other weeks when one fails and exits with the worst code.
"""


def add_data_args(p: argparse.ArgumentParser, week: str | None) -> None:
    """Flags shared by every command that reads raw data or writes outputs."""
    if week == "required":
        p.add_argument("--week", required=True, help="ISO week, e.g. 2013-W37")
    p.add_argument("--raw", default=c.DEFAULT_RAW,
                   help=f"raw data root; a week's files are RAW/WEEK/** (default: {c.DEFAULT_RAW})")
    p.add_argument("--out", default=c.DEFAULT_OUT,
                   help=f"output root; each week is OUT/week=WEEK/ (default: {c.DEFAULT_OUT})")
    p.add_argument("--exclude", metavar="FILE",
                   help="opt-out list in masscan --excludefile syntax; matching records are counted as "
                        "excluded, never kept. Added to OUT's recorded list (OUT/state/optout.txt), which "
                        "every later command applies with or without this flag")
    p.add_argument("--geoip-country-db", metavar="MMDB", default=c.DEFAULT_COUNTRY_DB,
                   help="country database: GeoLite2/GeoIP2 Country or City, or DB-IP Country/City Lite "
                        "(.mmdb or .mmdb.xz; default: the embedded DB-IP Lite)")
    p.add_argument("--geoip-asn-db", metavar="MMDB", default=c.DEFAULT_ASN_DB,
                   help="ASN database: GeoLite2-ASN, GeoIP2-ISP or DB-IP ASN Lite (default: embedded DB-IP Lite)")
    p.add_argument("--geoip-cache", metavar="DIR", default=c.DEFAULT_GEOIP_CACHE,
                   help="where decompressed databases and their lookup tables are cached")
    p.add_argument("--config", metavar="TOML", help=CONFIG_HELP)


def add_settings_args(p: argparse.ArgumentParser) -> None:
    """Settings that change a week's data: processing uses them, and status
    compares them with what each week was published with."""
    th = ResponderThresholds
    p.add_argument("--responder-min-hosts", type=int, default=th.min_hosts,
                   help="addresses of one /24 or /48 with identical answers on a port before they count "
                        f"as one suspected responder (default: {th.min_hosts})")
    p.add_argument("--responder-min-share", type=float, default=th.min_share,
                   help=f"...and the share of that network's responders they must be (default: {th.min_share})")
    p.add_argument("--many-ports", type=int, default=th.many_ports,
                   help=f"flag addresses open on at least this many ports (default: {th.many_ports})")
    p.add_argument("-k", type=int, default=10, dest="k",
                   help="public aggregates: a value seen on fewer than K hosts folds into 'other' (default: 10)")


def add_inflation_arg(p: argparse.ArgumentParser) -> None:
    from scanners.compression import DEFAULT_MAX_INFLATION, INFLATION_FLOOR
    p.add_argument("--max-inflation", type=float, default=DEFAULT_MAX_INFLATION, metavar="RATIO",
                   help=f"a file may decompress to at most RATIO times its size (but always "
                        f"{INFLATION_FLOOR >> 20} MiB); the rest is decompression_limit damage, so a "
                        f"decompression bomb cannot take the machine down (default: {DEFAULT_MAX_INFLATION:g})")


def add_optout_state_args(p: argparse.ArgumentParser) -> None:
    """The only ways to shrink OUT's recorded opt-out list (logged as a warning)."""
    p.add_argument("--drop-optout-entries", metavar="FILE",
                   help="remove FILE's addresses from OUT's recorded opt-out list (masscan syntax); weeks "
                        "with raw files are reprocessed with the smaller list")
    p.add_argument("--replace-optout", metavar="FILE",
                   help="make FILE OUT's recorded opt-out list, whatever it held before")


def add_processing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--buckets", type=int, default=None,
                   help="dedup hash partitions (default: from the week's raw input size, one per "
                        f"{c.AUTO_BYTES_PER_BUCKET / 2**20:g} MiB rounded up to a power of two, at most "
                        f"{c.AUTO_BUCKETS_MAX}: a small week runs in few, a big one in many)")
    p.add_argument("--batch-rows", type=int, default=c.DEFAULT_BATCH_ROWS,
                   help=f"rows per Arrow batch read from a file (default: {c.DEFAULT_BATCH_ROWS})")
    p.add_argument("--merge-rows", type=int, default=c.DEFAULT_MERGE_ROWS,
                   help="most records the dedup merge holds at once; a bigger bucket is merged in "
                        f"several passes, which bounds memory (default: {c.DEFAULT_MERGE_ROWS:,})")
    p.add_argument("--shuffle", choices=c.SHUFFLE_MODES, default="files",
                   help="files: dedup rows go through Arrow files beside the run's staging folder and "
                        "only their names through the runner (flat memory; workers must share --out); "
                        "beam: the rows go through the runner's own shuffle (e.g. Dataflow's shuffle "
                        "service) (default: files)")
    p.add_argument("--week-slack", type=int, default=c.DEFAULT_WEEK_SLACK_HOURS, metavar="HOURS",
                   dest="week_slack_hours",
                   help="records up to this many hours before or after the ISO week still belong to it "
                        "(scans across midnight Sunday); others are quarantined as outside_week "
                        f"(default: {c.DEFAULT_WEEK_SLACK_HOURS})")
    p.add_argument("--allow-special-purpose", action="store_true",
                   help="keep addresses in IANA special-purpose space (private, loopback, documentation, "
                        "benchmarking ...) instead of excluding them: for scans of a test network only; "
                        "the manifest and the site say so")
    add_settings_args(p)
    add_inflation_arg(p)
    add_optout_state_args(p)
    p.add_argument("--force", action="store_true",
                   help="process even if inputs, opt-outs, GeoIP data, settings and code are unchanged "
                        "(the regression guard still applies)")
    p.add_argument("--site", default="site",
                   help="where the public site is (re)built after the data is published (default: site)")
    p.add_argument("--no-site", action="store_true", help="publish the data only; do not build the site")
    p.add_argument("--build-date", metavar="YYYY-MM-DD",
                   help="date printed on the site (default: derived from the latest week; never the clock)")
    p.add_argument("--site-config", metavar="TOML",
                   help="the site's [site] table: operator, contact, scanner ranges, scan policy, base URL "
                        "(default: the demo's fictional one, pipelines/report/demo_site.toml)")
    p.add_argument("--dry-run", action="store_true",
                   help="say which weeks would be processed and why, and whether the site would be "
                        "rebuilt; process, publish and write nothing (no lock, no log, no cache)")
    p.add_argument("--accept-regression", action="store_true",
                   help="publish a week even if it is worse than its published version (fewer usable "
                        "records, more damaged files, lower coverage); otherwise refused with exit 6")
    p.add_argument("--regression-threshold", type=float, default=c.DEFAULT_REGRESSION_THRESHOLD,
                   metavar="SHARE", help="how many fewer usable records (accepted + excluded) count as a "
                                         f"regression (default: {c.DEFAULT_REGRESSION_THRESHOLD}, i.e. 2%%)")
    p.add_argument("--quiet", action="store_true",
                   help="print no summary, only errors and portcensus's own warnings; the runner's "
                        "worker output goes to the log file")
    p.add_argument("--verbose", action="store_true", help="log progress to stderr too")


def add_parsers(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    run = sub.add_parser("run", formatter_class=fmt, epilog=BEAM_HELP,
                         help="process and publish one week (skipped if nothing changed)",
                         description="Read, validate, deduplicate and enrich one week of raw scanner files; "
                                     "publish clean Parquet, quarantine and a manifest proving "
                                     "read = accepted + quarantined + excluded + merged.")
    add_data_args(run, "required")
    add_processing_args(run)
    rep = sub.add_parser("reprocess", formatter_class=fmt, epilog=BEAM_HELP,
                         help="redo one week after its raw files were repaired (always runs)",
                         description="Like run --force: replaces only this week's outputs.")
    add_data_args(rep, "required")
    add_processing_args(rep)
    wk = sub.add_parser("weekly", formatter_class=fmt, epilog=BEAM_HELP,
                        help="the cron entry: process every week whose inputs are new or changed",
                        description="Process every week under RAW whose inputs, the opt-out list's entries, "
                                    "the GeoIP database builds, -k, the responder thresholds or the code "
                                    "changed since it was published, then rebuild the site. Exits 0 at once "
                                    "when nothing changed; a missing, unmounted or empty RAW is an error "
                                    "(exit 2), a folder not named like a week a warning.")
    add_data_args(wk, None)
    add_processing_args(wk)
    wk.add_argument("--since", metavar="WEEK", help="consider only weeks from WEEK on (e.g. 2026-W01): an "
                                                    "opt-out or GeoIP update then leaves older weeks as published")
    st = sub.add_parser("status", formatter_class=fmt, epilog=STATUS_EPILOG,
                        help="every known week: checksums, last run, damage, coverage, what changed",
                        description="List every week under RAW or OUT with its input checksums, last run, "
                                    "quarantine rate, coverage, damaged files and whether it is out of date. "
                                    "With --check, exit 7 when a week needs attention (for monitoring).")
    add_data_args(st, None)
    st.add_argument("--json", action="store_true", help="machine-readable output (with --check: a "
                                                        "'problems' list too)")
    st.add_argument("--check", action="store_true",
                    help="exit 7 when a week is damaged, not up to date (never published, raw files "
                         "changed since publication, or anything weekly would redo) or when the newest "
                         "published week is older than --max-age; print only the problems")
    st.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE, metavar="DAYS",
                    help=f"--check: the newest published week may have ended at most DAYS days ago "
                         f"(default: {DEFAULT_MAX_AGE}; 0: do not check)")
    add_settings_args(st)
    st.add_argument("--quiet", action="store_true", help="--check: print nothing when all is well")
    ver = sub.add_parser("verify", help="pre-flight a week's raw files without running the pipeline",
                         description="Sniff format and compression, check compression integrity and footers, "
                                     "count records and list damaged ranges. Writes nothing.")
    ver.add_argument("--week", required=True, help="ISO week, e.g. 2013-W37")
    ver.add_argument("--raw", default=c.DEFAULT_RAW, help=f"raw data root (default: {c.DEFAULT_RAW})")
    ver.add_argument("--json", action="store_true", help="machine-readable output")
    add_inflation_arg(ver)
    demo = sub.add_parser("demo", help="write the synthetic demo week (real scanner formats)")
    demo.add_argument("--raw", default=c.DEFAULT_RAW, help=f"raw data root (default: {c.DEFAULT_RAW})")
    demo.add_argument("--week", default="2013-W37", help="week folder to write (default: 2013-W37)")
    demo.add_argument("--seed", type=int, default=2013, help="random seed (default: 2013)")
    demo.add_argument("--force", action="store_true", help="rewrite the week even if it exists")
    demo.add_argument("--weeks", type=int, default=1,
                      help="write this many consecutive weeks from --week on, one population aged a week at "
                           "a time (churn, upgrades, a new release adopted) (default: 1)")


def refuse_remote(**paths: str | None) -> None:
    """Only local paths are supported for reading and publishing: the atomic
    swap, the lock and the checksum cache need a local file system. Refused
    up front, before anything is created (``--out s3://x`` made a local
    ``s3:`` folder and failed half way)."""
    for flag, path in paths.items():
        if path and "://" in path:
            raise c.ConfigError(f"--{flag.replace('_', '-')} {path}: only local paths are supported "
                                f"(mount the bucket or copy the files, then give the local path)")


def config_from(args, week: str | None = None) -> c.RunConfig:
    refuse_remote(raw=args.raw, out=args.out, site=getattr(args, "site", None))
    return c.RunConfig(
        week=week or getattr(args, "week", None) or "2000-W01", raw=args.raw, out=args.out,
        exclude=args.exclude,
        buckets=getattr(args, "buckets", None),
        batch_rows=getattr(args, "batch_rows", c.DEFAULT_BATCH_ROWS),
        merge_rows=getattr(args, "merge_rows", c.DEFAULT_MERGE_ROWS),
        shuffle=getattr(args, "shuffle", "files"),
        k=getattr(args, "k", 10),
        responders=ResponderThresholds(
            getattr(args, "responder_min_hosts", ResponderThresholds.min_hosts),
            getattr(args, "responder_min_share", ResponderThresholds.min_share),
            getattr(args, "many_ports", ResponderThresholds.many_ports)),
        country_db=args.geoip_country_db or None, asn_db=args.geoip_asn_db or None,
        geoip_cache=args.geoip_cache,
        week_slack_hours=getattr(args, "week_slack_hours", c.DEFAULT_WEEK_SLACK_HOURS),
        allow_special_purpose=getattr(args, "allow_special_purpose", False),
        pause_at=os.environ.get(faults.ENV),
        regression_threshold=getattr(args, "regression_threshold", c.DEFAULT_REGRESSION_THRESHOLD),
        accept_regression=getattr(args, "accept_regression", False),
        max_inflation=getattr(args, "max_inflation", 100.0)).validate()


def cmd_process(args, extra: list[str]) -> int:
    """run / reprocess / weekly (and their --dry-run)."""
    from pipelines.cli_weekly import dry_run, print_reapplied, raw_pruned, report_outcomes, weekly_raw_weeks
    from pipelines.lock import RunLock
    from pipelines.logs import Progress, setup_logging
    from pipelines.orchestrate import render, run_weeks, site_is_stale

    cfg = config_from(args)
    beam_args = beam_args_for(extra, cfg.shuffle)
    if not args.no_site:
        # Checked before any week runs: a site is never built without a contact.
        from pipelines.report.identity import SiteConfigError, load_site_config
        try:
            load_site_config(getattr(args, "site_config", None))
        except SiteConfigError as exc:
            print(f"portcensus {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if not args.dry_run:   # a dry run writes nothing under OUT, not even the log
        setup_logging(cfg.out, verbose=args.verbose, quiet=args.quiet)
    weekly = args.command == "weekly"
    weeks = weekly_raw_weeks(cfg, getattr(args, "since", None)) if weekly else [cfg.week]
    force = args.force or args.command == "reprocess"
    if args.dry_run:
        from pipelines.optout_state import previewed, resolve
        res = resolve(cfg.out, cfg.exclude, args.replace_optout, args.drop_optout_entries)
        with previewed(cfg.out, res) as path:
            cfg = dataclasses.replace(cfg, exclude=path)
            if args.command == "run" and raw_pruned(cfg):
                weeks = []    # as the real run: nothing to rerun, a new opt-out still reaches it
            return dry_run(cfg, args, weeks, force, res)
    from pipelines.orchestrate import apply_optout_state, reapply_optout
    progress = Progress()
    site_files = {}
    with RunLock(cfg.out):
        # OUT's recorded opt-out list (grown by --exclude) is what every week gets
        cfg = apply_optout_state(cfg, cfg.exclude, args.replace_optout, args.drop_optout_entries)
        if args.command == "run" and raw_pruned(cfg):
            weeks = []   # nothing to rerun; reapply_optout below still gives it a new opt-out
        outcomes = run_weeks(cfg, weeks, beam_args, force, keep_going=weekly, quiet=args.quiet,
                             on_week=lambda i, n, w, why: progress(i - 1, n, f"{w}: {'; '.join(why)}"))
        # every published week made with another list, not only those without raw
        # files: render publishes them all (weeks rerun above already match it)
        reapplied = reapply_optout(cfg, raw_gone_only=False)
        ran = [o for o in outcomes if o.published]
        site_config = getattr(args, "site_config", None)
        leak = None
        if not args.no_site and (ran or reapplied or force or site_is_stale(cfg.out, args.site, site_config)):
            from pipelines.leakcheck import LeakError
            try:
                site_files = render(cfg, args.site, args.build_date, site_config=site_config)
            except LeakError as exc:   # the weeks' outcomes must still be reported (failed weeks named)
                leak = exc
    print_reapplied(args, reapplied)
    if leak is None:
        return report_outcomes(args, cfg, outcomes, site_files)
    return _report_with_leak(args, cfg, outcomes, leak)


def _report_with_leak(args, cfg, outcomes, leak) -> int:
    """Log the refused site, then report the weeks as usual; exit with the worst code
    (a failed week's 1 outranks the leak's 5, which outranks the rest: exits.py)."""
    from pipelines.cli_weekly import report_outcomes
    from pipelines.exits import EXIT_LEAK, WeeksFailed, worst
    import logging
    logging.getLogger("portcensus").error(str(leak))
    try:
        code = report_outcomes(args, cfg, outcomes, {})
    except WeeksFailed as exc:
        exc.codes.append(EXIT_LEAK)
        raise
    return worst([code, EXIT_LEAK])


def cmd_status(args) -> int:
    from pipelines.health import check
    from pipelines.optout_state import previewed, resolve
    from pipelines.orchestrate import status_rows
    cfg = config_from(args)
    with previewed(cfg.out, resolve(cfg.out, cfg.exclude)) as path:   # compared with OUT's recorded list
        rows = status_rows(dataclasses.replace(cfg, exclude=path))
    problems = check(rows, args.max_age) if args.check else []
    code = EXIT_CHECK if problems else EXIT_OK
    if args.json:
        doc = {"weeks": rows, "problems": problems} if args.check else rows
        say(json.dumps(doc, indent=2, sort_keys=True))
        return code
    if args.check:
        for p in problems:
            say(p)
        if not problems and not args.quiet:
            say(f"ok: {sum(r['published'] for r in rows)} published weeks, all whole and up to date")
        return code
    if not rows:
        say(f"no weeks under {args.raw} or {args.out}")
        return EXIT_OK
    say(f"{'week':<9} {'published':<10} {'last run':<21} {'files':>5} {'damaged':>7} {'records':>11} "
        f"{'quar.%':>6} {'cover.':>6}  state")
    for r in rows:
        q = f"{100 * r['quarantine_rate']:.2f}" if r["quarantine_rate"] is not None else "-"
        cov = f"{r['coverage']:.3f}" if r["coverage"] is not None else "-"
        state = "up to date" if not r["changes"] else "; ".join(r["changes"])
        say(f"{r['week']:<9} {'yes' if r['published'] else 'no':<10} {r['last_run'] or '-':<21} "
            f"{r['files'] if r['files'] is not None else '-':>5} {r['damaged'] if r['damaged'] is not None else '-':>7} "
            f"{r['records']:>11,} {q:>6} {cov:>6}  {state}")
        for d in r["damaged_files"]:
            say(f"{'':<9} damaged: {d['file']} ({', '.join(d['kinds'])}; {d['records_kept']:,} records kept)")
        for name, digest in sorted(r["inputs"].items()):
            say(f"{'':<9} {digest}  {name}")
    return EXIT_OK


def cmd_verify(args) -> int:
    from pipelines.logs import Progress
    from pipelines.verify import format_checks, verify_week
    checks = verify_week(args.raw, args.week, progress=Progress(), max_inflation=args.max_inflation)
    if args.json:
        say(json.dumps([dict(vars(ch), ok=ch.ok, bytes_hold=ch.bytes_hold) for ch in checks], indent=2))
    else:
        say(format_checks(checks))
    return EXIT_OK if all(ch.ok for ch in checks) else EXIT_DAMAGED


def cmd_demo(args) -> int:
    from scanners.synth.demo import next_weeks, write_demo_week
    if args.weeks < 1:
        print("portcensus demo: --weeks must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    for age, week in enumerate(next_weeks(args.week, args.weeks)):
        target = os.path.join(args.raw, week)
        if os.path.isdir(target) and os.listdir(target) and not args.force:
            say(f"demo week already present in {target} (--force to rewrite)")
            continue
        truth = write_demo_week(args.raw, week, args.seed, age)
        say(f"wrote demo week {week} to {target}: {len(truth.get('files', {}))} files")
    return EXIT_OK


def dispatch(args, extra: list[str]) -> int | None:
    if args.command in ("run", "reprocess", "weekly"):
        return cmd_process(args, extra)
    if extra:
        print(f"portcensus {args.command}: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return EXIT_USAGE
    handler = {"status": cmd_status, "verify": cmd_verify, "demo": cmd_demo}.get(args.command)
    return handler(args) if handler else None
