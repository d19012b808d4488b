"""Operator flows on top of ``process_week``: incremental weekly runs,
reprocessing after repair, the site rebuild, and status.

The library raises; ``pipelines/cli_ops.py`` turns outcomes into messages and
exit codes. Every flow runs under ``RunLock`` (taken by the CLI).
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os

from pipelines.config import RunConfig
from pipelines.discover import DiscoveryError
from pipelines.faults import pause_at
from pipelines.state import current_inputs, raw_weeks, week_state
from pipelines.week import clear_stale_staging, load_manifest, process_week, published_weeks

log = logging.getLogger("portcensus")


@dataclasses.dataclass
class WeekOutcome:
    week: str
    ran: bool
    reasons: list[str]
    manifest: dict | None
    error: BaseException | None = None    # keep_going: why this week failed (nothing published)

    @property
    def damaged(self) -> bool:
        return bool(self.manifest and self.manifest.get("files_damaged") and self.error is None)

    @property
    def published(self) -> bool:
        return self.ran and self.error is None


def _current(cfg: RunConfig) -> dict:
    return current_inputs(cfg.exclude, cfg.country_db, cfg.asn_db, cfg.geoip_cache, cfg.k, cfg.responders)


def plan_weeks(cfg: RunConfig, weeks: list[str], force: bool,
               write_cache: bool = True) -> list[tuple[str, list[str]]]:
    """(week, reasons) for every week: reasons empty when it is up to date.
    Reads only (except the checksum cache, unless ``write_cache=False``):
    this is what ``--dry-run`` prints."""
    current = _current(cfg)
    plan = []
    for w in weeks:
        try:
            st = week_state(w, cfg.raw, cfg.out, current, write_cache)
        except DiscoveryError as exc:   # e.g. its folder is empty now: the run says so, loudly
            plan.append((w, [str(exc)]))
            continue
        plan.append((w, st.changes if st.needs_run else (["forced"] if force else [])))
    return plan


def run_weeks(cfg: RunConfig, weeks: list[str], beam_args: list[str], force: bool,
              on_week=None, keep_going: bool = False, quiet: bool = False) -> list[WeekOutcome]:
    """Process each of ``weeks`` that changed since it was published (all of
    them with ``force``). ``on_week(i, n, week, reasons)`` reports progress.

    With ``keep_going`` (``weekly``) a week that fails does not stop the
    others: its outcome carries the exception and nothing of it is published.
    ``quiet`` keeps the runner's worker processes off stderr."""
    from pipelines.logs import runner_stderr_captured
    clear_stale_staging(cfg.out)   # the caller holds the run lock: any staging is a dead run's
    outcomes = []
    todo = []
    for w, reasons in plan_weeks(cfg, weeks, force):
        if reasons:
            todo.append((w, reasons))
        else:
            outcomes.append(WeekOutcome(w, False, [], load_manifest(cfg.out, w)))
    for i, (w, reasons) in enumerate(todo):
        if on_week:
            on_week(i + 1, len(todo), w, reasons)
        log.info("processing week", extra={"week": w, "reasons": reasons})
        try:
            with runner_stderr_captured(quiet):
                manifest = process_week(dataclasses.replace(cfg, week=w), beam_args)
        except Exception as exc:  # noqa: BLE001 -- weekly goes on with the other weeks; the CLI translates
            if not keep_going:
                raise
            outcomes.append(WeekOutcome(w, True, reasons, load_manifest(cfg.out, w), exc))
            continue
        _record_last_run(cfg.out, w)
        log.info("published week", extra={"week": w, "totals": manifest["totals"],
                                           "files_damaged": manifest["files_damaged"]})
        outcomes.append(WeekOutcome(w, True, reasons, manifest))
    return sorted(outcomes, key=lambda o: o.week)


def apply_optout_state(cfg: RunConfig, exclude: str | None, replace: str | None = None,
                       drop: str | None = None) -> RunConfig:
    """``cfg`` with OUT's recorded opt-out list as its list, after adding
    ``exclude`` (or replacing/dropping, when asked) to the record. Call
    under the run lock (pipelines/optout_state.py)."""
    from pipelines.optout_state import apply, describe
    path, res = apply(cfg.out, exclude, replace, drop)
    log.info(describe(res), extra={"optout_change": res.change.value})
    return dataclasses.replace(cfg, exclude=path)


def reapply_optout(cfg: RunConfig, raw_gone_only: bool = True) -> list[tuple[str, dict]]:
    """Apply ``cfg.exclude`` (OUT's recorded list) to published weeks made
    with another list that will not be rerun: those without raw files
    (``raw_gone_only``), or every such week (``render``, which reads no raw
    files). [(week, new manifest)] (pipelines/optout_reapply.py)."""
    from pipelines.optout_reapply import pending, reapply_week
    from pipelines.state import optout_digest
    if not cfg.exclude:
        return []
    digest = optout_digest(cfg.exclude)
    only = (lambda w: not os.path.isdir(os.path.join(cfg.raw, w))) if raw_gone_only else None
    done = []
    for w in pending(cfg.out, digest, only):
        m = reapply_week(cfg.out, w, cfg.exclude, digest)
        r = m["optout_reapplied"][-1]
        log.info("opt-out applied to a published week", extra={"week": w, **r})
        done.append((w, m))
    return done


