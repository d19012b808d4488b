"""Contexts of the per-week pages: the week overview and one page per port.

Input: the weeks' ``WeekData`` (pipelines/report/load.py), oldest first.
Aggregates arrive sorted (biggest first within a dimension), so "top N" is a
slice; every other order here is explicit, so the same inputs give the same
pages.
"""
from __future__ import annotations

from pipelines.aggregate import OTHER
from pipelines.report import charts
from pipelines.report.breakdowns import tls_values, value_table
from pipelines.report.hostkeys import SSH_PORT, host_key_tables
from pipelines.report.context import (Column, DataTable, Link, Meta, PortPage, Quality, WeekPage,
                                      WeekSummary)
from pipelines.report.filters import pct, share, week_range
from pipelines.report.finding import coverage_flags, headline
from pipelines.report.load import WeekData
from pipelines.report.portcov import port_coverage
from pipelines.report.tls import alert_text, tls_parts, tls_text

TOP_BANNERS = 20
TOP_VALUES = 10
TREND_SERIES = 5
MOVERS = 10
BAR_PORTS = 15
BREAKDOWNS = (("product", "Products"), ("version", "Product versions"),
              ("os", "Operating systems"), ("device_type", "Device types"),
              ("country", "Countries"), ("asn", "Autonomous systems"))


class WeekIndex:
    """One week's aggregates by (port, transport) and dimension."""

    def __init__(self, data: WeekData, k: int):
        self.data, self.k = data, k
        self.week = data.week
        self.by_port: dict[tuple[int, str], dict[str, list[tuple[str, int, int]]]] = {}
        for r in data.aggregates.to_pylist():
            dims = self.by_port.setdefault((r["port"], r["transport"]), {})
            dims.setdefault(r["dimension"], []).append((r["value"], r["hosts_raw"], r["hosts_adjusted"]))

    def values(self, key: tuple[int, str], dim: str) -> list[tuple[str, int, int]]:
        return self.by_port.get(key, {}).get(dim, [])

    def total(self, key: tuple[int, str]) -> tuple[int, int]:
        rows = self.values(key, "total")
        return (rows[0][1], rows[0][2]) if rows else (0, 0)

    def ports(self) -> list[tuple[int, str]]:
        """Port keys with open hosts, biggest first, then by port."""
        keys = [k for k in self.by_port if self.total(k)[0] > 0]
        return sorted(keys, key=lambda k: (-self.total(k)[0], k[0], k[1]))

    def paged(self) -> list[tuple[int, str]]:
        """Ports that get their own page: at least k open hosts. Below k every
        value would be folded into "other", so such a page could say nothing."""
        return [key for key in self.ports() if self.total(key)[0] >= self.k]


def week_href(week: str) -> str:
    return f"weeks/{week}/index.html"


def port_href(week: str, port: int, transport: str) -> str:
    return f"weeks/{week}/port-{port}-{transport}.html"


def latest_href(port: int, transport: str) -> str:
    """A stable address that always leads to a port's page of the newest week:
    ``latest/port-22-tcp.html`` (and ``latest/index.html`` to the newest week)."""
    return f"latest/port-{port}-{transport}.html"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def coverage_sentence(manifest: dict) -> str:
    damaged = manifest.get("files_damaged", 0) or 0
    files = ("no input file was damaged" if damaged == 0 else
             f"{_plural(damaged, 'file was', 'files were')} damaged")
    cov = manifest.get("coverage")
    fraction = cov.get("fraction") if isinstance(cov, dict) else None
    if isinstance(fraction, (int, float)) and not isinstance(fraction, bool):
        low = cov.get("at_least")
        if cov.get("exact", "at_least" not in cov):
            return f"This week covers {pct(fraction)} of the targeted addresses; {files}."
        if isinstance(low, (int, float)) and low < fraction:
            return (f"This week covers about {pct(fraction)} of the targeted addresses (at least "
                    f"{pct(low)}, estimated from the intact shards); {files}.")
        return f"This week covers at least {pct(low)} of the targeted addresses; {files}."
    return ("Coverage is unknown for this week: the run did not record how many of the targeted "
            f"addresses were probed; {files}.")


