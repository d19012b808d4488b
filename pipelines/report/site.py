"""Contexts of the whole site: home, methodology, opt-out, downloads and the
Atom feed, plus ``build_pages`` which makes every page's context (week and
port pages come from pipelines/report/pages.py).

Nothing here reads files or the clock: the inputs are the loaded weeks and
``SiteOptions`` (build date, k, our prose, the optional scan plan).
"""
from __future__ import annotations

import dataclasses
import re

import markdown
from markupsafe import Markup

from pipelines.aggregate import AGG_FILES, AGG_SCHEMA
from pipelines.report import charts
from pipelines.report.downloads import downloads_page, extra_files
from pipelines.report.context import (AliasPage, Column, DataTable, Feed, FeedEntry,
                                      HomePage, Link, Meta, MethodologyPage, OptoutPage, Output)
from pipelines.report.filters import atom_date, pct, points, signed, signed_pct, week_range
from pipelines.report.load import WeekData
from pipelines.report.finding import banner_changes, headline, port_changes
from pipelines.report.pages import (BAR_PORTS, WeekIndex, _top20, latest_href, port_href, port_page, summary,
                                    week_href, week_page)
from pipelines.schema import field_docs

SSH_KEY = (22, "tcp")
SHARD_RE = re.compile(r"-shard(\d+)of(\d+)\.")
DESCRIPTION = ("Which services answer on the Internet, week by week: open ports and what the services say "
               "about themselves, with every address removed.")
DBIP = Link("https://db-ip.com", "IP Geolocation by DB-IP")
MAXMIND = Link("https://www.maxmind.com", "GeoLite2 data created by MaxMind")


@dataclasses.dataclass(frozen=True)
class SiteOptions:
    build_date: str          # YYYY-MM-DD, an input: the site never reads the clock
    k: int
    methodology_md: str      # our own prose (Markdown); scan data never goes through Markdown
    optout_md: str
    plan: object | None = None   # scanners.plan.Plan, when the operator passes one
    identity: object | None = None   # pipelines.report.identity.SiteIdentity


def prose(text: str) -> Markup:
    return Markup(markdown.markdown(text, output_format="html"))


def _geo_dbs(weeks: list[WeekData]):
    for w in weeks:
        for role, info in sorted(((w.manifest.get("run") or {}).get("geoip") or {}).items()):
            yield w.week, role, info


def attribution(weeks: list[WeekData]) -> tuple[Link, ...]:
    """Credits the GeoIP licences require on pages that use their data."""
    types = {str(info.get("database_type", "")) for _, _, info in _geo_dbs(weeks)}
    out = []
    if any(t.upper().startswith("DBIP") for t in types):
        out.append(DBIP)
    if any("GEOLITE2" in t.upper() and not t.upper().startswith("DBIP") for t in types):
        out.append(MAXMIND)
    return tuple(out)


def tables_of(obj) -> list[DataTable]:
    """Every DataTable reachable from a page context, in field order."""
    if isinstance(obj, DataTable):
        return [obj] if obj.rows else []   # an empty table is neither shown nor published
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [t for f in dataclasses.fields(obj) for t in tables_of(getattr(obj, f.name))]
    if isinstance(obj, (tuple, list)):
        return [t for x in obj for t in tables_of(x)]
    return []


def _coverage_cells(cov) -> tuple:
    """Archive cells as numbers: the estimate, its lower bound, and how it is known."""
    if not isinstance(cov, dict) or not isinstance(cov.get("fraction"), (int, float)):
        return (None, None, "unknown")
    low = cov.get("at_least")
    low = low if isinstance(low, (int, float)) else cov["fraction"]
    if cov.get("exact", "at_least" not in cov):
        return (cov["fraction"], cov["fraction"], "exact")
    return (cov["fraction"], low, "estimate" if low < cov["fraction"] else "lower bound")


