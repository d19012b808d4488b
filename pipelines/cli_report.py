"""``portcensus render``: build the public site from the published weeks.

Wired into pipelines/cli.py through COMMAND_MODULES (``add_parsers`` and
``dispatch``). The library raises ReportError; this edge turns it into one
line and exit code 2 (the inputs or options need fixing). A run holding the
output folder's lock makes this exit 4 (via cli.translate), so the site is
never built from a week that is being swapped.
"""
from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_USAGE = 0, 2


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parsers(sub) -> None:
    from pipelines import config as c
    from pipelines.aggregate import DEFAULT_K
    p = sub.add_parser(
        "render", help="build the public static site from the published weeks",
        description="Render the anonymized weekly report (HTML, CSV, JSON, Parquet, Atom feed) from "
                    "OUT/week=*/manifest.json and OUT/week=*/aggregates/. The same inputs and build "
                    "date give byte-identical files; the site folder is replaced as a whole.")
    p.add_argument("--out", default=c.DEFAULT_OUT,
                   help=f"data root holding the published weeks (default: {c.DEFAULT_OUT})")
    p.add_argument("--site", default="site", help="folder to write the site to (default: site)")
    p.add_argument("--build-date", metavar="YYYY-MM-DD",
                   help="date printed as the build date (default: the Monday after the latest week; "
                        "the clock is never read)")
    p.add_argument("-k", type=_positive, default=DEFAULT_K,
                   help=f"show no value seen on fewer than K hosts; such values become 'other' "
                        f"(default: {DEFAULT_K})")
    p.add_argument("--plan", metavar="TOML",
                   help="scan plan (scanners/scanplan.toml) to state ports, rate and shards on the "
                        "methodology page")
    p.add_argument("--site-config", metavar="TOML",
                   help="the site's [site] table: operator, contact, scanner ranges, scan policy, base URL "
                        "(default: the demo's fictional one, pipelines/report/demo_site.toml)")
    p.add_argument("--from-clean", action="store_true",
                   help="for weeks published without aggregates, compute them from their clean Parquet")
    p.add_argument("--exclude", metavar="FILE",
                   help="opt-out list (masscan --excludefile syntax) to add to OUT's recorded list. The "
                        "recorded list is always applied: published weeks made with another list are "
                        "filtered (clean data, quarantine, aggregates) before the site is built")


def dispatch(args) -> int | None:
    if args.command != "render":
        return None
    from pipelines.lock import RunLock
    from pipelines.report.load import ReportError
    from pipelines.report.render import render_site
    if not os.path.isdir(args.out):
        print(f"portcensus render: data folder {args.out} does not exist", file=sys.stderr)
        return EXIT_USAGE
    try:
        with RunLock(args.out):
            reapplied = _apply_optout(args.out, getattr(args, "exclude", None))
            files = render_site(args.out, args.site, args.build_date, args.k, args.plan,
                                args.from_clean, site_config=args.site_config)
    except ReportError as exc:
        print(f"portcensus render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from pipelines.cli_ops import print_reapplied
    print_reapplied(args, reapplied)
    pages = sum(1 for p in files if p.endswith(".html"))
    print(f"wrote {len(files)} files ({pages} pages) to {args.site}")
    return EXIT_OK


def _apply_optout(out: str, exclude: str | None) -> list:
    """OUT's recorded opt-out list (grown by ``exclude``), applied to every
    published week made with another one: render reads no raw files, so such
    weeks are filtered where they are published (pipelines/optout_reapply.py)."""
    from pipelines.config import RunConfig
    from pipelines.orchestrate import apply_optout_state, reapply_optout
    from pipelines.week import published_weeks
    weeks = published_weeks(out)
    if not weeks:
        return []
    cfg = apply_optout_state(RunConfig(week=weeks[-1], out=out), exclude)
    return reapply_optout(cfg, raw_gone_only=False)
