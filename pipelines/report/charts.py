"""The site's pictures as data: each ``Chart`` holds the numbers it draws (a
``DataTable``, published as CSV/JSON like every table), a text alternative
that says what the picture shows, and its SVG drawn by matplotlib
(pipelines/report/plots.py). Charts are published as files,
``charts/<scope>/<slug>.svg`` beside a Vega-Lite spec ``<slug>.json``, so
others can embed them; pages show them with ``<img>``.

    c = ports_chart(ix)                    # Open hosts per port, one week
    c = shares_chart(weeks, i, key)        # share of the top versions over the weeks
    c = sparklines_chart(weeks, i)         # one small line per port
    c = map_chart(ix)                      # open services per country
    c = age_chart(ix, key)                 # age of the versions at scan time

Inputs are ``pages.WeekIndex`` objects (anything with ``week``, ``k``,
``values(key, dim)``, ``total(key)`` and ``paged()``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re

from pipelines.aggregate import OTHER
from pipelines.report import plots
from pipelines.report.context import Chart, Column, DataTable
from pipelines.report.filters import intcomma, pct
from scanners.escapes import escape_unsafe

BAR_PORTS = 15
SHARE_SERIES = 5
SPARK_PORTS = 12
AGES = ("<1y", "1-3y", "3-5y", "5-10y", ">=10y", "unknown")
VEGA = "https://vega.github.io/schema/vega-lite/v5.json"
_VIEWBOX = re.compile(rb'viewBox="0 0 ([\d.]+) ([\d.]+)"')


def _size(svg: bytes) -> tuple[int, int]:
    m = _VIEWBOX.search(svg)
    return (round(float(m.group(1))), round(float(m.group(2)))) if m else (0, 0)


def _chart(slug, scope, title, alt, svg, data, kind, note="") -> Chart:
    w, h = _size(svg)
    # alt text names values (banners among them): unsafe code points escaped as on every page
    return Chart(slug=slug, scope=scope, title=escape_unsafe(title), alt=escape_unsafe(alt), svg=svg, data=data,
                 kind=kind, width=w, height=h, note=note)


def _listing(items: list[tuple[str, int]], n: int = 5) -> str:
    shown = "; ".join(f"{lab} {intcomma(v)}" for lab, v in items[:n])
    return shown + ("; and more in the table" if len(items) > n else "")


def ports_chart(ix, slug: str, scope: str, limit: int = BAR_PORTS) -> Chart:
    items = [(f"{p}/{t}", ix.total((p, t))[0]) for p, t in ix.paged()[:limit]]
    title = f"Open hosts per port, {ix.week}" + (f" (top {len(items)})" if len(ix.paged()) > limit else "")
    data = DataTable(slug=slug, title=title, scope=scope,
                     columns=(Column("port", "Port"), Column("hosts_raw", "Open hosts", "int", True)),
                     rows=tuple(items))
    alt = f"Bar chart, biggest first: {_listing(items)}." if items else "No port had open hosts."
    return _chart(slug, scope, title, alt, plots.bars(items, title), data, "bars")


def _dimension(ix, key) -> str:
    return "version" if any(v != OTHER for v, _, _ in ix.values(key, "version")) else "banner"


def shares_chart(weeks, i: int, key, slug: str | None = None) -> Chart | None:
    """Each of this week's top versions (or identification strings where no
    version is known) as a share of the port's open hosts, every week so far."""
    ix = weeks[i]
    dim = _dimension(ix, key)
    top = [v for v, _, _ in ix.values(key, dim) if v != OTHER][:SHARE_SERIES]
    if i == 0 or not top:
        return None
    span = weeks[: i + 1]
    port, tr = key
    what = "product versions" if dim == "version" else "identification strings"
    series, rows = [], []
    for v in top:
        per = []
        for w in span:
            total = w.total(key)[0]
            found = [raw for val, raw, _ in w.values(key, dim) if val == v]
            share = found[0] / total if found and total else None
            per.append(share)
            rows.append((w.week, v, found[0] if found else None, share))
        series.append((v, per))
    slug = slug or f"port-{port}-{tr}-version-shares"
    title = f"Share of {port}/{tr} hosts: this week's top {len(top)} {what}, {span[0].week} to {ix.week}"
    data = DataTable(slug=slug, title=title, scope=ix.week, rows=tuple(rows),
                     columns=(Column("week", "Week"), Column("value", "Value", "banner"),
                              Column("hosts_raw", "Hosts", "int", True), Column("share", "Share", "pct", True)),
                     note=f"\u2014 means fewer than {ix.k} hosts (or none) that week.")
    moves = "; ".join(f"{v}: {pct(per[0])} in {span[0].week}, {pct(per[-1])} in {ix.week}" for v, per in series)
    alt = f"Line chart of shares over {len(span)} weeks. {moves}."
    svg = plots.lines([w.week for w in span], series, title)
    return _chart(slug, ix.week, title, alt, svg, data, "lines")