def quality(week: str, manifest: dict) -> Quality:
    t = manifest.get("totals", {})
    reasons = DataTable(
        slug="quarantine-reasons", title="Records quarantined, by reason", scope=week,
        columns=(Column("reason", "Reason"), Column("records", "Records", "int", True)),
        rows=tuple((r, n) for r, n in sorted(manifest.get("quarantine_reasons", {}).items())),
        note="Quarantined records are kept aside with their reason; none is dropped silently.")
    damaged_rows = []
    # Files are numbered, not named: an operator's file name may hold an address.
    for i, f in enumerate(manifest.get("files", []), 1):
        if f.get("damaged"):
            kinds = ", ".join(sorted({d.get("kind", "?") for d in f.get("damage", [])}))
            damaged_rows.append((i, f.get("tool"), f.get("format"), f.get("compression"), kinds,
                                 (f.get("accepted", 0) or 0) + (f.get("merged", 0) or 0)))
    damaged = DataTable(
        slug="damaged-files", title="Damaged input files", scope=week,
        columns=(Column("file", "File no.", "int", True), Column("tool", "Tool"),
                 Column("format", "Format"), Column("compression", "Compression"),
                 Column("damage", "Damage"), Column("kept", "Records kept", "int", True)),
        rows=tuple(damaged_rows),
        note="Every complete record of a damaged file is used; what was cut off is counted above.")
    return Quality(
        manifest_version=manifest.get("manifest_version"),
        files_read=manifest.get("files_read", 0), files_damaged=manifest.get("files_damaged", 0),
        read=t.get("read", 0), accepted=t.get("accepted", 0), quarantined=t.get("quarantined", 0),
        merged=t.get("merged", 0), excluded=t.get("excluded", 0),
        identity_holds=bool(t.get("identity_holds")), reasons=reasons, damaged=damaged,
        ports_assumed=(manifest.get("port_evidence") or {}).get("records_port_assumed", 0),
        ports_given=len((manifest.get("port_evidence") or {}).get("files_port_given", {})),
        excluded_special=(manifest.get("excluded_reasons") or {}).get("special_purpose", 0),
        special_allowed=((manifest.get("run") or {}).get("special_purpose") or {}).get("excluded") is False)


def summary(ix: WeekIndex) -> WeekSummary:
    ports = ix.ports()
    return WeekSummary(
        week=ix.week, dates=week_range(ix.week), href=week_href(ix.week),
        open_raw=sum(ix.total(k)[0] for k in ports), open_adjusted=sum(ix.total(k)[1] for k in ports),
        ports=len(ports), coverage=coverage_sentence(ix.data.manifest),
        quality=quality(ix.week, ix.data.manifest))


def scanned_sentence(plan, ix: WeekIndex) -> str:
    if plan is not None:
        by_tr: dict[str, set] = {}
        for job in plan.jobs:
            by_tr.setdefault(job.transport, set()).update(job.ports)
        parts = [f"{tr.upper()} {', '.join(str(p) for p in sorted(ps))}" for tr, ps in sorted(by_tr.items())]
        return f"Ports probed (from the scan plan): {'; '.join(parts)}."
    return (f"The run did not record its scan plan, so this page lists the "
            f"{_plural(len(ix.ports()), 'port that', 'ports that')} answered.")


def _link(weeks: list[WeekIndex], i: int, key=None) -> Link | None:
    if not 0 <= i < len(weeks):
        return None
    w = weeks[i]
    if key is None:
        return Link(week_href(w.week), w.week)
    return Link(port_href(w.week, *key), w.week) if w.total(key)[0] >= w.k else None


def week_page(weeks: list[WeekIndex], i: int, meta: Meta, plan, k: int) -> WeekPage:
    ix = weeks[i]
    prev = weeks[i - 1] if i > 0 else None
    rows = []
    cov = port_coverage(ix.data.manifest, ix.data.facts)
    flags = coverage_flags(weeks, i)
    for key in ix.paged():
        raw, adj = ix.total(key)
        before = prev.total(key)[0] if prev else None
        name = f"{key[0]}/{key[1]}"
        c = cov.get(name)
        differs = None if c is None or prev is None else ("yes" if flags.get(name) else "no")
        rows.append((Link(port_href(ix.week, *key), name), raw, adj,
                     before, None if before is None else raw - before, c.fraction if c else None, differs))
    small = [key for key in ix.ports() if ix.total(key)[0] < k]
    label = f"Hosts in {prev.week}" if prev else "Previous week"
    ports = DataTable(
        slug="ports", title="Responding hosts per port", scope=ix.week, rows=tuple(rows),
        columns=(Column("port", "Port", "link"), Column("hosts_raw", "Open hosts", "int", True),
                 Column("hosts_adjusted", "Adjusted", "int", True),
                 Column("hosts_previous", label, "int", True),
                 Column("change", "Change", "delta", True),
                 Column("coverage", "Coverage", "pct", True),
                 Column("coverage_differs", "Coverage differs from last week")),
        note=("Coverage: the share of the port's targets its main job probed (the port page lists every "
              "job); where it differs from the previous week, part of the change is the scan. " + "Adjusted counts each suspected single responder (a whole /24 or /48 answering "
              "identically) once." + ("" if prev else " This is the first week: nothing to compare.")
              + (f" {_plural(len(small), 'more port', 'more ports')} had fewer than {k} open hosts "
                 f"each ({sum(ix.total(key)[0] for key in small):,} in all); the week's aggregates "
                 "download lists them." if small else "")))
    chart = charts.ports_chart(ix, "ports-chart", ix.week, BAR_PORTS)
    return WeekPage(meta=meta, summary=summary(ix), previous=_link(weeks, i - 1),
                    following=_link(weeks, i + 1), ports=ports, chart=chart,
                    scanned=scanned_sentence(plan, ix), k=k, from_clean=ix.data.from_clean,
                    headline=headline(ix, plan), sparklines=charts.sparklines_chart(weeks, i),
                    map=charts.map_chart(ix))