def home_page(weeks: list[WeekIndex], meta: Meta, plan=None, k: int = 10) -> HomePage:
    latest = weeks[-1]
    i = len(weeks) - 1
    top = DataTable(
        slug="latest-top-ports", title=f"Top ports in {latest.week}", scope="all",
        columns=(Column("port", "Port", "link"), Column("hosts_raw", "Open hosts", "int", True),
                 Column("hosts_adjusted", "Adjusted", "int", True)),
        rows=tuple((Link(port_href(latest.week, *k), f"{k[0]}/{k[1]}"),) + latest.total(k)
                   for k in latest.paged()[:10]),
        note=f"The {min(10, len(latest.paged()))} biggest of {len(latest.paged())} ports with at least "
             f"{latest.k} open hosts; the week page lists them all.")
    rows = []
    for w in reversed(weeks):
        s = summary(w)
        h = headline(w, plan)
        rows.append((Link(s.href, w.week), s.dates, h.addresses, h.services, s.open_raw, s.open_adjusted,
                     s.ports, s.quality.files_read, s.quality.files_damaged,
                     *_coverage_cells(w.data.manifest.get("coverage"))))
    archive = DataTable(
        slug="archive", title="Every week", scope="all", rows=tuple(rows),
        columns=(Column("week", "Week", "link"), Column("dates", "Dates"),
                 Column("addresses", "Addresses", "int", True), Column("services", "Services", "int", True),
                 Column("open_raw", "Open hosts", "int", True),
                 Column("open_adjusted", "Adjusted", "int", True), Column("ports", "Ports", "int", True),
                 Column("files", "Files", "int", True), Column("damaged", "Damaged", "int", True),
                 Column("coverage", "Coverage", "pct", True),
                 Column("coverage_at_least", "At least", "pct", True),
                 Column("coverage_kind", "Coverage is")),
        note="Addresses: distinct responding addresses; services: their open address:port pairs (both "
             "without many-port hosts). Open hosts are summed over ports, many-port hosts included: an "
             "address open on two ports counts twice.")
    chart = charts.ports_chart(latest, "ports-chart", latest.week, BAR_PORTS)
    ssh = ssh_href = None
    if latest.total(SSH_KEY)[0] >= latest.k:
        ssh = _top20(latest, SSH_KEY, latest.total(SSH_KEY)[0], latest.k)[0]
        ssh_href = port_href(latest.week, *SSH_KEY)
    return HomePage(meta=meta, latest=summary(latest), top_ports=top, chart=chart, archive=archive,
                    headline=headline(latest, plan), ssh=ssh, ssh_href=ssh_href,
                    ssh_changes=banner_changes(weeks, i, SSH_KEY, k) if ssh else None,
                    changes=port_changes(weeks, i, port_href, k),
                    previous_week=weeks[-2].week if len(weeks) > 1 else None,
                    map=charts.map_chart(latest), ssh_shares=charts.shares_chart(weeks, i, SSH_KEY) if ssh else None)


def _facts(weeks: list[WeekData], opts: SiteOptions) -> DataTable:
    last = weeks[-1].manifest
    run = last.get("run") or {}
    plan = opts.plan
    span = weeks[0].week if len(weeks) == 1 else f"{weeks[0].week} to {weeks[-1].week}"
    rows = [("Weeks published", f"{len(weeks)} ({span})")]
    if plan is not None:
        ports = sorted({(j.transport, p) for j in plan.jobs for p in j.ports})
        rows += [("Ports probed", ", ".join(f"{p}/{t}" for t, p in ports)),
                 ("Probe rate", f"{plan.rate:,} packets per second per shard"),
                 ("Shards", f"{plan.shards} machines share one random permutation per week")]
    else:
        shards = sorted({int(m.group(2)) for w in weeks for f in w.manifest.get("files", [])
                         for m in [SHARD_RE.search(f.get("file", ""))] if m})
        rows += [("Ports probed", "not recorded by the runs (see each week's list of ports that answered)"),
                 ("Probe rate", "not recorded by the runs"),
                 ("Shards", f"input files name up to {shards[-1]} shards" if shards else "not recorded")]
    optout = run.get("optout")
    rows.append(("Exclusions", "no opt-out list was applied in the latest week" if not optout else
                 f"{optout.get('entries', 0):,} opt-out entries covering "
                 f"{optout.get('ipv4_addresses', 0):,} IPv4 addresses and "
                 f"{optout.get('ipv6_ranges', 0):,} IPv6 ranges (latest week)"))
    th = run.get("responder_thresholds") or {}
    if th:
        rows.append(("Single responders", f"at least {th.get('min_hosts')} addresses of one /24 or /48 "
                     f"with identical answers, and at least {pct(th.get('min_share'), 0)} of that "
                     f"network's responders on the port"))
        rows.append(("Many-port hosts", f"flagged when open on at least {th.get('many_ports')} ports"))
    rows.append(("Suppression", f"values seen on fewer than {opts.k} hosts are shown only as \u201cother\u201d"))
    buckets = run.get("buckets", "?")
    rows.append(("Processing", f"portcensus {run.get('pipeline_version', '?')}, "
                 f"{buckets} dedup bucket{'' if buckets == 1 else 's'}, banners up to "
                 f"{run.get('max_banner_bytes', 0):,} bytes"))
    return DataTable(slug="methodology-facts", title="How the latest week was made", scope="all",
                     columns=(Column("fact", "What"), Column("value", "How")), rows=tuple(rows))