def sparklines_chart(weeks, i: int, slug: str = "port-sparklines") -> Chart | None:
    """Open hosts of this week's biggest ports, every week so far, one small line each."""
    ix = weeks[i]
    if i == 0 or not ix.paged():
        return None
    span = weeks[: i + 1]
    keys = ix.paged()[:SPARK_PORTS]
    panels, rows = [], []
    for key in keys:
        per = [w.total(key)[0] if w.total(key)[0] >= w.k else None for w in span]
        panels.append((f"{key[0]}/{key[1]}", per))
        rows += [(w.week, f"{key[0]}/{key[1]}", v) for w, v in zip(span, per)]
    title = f"Open hosts per port, {span[0].week} to {ix.week}"
    data = DataTable(slug=slug, title=title, scope=ix.week, rows=tuple(rows),
                     columns=(Column("week", "Week"), Column("port", "Port"),
                              Column("hosts_raw", "Open hosts", "int", True)),
                     note=f"\u2014 means fewer than {ix.k} open hosts that week.")
    moves = "; ".join(f"{lab} from {intcomma(per[0])} to {intcomma(per[-1])}" for lab, per in panels[:6])
    alt = (f"Small line charts, one per port, each on its own scale from zero, over {len(span)} weeks: "
           f"{moves}" + ("; the table lists the rest." if len(panels) > 6 else "."))
    svg = plots.sparklines(panels, [w.week for w in span], title)
    return _chart(slug, ix.week, title, alt, svg, data, "sparklines")


def _bounds(values: list[int], n: int = 5) -> list[int]:
    """n class lower bounds, geometric from the smallest to the largest value:
    the first is the smallest value exactly, the rest two significant digits;
    duplicates dropped."""
    lo, hi = min(values), max(values)
    # the first bound is the smallest value itself, unrounded: rounded (156 ->
    # 160) it would sit above that value and leave its country without a class
    out = [lo]
    for j in range(1, n):
        b = lo * (hi / lo) ** (j / n) if lo > 0 else lo
        digits = max(0, int(math.floor(math.log10(b))) - 1) if b >= 1 else 0
        b = int(round(b / 10 ** digits) * 10 ** digits)
        if not out or b > out[-1]:
            out.append(b)
    return out


def map_chart(ix, slug: str = "country-map") -> Chart | None:
    """Open services (address:port pairs, all ports) per country, as a world map."""
    from pipelines.report.breakdowns import country_name
    from pipelines.report.world import projected
    per: dict[str, int] = {}
    other = 0
    for key in ix.ports():
        for v, raw, _ in ix.values(key, "country"):
            if v == OTHER:
                other += raw
            else:
                per[v] = per.get(v, 0) + raw
    if not per:
        return None
    shapes = projected()
    bounds = _bounds(sorted(per.values()))
    classes = {c: max((j for j, b in enumerate(bounds) if n >= b), default=0) for c, n in per.items()}
    labels = [f"{intcomma(b)}\u2013{intcomma(bounds[j + 1] - 1)}" if j + 1 < len(bounds) else f"{intcomma(b)}+"
              for j, b in enumerate(bounds)] + [f"none, or fewer than {ix.k} per port"]
    n = len(bounds)
    swatches = [plots.CLASSES[round(j * (len(plots.CLASSES) - 1) / (n - 1))] for j in range(n)] if n > 1 \
        else [plots.CLASSES[-1]]
    order = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = tuple((c, country_name(c), n, labels[classes[c]], "yes" if c in shapes else "no") for c, n in order)
    title = f"Open services per country, {ix.week}"
    note = (f"Summed over ports: an address open on two ports counts twice. {intcomma(other)} services are in "
            f"countries with fewer than {ix.k} hosts on a port (\u201cother\u201d) and are not on the map."
            if other else "Summed over ports: an address open on two ports counts twice.")
    data = DataTable(slug=slug, title=title, scope=ix.week, rows=rows, note=note,
                     columns=(Column("country", "Code"), Column("name", "Country"),
                              Column("services", "Open services", "int", True), Column("class", "Shade"),
                              Column("on_map", "On the map")))
    top = "; ".join(f"{country_name(c)} {intcomma(n)}" for c, n in order[:5])
    alt = (f"World map, countries shaded in {len(bounds)} classes by open services; the most: {top}. "
           f"{len(order)} countries in all; the table lists each.")
    svg = plots.choropleth(shapes, {c: j for c, j in classes.items()}, labels[: len(bounds)] + labels[-1:],
                           title, swatches)
    return _chart(slug, ix.week, title, alt, svg, data, "map", note)


