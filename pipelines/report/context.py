"""One typed context per page (datasette style): everything a template shows
is computed before any template runs, so templates only place values.

Paths are site-relative (``weeks/2013-W37/port-22-tcp.html``); a page turns
them into relative links with its ``root`` ("../../"), so the site works
from any folder or URL prefix, and from ``file://``.
"""
from __future__ import annotations

import dataclasses

from markupsafe import Markup


@dataclasses.dataclass(frozen=True)
class Link:
    href: str      # site-relative path, or an absolute https:// URL
    text: str


@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"     # text | banner | int | count | pct | delta | pctdelta | points | link (filters.cell)
    numeric: bool = False


@dataclasses.dataclass(frozen=True)
class DataTable:
    """A table on a page, also published as CSV and JSON under data/<scope>/."""
    slug: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple, ...]        # cell values in column order; Link for kind "link"
    scope: str                     # a week, or "all"
    note: str = ""
    css: str = ""                  # extra class (e.g. "top20")

    @property
    def csv(self) -> str:
        return f"data/{self.scope}/{self.slug}.csv"

    @property
    def json(self) -> str:
        return f"data/{self.scope}/{self.slug}.json"


@dataclasses.dataclass(frozen=True)
class Chart:
    """A picture (pipelines/report/charts.py): its SVG is published at
    ``path`` and its Vega-Lite spec at ``spec``; ``data`` is published as
    CSV/JSON like every table; ``alt`` says in words what it shows."""
    slug: str
    scope: str                     # a week, or "all"
    title: str
    alt: str
    svg: bytes
    data: DataTable
    kind: str                      # bars | lines | sparklines | distribution | map
    width: int                     # the SVG's viewBox, for the <img> size hint
    height: int
    note: str = ""

    @property
    def path(self) -> str:
        return f"charts/{self.scope}/{self.slug}.svg"

    @property
    def spec(self) -> str:
        return f"charts/{self.scope}/{self.slug}.json"


@dataclasses.dataclass(frozen=True)
class Meta:
    path: str                      # output path of the page
    title: str
    section: str                   # home | weeks | methodology | optout | downloads
    build_date: str
    attribution: tuple[Link, ...]  # data licences that must be credited on every page
    identity: object = None        # pipelines.report.identity.SiteIdentity: operator, contact
    description: str = ""          # one sentence for link previews (og:description)

    @property
    def root(self) -> str:
        return "../" * self.path.count("/")

    @property
    def url(self) -> str:
        """The page's absolute URL (link previews, feed)."""
        base = self.identity.base_url if self.identity else ""
        return base + ("" if self.path == "index.html" else self.path)


@dataclasses.dataclass(frozen=True)
class Quality:
    manifest_version: int | None
    files_read: int
    files_damaged: int
    read: int
    accepted: int
    quarantined: int
    merged: int
    excluded: int
    identity_holds: bool
    reasons: DataTable             # quarantined by reason
    damaged: DataTable             # damaged files and their damage kinds
    ports_assumed: int = 0         # records whose port is a zgrab2 module default (no evidence)
    ports_given: int = 0           # files whose one port came from a sidecar or file name
    excluded_special: int = 0      # records in IANA special-purpose space (excluded)
    special_allowed: bool = False  # the run kept special-purpose space (a test network)


@dataclasses.dataclass(frozen=True)
class WeekSummary:
    week: str
    dates: str
    href: str
    open_raw: int                  # open (address, port) observations, all ports
    open_adjusted: int
    ports: int                     # port/transport pairs with at least one open host
    coverage: str                  # the honest coverage sentence
    quality: Quality


@dataclasses.dataclass(frozen=True)
class HomePage:
    meta: Meta
    latest: WeekSummary
    top_ports: DataTable
    chart: Chart
    archive: DataTable
    headline: object = None                # pipelines.report.finding.Headline
    ssh: DataTable | None = None           # the SSH top-20 of the latest week, 2013 shape
    ssh_href: str | None = None
    ssh_changes: DataTable | None = None   # shares of SSH strings against the previous week
    changes: DataTable | None = None       # open hosts per port against the previous week
    previous_week: str | None = None
    map: Chart | None = None               # open services per country, latest week
    ssh_shares: Chart | None = None        # shares of the top SSH versions over all weeks


@dataclasses.dataclass(frozen=True)
class WeekPage:
    meta: Meta
    summary: WeekSummary
    previous: Link | None
    following: Link | None
    ports: DataTable               # every port: raw, adjusted, previous week, change
    chart: Chart
    scanned: str                   # which ports were probed, and where that is known from
    k: int
    from_clean: bool
    headline: object = None        # pipelines.report.finding.Headline
    sparklines: Chart | None = None  # open hosts per port over the weeks so far
    map: Chart | None = None


@dataclasses.dataclass(frozen=True)
class PortPage:
    meta: Meta
    week: str
    dates: str
    week_href: str
    port: int
    transport: str
    hosts_raw: int
    hosts_adjusted: int
    many_ports: int                # hosts flagged for answering on implausibly many ports
    k: int
    top20: DataTable               # count, identification string, share, adjusted
    no_banner: int                 # hosts that said nothing public
    breakdowns: tuple[DataTable, ...]
    compared_with: str | None      # the week risers/fallers are measured against
    risers: DataTable | None
    fallers: DataTable | None
    trend: Chart | None            # shares of the top versions over the weeks so far
    trend_table: DataTable | None
    previous: Link | None          # this port in the previous / next week
    following: Link | None
    host_keys: tuple[DataTable, ...] = ()   # port 22 of a week with zgrab2 ssh keys
    coverage: str = ""                      # this port's coverage sentence
    coverage_jobs: DataTable | None = None  # the jobs that found its hosts, with their coverage
    coverage_warning: str = ""              # set when the previous week's coverage differs
    age: Chart | None = None                # age of the identified versions at scan time
    latest_href: str = ""                   # ports/P-T/latest.html: this port in the newest week


@dataclasses.dataclass(frozen=True)
class MethodologyPage:
    meta: Meta
    prose: Markup                  # our own Markdown, never scan data
    facts: DataTable
    geoip: DataTable
    fields: DataTable
    k: int


@dataclasses.dataclass(frozen=True)
class OptoutPage:
    meta: Meta
    prose: Markup
    weeks: DataTable


@dataclasses.dataclass(frozen=True)
class DownloadItem:
    title: str
    description: str
    kind: str                      # top20, country, aggregates, all weeks, ...
    csv: Link                      # the main file (CSV, or Parquet/JSON for whole aggregates)
    csv_bytes: int
    json: Link | None = None
    json_bytes: int | None = None


@dataclasses.dataclass(frozen=True)
class DownloadGroup:
    title: str
    intro: str
    items: tuple[DownloadItem, ...]
    week: str | None = None


@dataclasses.dataclass(frozen=True)
class DownloadsPage:
    meta: Meta
    groups: tuple[DownloadGroup, ...]
    licence: Link | None = None
    dbip: str = ""


@dataclasses.dataclass(frozen=True)
class AliasPage:
    """latest/...: a page that sends the reader on to ``target``."""
    meta: Meta
    target: str                    # site-relative path of the page it stands for
    label: str


@dataclasses.dataclass(frozen=True)
class FeedEntry:
    id: str
    title: str
    updated: str
    href: str
    summary: str


@dataclasses.dataclass(frozen=True)
class Feed:
    meta: Meta
    id: str
    updated: str
    entries: tuple[FeedEntry, ...]


@dataclasses.dataclass(frozen=True)
class Output:
    """A page to render: template name and its context."""
    template: str
    page: object