def _top20(ix: WeekIndex, key, total: int, k: int) -> tuple[DataTable, int]:
    values = ix.values(key, "banner")
    named = [(v, raw, adj) for v, raw, adj in values if v != OTHER]
    other = next(((raw, adj) for v, raw, adj in values if v == OTHER), None)
    said = sum(raw for _, raw, _ in values)
    rows = tuple((raw, v, share(raw, total), adj) for v, raw, adj in named[:TOP_BANNERS])
    note = (f"The {len(rows)} most common of {len(named):,} identification strings seen on at least "
            f"{k} hosts this week: count first, then the string, as the 2013 listing printed it."
            if rows else f"No identification string was seen on {k} or more hosts this week.")
    if other:
        note += (f" Another {_plural(other[0], 'host', 'hosts')} ({other[1]:,} adjusted) sent strings "
                 f"each seen on fewer than {k} hosts: counted as \u201cother\u201d, never shown.")
    port, tr = key
    columns = (Column("hosts_raw", "Hosts", "count", True), Column("banner", "Identification string", "banner"),
               Column("share", "Share", "pct", True), Column("hosts_adjusted", "Adjusted", "int", True))
    if any(tls_parts(r[1]) or alert_text(r[1]) for r in rows):
        # masscan's "TLS/1.0 cipher:0x4" in words, beside the string as sent
        rows = tuple((r[0], r[1], tls_text(r[1])) + r[2:] for r in rows)
        columns = columns[:2] + (Column("reads_as", "Reads as"),) + columns[2:]
        note += " “Reads as” names the TLS version and the IANA cipher suite the server chose."
    table = DataTable(
        slug=f"port-{port}-{tr}-top20", title=f"Top identification strings on {port}/{tr}, {ix.week}",
        scope=ix.week, rows=rows, note=note, css="top20", columns=columns)
    return table, max(0, total - said)


def _movers(ix: WeekIndex, prev: WeekIndex, key, k: int) -> tuple[DataTable, DataTable]:
    now = {v: raw for v, raw, _ in ix.values(key, "banner") if v != OTHER}
    before = {v: raw for v, raw, _ in prev.values(key, "banner") if v != OTHER}
    deltas = [(v, before.get(v), now.get(v), now.get(v, 0) - before.get(v, 0))
              for v in sorted(set(now) | set(before))]
    risers = sorted((d for d in deltas if d[3] > 0), key=lambda d: (-d[3], d[0]))[:MOVERS]
    fallers = sorted((d for d in deltas if d[3] < 0), key=lambda d: (d[3], d[0]))[:MOVERS]
    port, tr = key
    cols = (Column("banner", "Identification string", "banner"),
            Column("hosts_previous", prev.week, "int", True), Column("hosts_raw", ix.week, "int", True),
            Column("change", "Change", "delta", True))
    note = f"\u2014 means fewer than {k} hosts (or none) that week; the change then counts it as 0."
    return (DataTable(f"port-{port}-{tr}-risers", "Risers", cols, tuple(risers), ix.week, note),
            DataTable(f"port-{port}-{tr}-fallers", "Fallers", cols, tuple(fallers), ix.week, note))


def _trend(weeks: list[WeekIndex], i: int, key, k: int) -> tuple:
    ix = weeks[i]
    dim = "version" if any(v != OTHER for v, _, _ in ix.values(key, "version")) else "banner"
    top = [v for v, _, _ in ix.values(key, dim) if v != OTHER][:TREND_SERIES]
    if i == 0 or not top:
        return None, None
    span = weeks[: i + 1]
    series = []
    for v in top:
        per = []
        for w in span:
            found = [raw for val, raw, _ in w.values(key, dim) if val == v]
            per.append(found[0] if found else None)
        series.append((v, per))
    what = "product versions" if dim == "version" else "identification strings"
    port, tr = key
    table = DataTable(
        slug=f"port-{port}-{tr}-trend", title=f"Top {what} over the weeks", scope=ix.week,
        columns=(Column("value", "Value", "banner"),)
        + tuple(Column(f"hosts_{w.week}", w.week, "int", True) for w in span),
        rows=tuple((v,) + tuple(per) for v, per in series),
        note=f"\u2014 means fewer than {k} hosts (or none) that week.")
    return charts.shares_chart(weeks, i, key), table


