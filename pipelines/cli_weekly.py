"""The weekly flow's edges for ``pipelines/cli_ops.py``: which weeks ``weekly``
considers (a missing or empty RAW is an error, misnamed folders a warning),
what ``--dry-run`` prints, and how the weeks' outcomes become output and one
exit code (the worst week's; the failed weeks raise ``WeeksFailed`` after the
others were published and the site rebuilt).
"""
from __future__ import annotations

import logging
import os
import sys

from pipelines import config as c
from pipelines.exits import EXIT_DAMAGED, EXIT_OK, EXIT_USAGE, WeeksFailed, worst

log = logging.getLogger("portcensus")


def weekly_raw_weeks(cfg: c.RunConfig, since: str | None) -> list[str]:
    """The weeks ``weekly`` considers. A missing, unmounted or empty RAW is an
    error, never "nothing to do"; a folder not named like a week is warned about."""
    from pipelines.discover import DiscoveryError, check_week
    from pipelines.orchestrate import weekly_weeks
    from pipelines.state import misnamed_week_dirs
    if since:
        try:
            check_week(since)
        except DiscoveryError as exc:
            raise c.ConfigError(f"--since: {exc}") from None
    if not os.path.isdir(cfg.raw):
        raise c.ConfigError(f"--raw {cfg.raw}: no such folder (not mounted?); nothing was processed")
    for name in misnamed_week_dirs(cfg.raw):
        log.warning(
            f"{os.path.join(cfg.raw, name)} is not named like a week (YYYY-Www, e.g. 2013-W37): "
            f"its files are not processed")
    if not weekly_weeks(cfg):
        raise c.ConfigError(f"--raw {cfg.raw} holds no week folder (YYYY-Www); empty or not mounted? "
                            f"nothing was processed")
    return weekly_weeks(cfg, since)


def report_outcomes(args, cfg: c.RunConfig, outcomes, site_files: dict) -> int:
    """Print the summaries (unless --quiet) and each failed week (always, one
    line; its traceback to the log file); the exit code of the weeks that
    published. Failed weeks raise WeeksFailed at the end, so that the CLI's
    one translation table gives their codes."""
    from pipelines.summary import format_summary
    codes = []
    for o in outcomes:
        if o.error is not None:
            msg = _one_line(o.error)
            kept = "its published version is unchanged" if o.manifest else "nothing of it is published"
            log.error(f"{msg if msg.startswith('week ' + o.week) else 'week ' + o.week + ': ' + msg}; {kept}",
                      exc_info=(type(o.error), o.error, o.error.__traceback__), extra={"week": o.week})
        elif o.ran:
            codes.append(EXIT_DAMAGED if o.damaged else EXIT_OK)
            if not args.quiet:
                say(format_summary(o.manifest, cfg.out))
        elif args.command == "run" and not args.quiet:
            say(f"week {o.week} is up to date (inputs, opt-outs, GeoIP data, settings and code unchanged); "
                f"--force to process it again")
    failed = [o for o in outcomes if o.error is not None]
    ran = [o for o in outcomes if o.published]
    if site_files and not args.quiet:
        pages = sum(1 for p in site_files if p.endswith(".html"))
        say(f"site: {pages} pages in {os.path.abspath(args.site)}/ (make serve to browse it)")
    if args.command == "weekly":
        line = (f"weekly: {len(outcomes)} weeks: {len(ran)} processed "
                f"({sum(o.damaged for o in ran)} with damaged inputs), {len(failed)} failed"
                f"{' (' + ', '.join(o.week for o in failed) + ')' if failed else ''}, "
                f"{len(outcomes) - len(ran) - len(failed)} up to date")
        if failed:
            raise WeeksFailed(line + ("; the site was rebuilt for the others" if site_files else ""),
                              [(o.week, o.error) for o in failed], codes)
        if not args.quiet:
            say(line if ran or site_files else "nothing to do: every week is up to date")
    return worst(codes)


def say(text: str) -> None:
    """print(), for a reader that may be gone (``portcensus run | head``):
    the weeks are published and the exit code is theirs whatever happens to
    stdout, so a closed pipe ends the printing, not the command. As Python's
    docs advise, stdout then points at devnull, so that the exit's flush
    does not fail in turn."""
    try:
        print(text)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def dry_run(cfg: c.RunConfig, args, weeks: list[str], force: bool, optout=None) -> int:
    """What a run would do and why; reads only (no lock, log, cache or staging).
    A week that would fail for want of files says so, and the dry run exits 2."""
    from pipelines.discover import DiscoveryError, discover
    from pipelines.orchestrate import plan_weeks, site_is_stale
    plan = plan_weeks(cfg, weeks, force, write_cache=False)
    todo, bad = [w for w, why in plan if why], []
    reapply = []
    if optout is not None:
        from pipelines.optout_reapply import pending
        from pipelines.optout_state import describe
        from pipelines.state import optout_digest
        say(describe(optout))
        if cfg.exclude:
            # as the real run: every published week not rerun here (pipelines/cli_ops.py)
            reapply = pending(cfg.out, optout_digest(cfg.exclude), lambda w: w not in todo)
        for w in reapply:
            say(f"would apply the opt-out list to the published data of {w} (not rerun)")
    for w, why in plan:
        if not why:
            say(f"{w}: up to date, would be skipped")
            continue
        try:
            discover(cfg.raw, w)
        except DiscoveryError as exc:
            bad.append(w)
            say(f"would fail {w}: {exc}")
            continue
        say(f"would process {w}: {'; '.join(why)}")
    if not args.no_site:
        if todo or reapply or force or site_is_stale(cfg.out, args.site):
            say(f"would rebuild the site in {os.path.abspath(args.site)}/")
        else:
            say("the site is up to date")
    say(f"dry run: {len(todo) - len(bad)} of {len(plan)} weeks would be processed"
        f"{f', {len(bad)} would fail' if bad else ''}; nothing was written")
    return EXIT_USAGE if bad else EXIT_OK


def raw_pruned(cfg: c.RunConfig) -> bool:
    """The week is published and RAW is there, but the week's raw folder is gone."""
    from pipelines.week import load_manifest
    return (os.path.isdir(cfg.raw) and not os.path.isdir(os.path.join(cfg.raw, cfg.week))
            and load_manifest(cfg.out, cfg.week) is not None)


def print_reapplied(args, reapplied: list[tuple[str, dict]]) -> None:
    for week, m in reapplied:
        r = m["optout_reapplied"][-1]
        if not getattr(args, "quiet", False):
            say(f"week {week}: opt-out list applied to its published data (raw files gone): "
                f"{r['observations_removed']:,} observations and {r['quarantine_rows_excluded']:,} quarantine "
                f"rows removed, {r['records_excluded']:,} records now excluded")