def methodology_page(weeks: list[WeekData], opts: SiteOptions, meta: Meta) -> MethodologyPage:
    geo = DataTable(
        slug="geoip-databases", title="GeoIP databases used", scope="all",
        columns=(Column("week", "Week"), Column("role", "Lookup"), Column("type", "Database"),
                 Column("build_date", "Built"), Column("sha256", "SHA-256 (first 16)")),
        rows=tuple((wk, role, info.get("database_type"), str(info.get("build_date", ""))[:10],
                    str(info.get("sha256", ""))[:16]) for wk, role, info in _geo_dbs(weeks)))
    docs = field_docs(AGG_SCHEMA)
    fields = DataTable(
        slug="aggregate-fields", title="Columns of the published aggregates", scope="all",
        columns=(Column("column", "Column"), Column("meaning", "Meaning")),
        rows=tuple((name, docs[name]) for name in AGG_SCHEMA.names))
    return MethodologyPage(meta=meta, prose=prose(opts.methodology_md), facts=_facts(weeks, opts),
                           geoip=geo, fields=fields, k=opts.k)


def optout_page(weeks: list[WeekData], opts: SiteOptions, meta: Meta) -> OptoutPage:
    rows = []
    for w in reversed(weeks):
        o = (w.manifest.get("run") or {}).get("optout")
        excluded = (w.manifest.get("totals") or {}).get("excluded", 0)
        if o:
            rows.append((w.week, "yes", o.get("entries"), o.get("ipv4_addresses"), o.get("ipv6_ranges"), excluded))
        else:
            rows.append((w.week, "no", None, None, None, excluded))
    table = DataTable(
        slug="optout-weeks", title="Opt-out list applied, per week", scope="all", rows=tuple(rows),
        columns=(Column("week", "Week"), Column("applied", "List applied"),
                 Column("entries", "Entries", "int", True),
                 Column("ipv4_addresses", "IPv4 addresses", "int", True),
                 Column("ipv6_ranges", "IPv6 ranges", "int", True),
                 Column("excluded", "Records excluded", "int", True)),
        note="Only counts are published; the list itself stays private.")
    return OptoutPage(meta=meta, prose=prose(opts.optout_md), weeks=table)


