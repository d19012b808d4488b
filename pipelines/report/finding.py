"""The week's finding, for the top of the home and week pages: the headline
numbers, the SSH top-20 in the 2013 shape, and what changed since the
previous week, with a noise floor so that a wobble is not news.

Headline: distinct responding addresses and services (address:port pairs)
come from the week's facts (pipelines/report/facts.py) when its clean data
is at hand, else from the aggregates (services only); many-port hosts are
counted apart and never as ports. "Ports in the plan" comes from the scan
plan when the site has one.

Noise floor: a change of a count is *beyond noise* when it is at least k
hosts and at least two standard deviations of the difference of two Poisson
counts, |now - before| >= 2 * sqrt(now + before). Changes on a port whose
coverage differs between the weeks are flagged: part of them is the scan,
not the Internet.
"""
from __future__ import annotations

import dataclasses
import math

from pipelines.report.context import Column, DataTable, Link
from pipelines.report.filters import share
from pipelines.report.portcov import port_coverage

CHANGES = 10


@dataclasses.dataclass(frozen=True)
class Headline:
    addresses: int | None          # distinct open addresses, many-port hosts excluded (None: unknown)
    services: int                  # open address:port pairs, many-port hosts excluded
    ports: int                     # port/transport pairs those services are on
    planned: int | None            # ports in the scan plan (None: no plan)
    outside_plan: tuple[str, ...]  # ports that answered but the plan does not list
    many_port_hosts: int | None    # addresses open on implausibly many ports (None: unknown)
    many_port_services: int        # their open address:port pairs


def planned_ports(plan) -> set[str] | None:
    if plan is None:
        return None
    return {f"{p}/{j.transport}" for j in plan.jobs for p in j.ports}


def headline(ix, plan) -> Headline:
    facts = ix.data.facts
    flagged = {f"{p}/{t}": (ix.values((p, t), "many_ports") or [("", 0, 0)])[0][1] for p, t in ix.ports()}
    answered = {f"{p}/{t}" for p, t in ix.ports() if ix.total((p, t))[0] - flagged[f"{p}/{t}"] > 0}
    planned = planned_ports(plan)
    outside = tuple(sorted(answered - planned, key=lambda s: (int(s.split("/")[0]), s))) if planned else ()
    if facts:
        return Headline(facts["addresses"], facts["services"], facts["ports"],
                        len(planned) if planned else None, outside, facts["many_port_hosts"],
                        facts["many_port_services"])
    total = sum(ix.total(k)[0] for k in ix.ports())
    many = sum(flagged.values())
    return Headline(None, total - many, len(answered), len(planned) if planned else None, outside, None, many)


def beyond_noise(before: int, now: int, k: int) -> bool:
    diff = abs(now - before)
    return diff >= k and diff >= 2 * math.sqrt(now + before)


def coverage_flags(weeks, i) -> dict[str, bool]:
    """{"22/tcp": True} where this week's coverage of the port differs from the previous week's."""
    if i == 0:
        return {}
    now = port_coverage(weeks[i].data.manifest, weeks[i].data.facts)
    before = port_coverage(weeks[i - 1].data.manifest, weeks[i - 1].data.facts)
    return {p: not c.comparable(before.get(p)) for p, c in now.items()}


def port_changes(weeks, i, href, k: int) -> DataTable | None:
    """The biggest changes of open hosts per port since the previous week."""
    if i == 0:
        return None
    ix, prev = weeks[i], weeks[i - 1]
    flags = coverage_flags(weeks, i)
    now_all = sum(ix.total(key)[0] for key in ix.ports())
    before_all = sum(prev.total(key)[0] for key in prev.ports())
    rows = []
    for key in sorted(set(ix.paged()) | set(prev.paged())):
        now, before = ix.total(key)[0], prev.total(key)[0]
        if now == before:
            continue
        name = f"{key[0]}/{key[1]}"
        label = Link(href(ix.week, *key), name) if now >= ix.k else Link(href(prev.week, *key), name)
        rel = None if before == 0 else (now - before) / before
        verdict = "beyond noise" if beyond_noise(before, now, k) else "within noise"
        if flags.get(name, False) and verdict == "beyond noise":
            verdict += "; coverage differs"
        rows.append((label, before, now, now - before, rel, share(now, now_all), share(before, before_all),
                     verdict))
    rows.sort(key=lambda r: (r[7] == "within noise", -abs(r[3]), r[0].text))
    shown = rows[:CHANGES]
    return DataTable(
        slug="changes-ports", title=f"Open hosts per port: {prev.week} to {ix.week}", scope=ix.week,
        rows=tuple(shown),
        columns=(Column("port", "Port", "link"), Column("hosts_previous", prev.week, "int", True),
                 Column("hosts_raw", ix.week, "int", True), Column("change", "Change", "delta", True),
                 Column("relative_change", "Relative", "pctdelta", True),
                 Column("share", f"Share {ix.week}", "pct", True),
                 Column("share_previous", f"Share {prev.week}", "pct", True),
                 Column("verdict", "Beyond noise?")),
        note=(f"The {len(shown)} biggest of {len(rows)} changed ports, changes beyond noise first. "
              f"A change is beyond noise when it is at least {k} hosts and at least 2\u00d7\u221a(sum of both "
              "weeks' counts); \u201ccoverage differs\u201d means the scan reached a different share of this "
              "port's targets in the two weeks, so part of the change is the scan.") if rows else
             "No port changed its count of open hosts.")


def banner_changes(weeks, i, key, k: int) -> DataTable | None:
    """Shares of the port's top identification strings, this week against the previous."""
    if i == 0:
        return None
    ix, prev = weeks[i], weeks[i - 1]
    now_total, before_total = ix.total(key)[0], prev.total(key)[0]
    now = {v: raw for v, raw, _ in ix.values(key, "banner") if v != "other"}
    before = {v: raw for v, raw, _ in prev.values(key, "banner") if v != "other"}
    if not now_total or not before_total:
        return None
    rows = []
    for v in set(now) | set(before):
        a, b = share(now.get(v, 0), now_total), share(before.get(v, 0), before_total)
        rows.append((v, b, a, a - b, before.get(v), now.get(v),
                     "beyond noise" if beyond_noise(before.get(v, 0), now.get(v, 0), k) else "within noise"))
    rows.sort(key=lambda r: (-abs(r[3]), r[0]))
    shown = rows[:CHANGES]
    port, tr = key
    return DataTable(
        slug=f"changes-port-{port}-{tr}-shares", title=f"Shares of {port}/{tr} identification strings: "
        f"{prev.week} to {ix.week}", scope=ix.week, rows=tuple(shown),
        columns=(Column("banner", "Identification string", "banner"),
                 Column("share_previous", prev.week, "pct", True), Column("share", ix.week, "pct", True),
                 Column("share_change", "Change", "points", True),
                 Column("hosts_previous", f"Hosts {prev.week}", "int", True),
                 Column("hosts_raw", f"Hosts {ix.week}", "int", True), Column("verdict", "Beyond noise?")),
        note=f"The {len(shown)} biggest moves in share (percentage points) of {len(rows)} strings seen on "
             f"at least {k} hosts in either week; \u2014 means fewer than {k} hosts that week.")
