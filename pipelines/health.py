"""``portcensus status --check``: is what is published whole and current?

Judges the rows of ``pipelines.orchestrate.status_rows`` for monitoring (a
cron line, Nagios, a systemd timer). A problem is

* a published week with damaged input files (each file named, with its
  damage kinds): its figures lack what the damage cut off;
* a week whose published data no longer matches what a run would use now:
  never published, raw files added, removed or changed since publication,
  or a changed opt-out list, GeoIP build, ``-k``, threshold or code (what
  ``weekly`` would redo). Raw files deleted after publication are not a
  problem (retention), only reported;
* staleness: the newest published week ended more than ``max_age_days``
  ago, or nothing is published at all (scans stopped arriving, or ``weekly``
  stopped running). ``max_age_days=0`` turns this off.

Example problem lines::

    2013-W37: 2 damaged files: masscan-p22-shard1of3.ndjson.gz (compression_truncated), ...
    2013-W38: not up to date: inputs changed: zmap-p1723.csv
    stale: the newest published week 2013-W38 ended 2013-09-22, 4,000 days ago (--max-age 8)
"""
from __future__ import annotations

import datetime

DEFAULT_MAX_AGE_DAYS = 8     # a weekly scan plus a day for landing and the Monday run
NOT_A_PROBLEM = ("raw files gone",)


def week_end(week: str) -> datetime.date:
    return datetime.date.fromisocalendar(int(week[:4]), int(week[6:]), 7)


def week_problems(row: dict) -> list[str]:
    out = []
    damaged = row.get("damaged_files") or []
    if damaged:
        names = ", ".join(f"{d['file']} ({', '.join(d['kinds']) or 'damaged'})" for d in damaged)
        out.append(f"{row['week']}: {len(damaged)} damaged file{'s' if len(damaged) != 1 else ''}: {names}")
    changes = [c for c in row.get("changes", []) if c not in NOT_A_PROBLEM]
    if changes:
        out.append(f"{row['week']}: not up to date: {'; '.join(changes)}")
    return out


def staleness(rows: list[dict], max_age_days: int, today: datetime.date) -> list[str]:
    if max_age_days <= 0:
        return []
    published = sorted(r["week"] for r in rows if r["published"])
    if not published:
        return ["stale: no week is published"]
    newest = published[-1]
    age = (today - week_end(newest)).days
    if age > max_age_days:
        return [f"stale: the newest published week {newest} ended {week_end(newest).isoformat()}, "
                f"{age:,} days ago (--max-age {max_age_days})"]
    return []


def check(rows: list[dict], max_age_days: int = DEFAULT_MAX_AGE_DAYS,
          today: datetime.date | None = None) -> list[str]:
    """Every problem, one line each; empty when all is well."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    problems = [p for r in rows for p in week_problems(r)]
    return problems + staleness(rows, max_age_days, today)