def _refuse_stale_optout(out: str) -> None:
    """Defence for render: a published week made with another opt-out list
    than OUT's recorded one would publish opted-out hosts. Callers apply the
    list first (reapply_optout); if one did not, refuse (OptOutStateError, exit 2)."""
    from pipelines.optout_reapply import pending
    from pipelines.optout_state import OptOutStateError, intervals_digest, recorded
    rec = recorded(out)
    if rec is None or (not rec[0] and not rec[1]):
        return
    stale = pending(out, intervals_digest(rec[0], rec[1]))
    if stale:
        raise OptOutStateError(f"not publishing: week(s) {', '.join(stale)} were made with another opt-out list "
                               f"than the one recorded in {out}/state; run `portcensus render --out {out}` "
                               f"to apply it first")


def _record_last_run(out: str, week: str) -> None:
    # Operational state, kept apart from the manifest so that published
    # outputs never depend on the clock.
    path = os.path.join(out, ".state", f"{week}.last_run")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def last_run(out: str, week: str) -> str | None:
    try:
        with open(os.path.join(out, ".state", f"{week}.last_run")) as f:
            return f.read().strip()
    except OSError:
        return None


def weekly_weeks(cfg: RunConfig, since: str | None = None) -> list[str]:
    """Every week that has a raw folder (the cron entry considers them all),
    or those from ``since`` on."""
    return [w for w in raw_weeks(cfg.raw) if since is None or w >= since]


def status_rows(cfg: RunConfig) -> list[dict]:
    """One row per known week (raw or published) for ``portcensus status``
    (pipelines/health.py judges them for ``status --check``)."""
    current = _current(cfg)
    weeks = sorted(set(raw_weeks(cfg.raw)) | set(published_weeks(cfg.out)))
    rows = []
    for w in weeks:
        m = load_manifest(cfg.out, w)
        has_raw = os.path.isdir(os.path.join(cfg.raw, w))
        try:
            changes = week_state(w, cfg.raw, cfg.out, current).changes if has_raw else ["raw files gone"]
        except DiscoveryError as exc:
            changes = [str(exc)]
        t = (m or {}).get("totals", {})
        read = t.get("read") or 0
        rows.append({
            "week": w,
            "published": m is not None,
            "last_run": last_run(cfg.out, w),
            "files": (m or {}).get("files_read"),
            "damaged": (m or {}).get("files_damaged"),
            "records": read,
            "accepted": t.get("accepted"),
            "quarantine_rate": (t.get("quarantined", 0) / read) if read else None,
            "coverage": ((m or {}).get("coverage") or {}).get("fraction"),
            "coverage_at_least": ((m or {}).get("coverage") or {}).get("at_least"),
            "damaged_files": [{"file": f["file"], "kinds": sorted({d["kind"] for d in f.get("damage", [])}),
                               "records_kept": f.get("accepted", 0) + f.get("merged", 0)}
                              for f in (m or {}).get("files", []) if f.get("damaged")],
            "inputs": {f["file"]: f["sha256"][:12] for f in (m or {}).get("files", [])},
            "changes": changes,
        })
    return rows


# -- the public site ----------------------------------------------------------
REPORT_DIRS = ("pipelines/report", "report_templates")


def site_fingerprint(out: str, site_config: str | None = None) -> str:
    """sha256 over everything a site build reads: each published week's
    manifest and aggregates, the renderer's code and templates, and the site
    config (--site-config; the default one is under pipelines/report)."""
    import glob
    import hashlib
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for w in published_weeks(out):
        for name in ("manifest.json", os.path.join("aggregates", "aggregates.parquet")):
            path = os.path.join(out, f"week={w}", name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    h.update(path.encode() + hashlib.sha256(f.read()).digest())
    for top in REPORT_DIRS:
        for path in sorted(glob.glob(os.path.join(root, top, "**", "*"), recursive=True)):
            if os.path.isfile(path) and "__pycache__" not in path:
                with open(path, "rb") as f:
                    h.update(os.path.relpath(path, root).encode() + hashlib.sha256(f.read()).digest())
    if site_config and os.path.isfile(site_config):
        with open(site_config, "rb") as f:
            h.update(b"site-config" + hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def _site_state(out: str) -> str:
    return os.path.join(out, ".state", "site.json")


def site_is_stale(out: str, site: str, site_config: str | None = None) -> bool:
    import json
    try:
        with open(_site_state(out)) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return True
    return (state.get("site") != os.path.abspath(site) or not os.path.isdir(site)
            or state.get("fingerprint") != site_fingerprint(out, site_config))


def render(cfg: RunConfig, site: str, build_date: str | None = None, plan_path: str | None = None,
           site_config: str | None = None) -> dict:
    """Rebuild the whole site from the published weeks and swap it in.

    Deterministic: other weeks' pages come out byte-identical, so replacing
    the folder changes exactly the pages that depend on what changed."""
    import json
    from pipelines.report.render import render_site
    if not published_weeks(cfg.out):
        return {}
    _refuse_stale_optout(cfg.out)
    files = render_site(cfg.out, site, build_date, cfg.k, plan_path,
                        before_swap=lambda: pause_at("render", cfg.pause_at), site_config=site_config)
    path = _site_state(cfg.out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump({"site": os.path.abspath(site), "fingerprint": site_fingerprint(cfg.out, site_config)}, f)
    os.replace(path + ".tmp", path)
    log.info("site written", extra={"site": site, "files": len(files)})
    return files