def _n(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def finding_text(weeks: list[WeekIndex], i: int, plan, k: int) -> str:
    """The week's finding in two or three plain sentences (the feed entry)."""
    w = weeks[i]
    h = headline(w, plan)
    who = f"{h.addresses:,} responding addresses" if h.addresses is not None else "Responding addresses unknown"
    text = f"{who}, {_n(h.services, 'service')} on {_n(h.ports, 'port')} (many-port hosts apart)."
    changes = port_changes(weeks, i, port_href, k)
    moved = [r for r in (changes.rows if changes else ()) if r[7].startswith("beyond noise")]
    if moved:
        r = moved[0]
        rel = f" ({signed_pct(r[4])})" if r[4] is not None else ""
        text += f" Biggest change since {weeks[i - 1].week}: {r[0].text} {signed(r[3])}{rel} open hosts."
    elif changes is not None:
        text += f" No port changed beyond noise since {weeks[i - 1].week}."
    ssh = banner_changes(weeks, i, SSH_KEY, k) if w.total(SSH_KEY)[0] >= w.k else None
    moved = [r for r in (ssh.rows if ssh else ()) if r[6] == "beyond noise"]
    if moved:
        text += f" On 22/tcp, {moved[0][0]} moved {points(moved[0][3])} to {pct(moved[0][2])} of hosts."
    return f"{text} {summary(w).coverage}"


def feed(weeks: list[WeekIndex], meta: Meta, plan=None, k: int = 10) -> Feed:
    """Atom: absolute links from the configured base URL, and ids built on it
    (the page's URL), so two sites never share an id."""
    base = meta.identity.base_url if meta.identity else ""
    entries = []
    for i in reversed(range(len(weeks))):
        w = weeks[i]
        h = headline(w, plan)
        entries.append(FeedEntry(
            id=base + week_href(w.week), updated=atom_date(w.week), href=base + week_href(w.week),
            title=f"Week {w.week} ({week_range(w.week)}): {_n(h.services, 'service')} on {_n(h.ports, 'port')}",
            summary=finding_text(weeks, i, plan, k)))
    return Feed(meta=meta, id=base + "feed.xml", updated=atom_date(weeks[-1].week), entries=tuple(entries))


def alias_pages(weeks: list[WeekIndex], meta) -> list[tuple[str, Output]]:
    """``latest/``: one page per port of the newest week (and one for the
    week) that sends the reader on to it, so a link to a port's latest
    numbers never goes stale. A static site has no redirects of its own:
    a zero-second refresh, a canonical link and a plain link do it."""
    latest = weeks[-1]
    out = [("latest/index.html", week_href(latest.week), f"Week {latest.week}")]
    out += [(latest_href(*key), port_href(latest.week, *key), f"Port {key[0]}/{key[1]}, week {latest.week}")
            for key in latest.paged()]
    return [(path, Output("alias.html", AliasPage(meta(path, f"Latest: {label}", "weeks"), target, label)))
            for path, target, label in out]


def _unique(tables: list[DataTable]) -> list[DataTable]:
    """Tables by download path; one path must always mean one table."""
    seen: dict[str, DataTable] = {}
    for t in tables:
        if t.csv in seen and seen[t.csv] != t:
            raise ValueError(f"two different tables want {t.csv}")
        seen[t.csv] = t
    return [seen[p] for p in sorted(seen)]


def build_pages(weeks: list[WeekData], opts: SiteOptions):
    """(every page's context, every table to publish as CSV/JSON, the other
    data files: all-weeks tables and datapackage.json)."""
    att = attribution(weeks)

    def meta(path: str, title: str, section: str, description: str = "") -> Meta:
        return Meta(path=path, title=title, section=section, build_date=opts.build_date, attribution=att,
                    identity=opts.identity, description=description or DESCRIPTION)

    ix = [WeekIndex(w, opts.k) for w in weeks]
    last = len(ix) - 1
    pages: list[tuple[str, Output]] = [
        ("index.html", Output("home.html", home_page(ix, meta(
            "index.html", "Weekly port census", "home",
            f"Week {ix[last].week}: " + finding_text(ix, last, opts.plan, opts.k)), opts.plan, opts.k)))]
    for i, w in enumerate(ix):
        path = week_href(w.week)
        pages.append((path, Output("week.html", week_page(ix, i, meta(
            path, f"Week {w.week}", "weeks", finding_text(ix, i, opts.plan, opts.k)), opts.plan, opts.k))))
        for key in w.paged():
            path = port_href(w.week, *key)
            title = f"Port {key[0]}/{key[1]}, week {w.week}"
            what = f"{w.total(key)[0]:,} open hosts on {key[0]}/{key[1]} in week {w.week} ({week_range(w.week)})"
            pages.append((path, Output("port.html", port_page(
                ix, i, key, meta(path, title, "weeks", f"{what}: identification strings, versions, "
                                 "countries and networks."), opts.k))))
    pages.append(("methodology.html", Output("methodology.html", methodology_page(
        weeks, opts, meta("methodology.html", "Methodology", "methodology")))))
    pages.append(("optout.html", Output("optout.html", optout_page(
        weeks, opts, meta("optout.html", "Opt out", "optout")))))
    tables = _unique([t for _, o in pages for t in tables_of(o.page)])
    extra = extra_files(weeks, tables, opts.identity)
    pages.append(("downloads.html", Output("downloads.html", downloads_page(
        weeks, tables, extra, meta("downloads.html", "Downloads", "downloads")))))
    pages.append(("feed.xml", Output("feed.xml", feed(ix, meta("feed.xml", "portcensus weekly", "feed"),
                                                      opts.plan, opts.k))))
    pages += alias_pages(ix, meta)
    return pages, tables, extra