def _breakdowns(ix: WeekIndex, key, k: int) -> tuple[DataTable, ...]:
    """The port's breakdowns that have any value, each adding up to its open hosts."""
    port, tr = key
    total = ix.total(key)
    out = []
    versions, suites = tls_values(ix.values(key, "banner"))
    if versions:
        out.append(value_table(f"port-{port}-{tr}-tls-version", "TLS versions chosen", ix.week, versions,
                               total, 20, k, what="versions"))
        out.append(value_table(f"port-{port}-{tr}-tls-cipher-suite", "TLS cipher suites chosen", ix.week,
                               suites, total, 20, k, what="cipher suites"))
    for dim, title in BREAKDOWNS:
        limit = TOP_VALUES if dim in ("country", "asn") else 20
        out.append(value_table(f"port-{port}-{tr}-{dim.replace('_', '-')}", title, ix.week, ix.values(key, dim),
                               total, limit, k, country=dim == "country",
                               what={"country": "countries", "asn": "networks"}.get(dim, "values")))
    return tuple(t for t in out if t is not None)


def port_coverage_parts(weeks: list[WeekIndex], i: int, key) -> tuple[str, DataTable | None, str]:
    """(sentence, jobs table, warning) of one port's coverage this week."""
    ix = weeks[i]
    name = f"{key[0]}/{key[1]}"
    cov = port_coverage(ix.data.manifest, ix.data.facts).get(name)
    if cov is None or cov.fraction is None:
        return (f"Coverage of {name} is not known for this week: the build had no record of which input "
                "files found its hosts.", None, "")
    if cov.exact:
        sentence = f"The scan of {name} covered {pct(cov.fraction)} of its targets."
    elif cov.at_least is not None and cov.at_least < cov.fraction:
        sentence = (f"The scan of {name} covered about {pct(cov.fraction)} of its targets (at least "
                    f"{pct(cov.at_least)}): a shard of its main job lost records.")
    else:
        sentence = f"The scan of {name} covered at least {pct(cov.at_least)} of its targets."
    jobs = DataTable(
        slug=f"port-{key[0]}-{key[1]}-coverage", title=f"Jobs that found open hosts on {name}", scope=ix.week,
        columns=(Column("job", "Job (input files by number)"), Column("shards", "Shards", "int", True),
                 Column("damaged_shards", "Damaged shards", "int", True),
                 Column("coverage", "Coverage", "pct", True), Column("coverage_at_least", "At least", "pct", True),
                 Column("hosts", "Hosts found", "int", True)),
        rows=tuple((j.label, j.shards, j.damaged, j.fraction, j.at_least, j.hosts) for j in cov.jobs),
        note="The port's coverage is that of the job that found most of its hosts (first row). Files are "
             "numbered as in the week page's list of damaged files.")
    warning = ""
    if i > 0:
        before = port_coverage(weeks[i - 1].data.manifest, weeks[i - 1].data.facts).get(name)
        if not cov.comparable(before):
            then = pct(before.fraction) if before and before.fraction is not None else "unknown"
            warning = (f"Coverage of {name} differs from {weeks[i - 1].week} ({then} then, {pct(cov.fraction)} "
                       "now): part of any change since then is the scan, not the Internet.")
    return sentence, jobs, warning


def port_page(weeks: list[WeekIndex], i: int, key, meta: Meta, k: int) -> PortPage:
    ix = weeks[i]
    raw, adj = ix.total(key)
    many = ix.values(key, "many_ports")
    top20, no_banner = _top20(ix, key, raw, k)
    breakdowns = _breakdowns(ix, key, k)
    prev = weeks[i - 1] if i > 0 else None
    risers, fallers = _movers(ix, prev, key, k) if prev else (None, None)
    trend, trend_table = _trend(weeks, i, key, k)
    return PortPage(
        meta=meta, week=ix.week, dates=week_range(ix.week), week_href=week_href(ix.week),
        port=key[0], transport=key[1], hosts_raw=raw, hosts_adjusted=adj,
        many_ports=many[0][1] if many else 0, k=k, top20=top20, no_banner=no_banner,
        breakdowns=breakdowns, compared_with=prev.week if prev else None,
        risers=risers, fallers=fallers, trend=trend, trend_table=trend_table,
        previous=_link(weeks, i - 1, key), following=_link(weeks, i + 1, key),
        host_keys=host_key_tables(ix.data.host_keys, ix.week)
        if key == SSH_PORT and ix.data.host_keys else (),
        age=charts.age_chart(ix, key),
        latest_href=latest_href(*key) if weeks[-1].total(key)[0] >= weeks[-1].k else "",
        **dict(zip(("coverage", "coverage_jobs", "coverage_warning"), port_coverage_parts(weeks, i, key))))