def age_chart(ix, key) -> Chart | None:
    """How old the identified versions were at scan time (release dates from
    scanners/protocols/releases.toml), as the aggregates' version_age classes."""
    values = {v: raw for v, raw, _ in ix.values(key, "version_age")}
    if not any(values.get(a) for a in AGES[:-1]):
        return None
    port, tr = key
    items = [(a, values.get(a, 0)) for a in AGES]
    identified = sum(n for _, n in items)
    slug = f"port-{port}-{tr}-version-age"
    title = f"Age of the identified versions on {port}/{tr} at scan time, {ix.week}"
    data = DataTable(slug=slug, title=title, scope=ix.week,
                     rows=tuple((a, n, n / identified if identified else None) for a, n in items),
                     columns=(Column("age", "Age of version"), Column("hosts_raw", "Hosts", "int", True),
                              Column("share", "Share", "pct", True)),
                     note="Age: from the version's release date to the start of the week. Unknown: the product "
                          "is identified but the release date of its version is not known.")
    alt = "Bar chart of version age: " + "; ".join(f"{a} {intcomma(n)} hosts" for a, n in items) + "."
    svg = plots.columns([(a.replace(">=", "\u2265"), n) for a, n in items], title, muted_last=True)
    return _chart(slug, ix.week, title, alt, svg, data, "distribution")


def charts_of(obj) -> list[Chart]:
    """Every Chart reachable from a page context, in field order."""
    if isinstance(obj, Chart):
        return [obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [c for f in dataclasses.fields(obj) for c in charts_of(getattr(obj, f.name))]
    if isinstance(obj, (tuple, list)):
        return [c for x in obj for c in charts_of(x)]
    return []


ENCODINGS = {
    "bars": {"mark": "bar", "encoding": {
        "y": {"field": "port", "type": "nominal", "sort": "-x"},
        "x": {"field": "hosts_raw", "type": "quantitative", "title": "Open hosts"}}},
    "lines": {"mark": {"type": "line", "point": True}, "encoding": {
        "x": {"field": "week", "type": "ordinal"},
        "y": {"field": "share", "type": "quantitative", "axis": {"format": "%"}},
        "color": {"field": "value", "type": "nominal"}}},
    "sparklines": {"mark": "line", "encoding": {
        "x": {"field": "week", "type": "ordinal"},
        "y": {"field": "hosts_raw", "type": "quantitative"},
        "facet": {"field": "port", "type": "nominal", "columns": 3}},
        "resolve": {"scale": {"y": "independent"}}},
    "distribution": {"mark": "bar", "encoding": {
        "x": {"field": "age", "type": "ordinal", "sort": None},
        "y": {"field": "hosts_raw", "type": "quantitative", "title": "Hosts"}}},
    # The map's geometry is Natural Earth's; the spec plots the numbers it shades.
    "map": {"mark": "bar", "encoding": {
        "y": {"field": "name", "type": "nominal", "sort": "-x"},
        "x": {"field": "services", "type": "quantitative", "title": "Open services"}}},
}


def spec(chart: Chart, base_url: str) -> bytes:
    """A Vega-Lite spec of the chart, its data by absolute URL (the CSV the
    site publishes), so the chart can be redrawn or embedded elsewhere."""
    doc = {"$schema": VEGA, "title": chart.title, "description": chart.alt,
           "data": {"url": base_url + chart.data.csv, "format": {"type": "csv"}},
           "usermeta": {"svg": base_url + chart.path, "json": base_url + chart.data.json,
                        "note": chart.note or chart.data.note},
           **ENCODINGS[chart.kind]}
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()
