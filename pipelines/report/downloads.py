"""Downloads for people and programs: every published table grouped by week
and kind, with what it holds, its size and licence; one all-weeks file per
table (rows of every week, with a ``week`` column); and ``datapackage.json``
(a Frictionless Data Package) indexing every file with its columns.

    files = extra_files(weeks, tables)          # all-weeks files, datapackage.json
    page  = downloads_page(weeks, tables, files, meta)
"""
from __future__ import annotations

import csv
import io
import json
import re

import pyarrow as pa

from pipelines import aggregate as agg
from pipelines.report.context import DataTable, DownloadGroup, DownloadItem, DownloadsPage, Link, Meta
from pipelines.report.tabledata import _csv_cell, table_csv, table_json, table_rows
from scanners.escapes import escape_unsafe

ALL_WEEKS = "all-weeks"
LICENCE = Link("https://creativecommons.org/licenses/by/4.0/", "Creative Commons Attribution 4.0 (CC BY 4.0)")
DBIP_LICENCE = ("Country and autonomous-system data: IP Geolocation by DB-IP (https://db-ip.com), "
                "licensed CC BY 4.0; credit DB-IP when you republish it.")
PORT_SLUG = re.compile(r"^port-(\d+)-([a-z]+)-(.+)$")
KIND_TYPES = {"int": "integer", "count": "integer", "delta": "integer", "pct": "number", "pctdelta": "number",
              "points": "number"}


def _kind(slug: str) -> str:
    """'port-22-tcp-top20' -> 'top20'; a week table's slug is its kind."""
    m = PORT_SLUG.match(slug)
    return m.group(3) if m else slug


def all_weeks_table(slug: str, tables: list[DataTable]) -> tuple[list[str], list[dict]]:
    """Columns and rows of one table over every week, oldest first, ``week`` first."""
    keys: list[str] = ["week"]
    rows = []
    for t in sorted(tables, key=lambda t: t.scope):
        for c in t.columns:
            if c.key not in keys:
                keys.append(c.key)
        rows += [dict(r, week=t.scope) for r in table_rows(t)]
    return keys, rows


def _escaped(value):
    """Text cells with unsafe code points as \\uXXXX (numbers as they are)."""
    return escape_unsafe(value) if isinstance(value, str) else value


def _all_csv(keys: list[str], rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for r in rows:
        w.writerow(["" if r.get(k) is None else _csv_cell(_escaped(r.get(k))) for k in keys])
    return buf.getvalue().encode()


def extra_files(weeks, tables: list[DataTable], identity=None) -> dict[str, bytes]:
    """The all-weeks files (one per table slug seen in any week, and all
    weeks' aggregates) and datapackage.json."""
    by_slug: dict[str, list[DataTable]] = {}
    for t in tables:
        if t.scope != "all":
            by_slug.setdefault(t.slug, []).append(t)
    files: dict[str, bytes] = {}
    for slug in sorted(by_slug):
        keys, rows = all_weeks_table(slug, by_slug[slug])
        files[f"data/{ALL_WEEKS}/{slug}.csv"] = _all_csv(keys, rows)
    whole = agg.sort(pa.concat_tables([w.aggregates for w in weeks]))
    for name, data in agg.serialise(whole).items():
        files[f"data/{ALL_WEEKS}/{name}"] = data
    files["data/datapackage.json"] = datapackage(weeks, tables, files, identity)
    return files


def _fields(t: DataTable) -> list[dict]:
    return [{"name": c.key, "title": c.label, "type": KIND_TYPES.get(c.kind, "string")} for c in t.columns]


def datapackage(weeks, tables: list[DataTable], files: dict[str, bytes], identity=None) -> bytes:
    """A Frictionless Data Package (https://specs.frictionlessdata.io/data-package/) of every download."""
    agg_fields = [{"name": f.name, "type": "integer" if pa.types.is_integer(f.type) else "string",
                   "description": (f.metadata or {}).get(b"doc", b"").decode()} for f in agg.AGG_SCHEMA]
    resources = []
    for w in weeks:
        for name, data in sorted(w.downloads.items()):
            fmt = name.rsplit(".", 1)[1]
            res = {"name": f"{w.week.lower()}-{name.replace('.', '-').replace('_', '-')}",
                   "path": f"{w.week}/{name}", "format": fmt, "bytes": len(data),
                   "description": f"Every aggregate of week {w.week}" if name.startswith("aggregates")
                   else f"SSH host key statistics of week {w.week} (counts only)"}
            if name == "aggregates.csv":
                res["schema"] = {"fields": agg_fields}
            resources.append(res)
    for t in sorted(tables, key=lambda t: (t.scope, t.slug)):
        data = table_csv(t)
        resources.append({"name": f"{t.scope.lower()}-{t.slug}", "path": t.csv[len("data/"):], "format": "csv",
                          "mediatype": "text/csv", "bytes": len(data), "title": t.title,
                          "description": t.note or t.title, "schema": {"fields": _fields(t)}})
    for path in sorted(p for p in files if p.startswith(f"data/{ALL_WEEKS}/")):
        name = path.rsplit("/", 1)[1]
        resources.append({"name": f"all-weeks-{name.replace('.', '-').replace('_', '-')}",
                          "path": path[len("data/"):], "format": name.rsplit(".", 1)[1],
                          "bytes": len(files[path]), "description":
                          f"{name.rsplit('.', 1)[0]}: the rows of every published week, with a week column"})
    doc = {"profile": "data-package", "name": "portcensus",
           "title": "Weekly port census: anonymized aggregates",
           "licenses": [{"name": "CC-BY-4.0", "path": LICENCE.href, "title": LICENCE.text}],
           "sources": [{"title": "IP Geolocation by DB-IP", "path": "https://db-ip.com"}],
           "description": "Counts of hosts answering on each port per ISO week, k-suppressed. " + DBIP_LICENCE,
           "resources": resources}
    if identity is not None:
        doc["contributors"] = [{"title": identity.operator, "role": "publisher",
                                **({"email": identity.contact_email} if identity.contact_email else {}),
                                **({"path": identity.contact_url} if identity.contact_url else {})}]
        doc["homepage"] = identity.base_url
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()


def _item(t: DataTable) -> DownloadItem:
    return DownloadItem(title=t.title, description=t.note, kind=_kind(t.slug),
                        csv=Link(t.csv, f"{t.title} (CSV)"), csv_bytes=len(table_csv(t)),
                        json=Link(t.json, f"{t.title} (JSON)"), json_bytes=len(table_json(t)))


def downloads_page(weeks, tables: list[DataTable], files: dict[str, bytes], meta: Meta) -> DownloadsPage:
    everything = [DownloadItem(title=f"All aggregates of every week ({name.rsplit('.', 1)[1]})",
                               description="Every week's long-format counts in one file (columns below).",
                               kind="aggregates", csv=Link(f"data/{ALL_WEEKS}/{name}", name),
                               csv_bytes=len(files[f"data/{ALL_WEEKS}/{name}"]))
                  for name in agg.AGG_FILES]
    everything += [DownloadItem(title=path.rsplit("/", 1)[1][:-4], description="This table's rows of every week, "
                                "with a week column.", kind="all weeks", csv=Link(path, path.rsplit("/", 1)[1]),
                                csv_bytes=len(data))
                   for path, data in sorted(files.items()) if path.startswith(f"data/{ALL_WEEKS}/")
                   and path.endswith(".csv") and not path.endswith("/aggregates.csv")]
    everything.append(DownloadItem(title="Data package index", description="Every file of this page with its "
                                   "size, licence and columns, for programs (Frictionless Data Package).",
                                   kind="index", csv=Link("data/datapackage.json", "datapackage.json"),
                                   csv_bytes=len(files["data/datapackage.json"])))
    groups = [DownloadGroup("All weeks", "Each table's rows of every week in one file.", tuple(everything))]
    site_wide = sorted((t for t in tables if t.scope == "all"), key=lambda t: t.slug)
    groups.append(DownloadGroup("Site-wide tables", "The archive, methodology and opt-out tables.",
                                tuple(_item(t) for t in site_wide)))
    for w in reversed(weeks):
        items = [DownloadItem(title=f"All aggregates of {w.week} ({name.rsplit('.', 1)[1]})",
                              description="Every count of the week in long format: port, dimension, value, hosts.",
                              kind="aggregates", csv=Link(f"data/{w.week}/{name}", f"{w.week} {name}"),
                              csv_bytes=len(data))
                 for name, data in sorted(w.downloads.items())]
        week_tables = sorted((t for t in tables if t.scope == w.week), key=lambda t: (
            PORT_SLUG.match(t.slug) is not None,
            int(PORT_SLUG.match(t.slug).group(1)) if PORT_SLUG.match(t.slug) else 0, t.slug))
        items += [_item(t) for t in week_tables]
        groups.append(DownloadGroup(f"Week {w.week}", f"{len(items)} files of week {w.week}.", tuple(items),
                                    week=w.week))
    return DownloadsPage(meta=meta, groups=tuple(groups), licence=LICENCE, dbip=DBIP_LICENCE)
