"""Breakdowns of a port that add up: the top N values, then one row for all
the rest (values beyond the top N and those folded into "other" below k),
then one row for the hosts that have no value at all ("unidentified"), so
the Hosts column sums to the port's open hosts and the shares to 100%.

Countries carry their names (ISO 3166 via ``pycountry``); autonomous systems
arrive named ("AS3320 Deutsche Telekom AG") from the aggregates. masscan's
TLS banners (``TLS/1.0 cipher:0x4``) are also summed by protocol version and
by named cipher suite (pipelines/report/tls.py).
"""
from __future__ import annotations

import functools

from pipelines.aggregate import OTHER
from pipelines.report.context import Column, DataTable
from pipelines.report.filters import share
from pipelines.report.tls import tls_parts

REST = "(all other values)"
UNIDENTIFIED = "(unidentified)"
COUNTRY_OVERRIDES = {"XK": "Kosovo", "EU": "Europe (no single country)", "AP": "Asia-Pacific (no single country)"}


@functools.lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """'DE' -> 'Germany'; the common name where ISO's is formal ('TW' -> 'Taiwan')."""
    if code in COUNTRY_OVERRIDES:
        return COUNTRY_OVERRIDES[code]
    import pycountry
    c = pycountry.countries.get(alpha_2=code)
    if c is None:
        return code
    return getattr(c, "common_name", None) or c.name


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def adding_up(values: list[tuple[str, int, int]], total: tuple[int, int], limit: int):
    """(top rows, rest (raw, adj, how many values), unidentified (raw, adj))
    of one dimension's (value, raw, adjusted) list, biggest first."""
    named = [v for v in values if v[0] != OTHER]
    other = next(((raw, adj) for v, raw, adj in values if v == OTHER), (0, 0))
    top = named[:limit]
    beyond = named[limit:]
    rest = (sum(r for _, r, _ in beyond) + other[0], sum(a for _, _, a in beyond) + other[1], len(beyond))
    said = (sum(r for _, r, _ in values), sum(a for _, _, a in values))
    unidentified = (max(0, total[0] - said[0]), max(0, total[1] - said[1]))
    return top, rest, unidentified


def value_table(slug: str, title: str, scope: str, values, total: tuple[int, int], limit: int, k: int,
                country: bool = False, what: str = "values", kind: str = "text") -> DataTable | None:
    """A breakdown that adds up, or None when no host has a value here."""
    top, rest, unknown = adding_up(values, total, limit)
    if not top and not rest[0]:
        return None
    raw_total = total[0]

    def row(label, raw, adj, code=None):
        cells = (label, raw, share(raw, raw_total), adj)
        return (cells[0], code) + cells[1:] if country else cells

    rows = [row(country_name(v) if country else v, raw, adj, v if country else None) for v, raw, adj in top]
    if rest[0]:
        rows.append(row(REST, rest[0], rest[1], "" if country else None))
    if unknown[0]:
        rows.append(row(UNIDENTIFIED, unknown[0], unknown[1], "" if country else None))
    shown = len(top)
    distinct = shown + rest[2]
    note = f"Top {shown} of {distinct:,} {what} seen on at least {k} hosts" if rest[2] else \
        f"All {shown:,} {what} seen on at least {k} hosts"
    parts = []
    if rest[0]:
        parts.append(f"\u201c{REST}\u201d adds the remaining {what} and those seen on fewer than {k} hosts each "
                     f"({_plural(rest[0], 'host', 'hosts')})")
    if unknown[0]:
        parts.append(f"\u201c{UNIDENTIFIED}\u201d counts the {_plural(unknown[0], 'host', 'hosts')} with no "
                     f"value here ({share(unknown[0], raw_total) * 100:.1f}%)")
    note += (": " + "; ".join(parts) if parts else "") + ". The rows add up to every open host of the port."
    cols = (Column("value", "Value", kind),)
    if country:
        cols = (Column("country", "Country"), Column("code", "Code"))
    cols += (Column("hosts_raw", "Hosts", "int", True), Column("share", "Share", "pct", True),
             Column("hosts_adjusted", "Adjusted", "int", True))
    return DataTable(slug=slug, title=title, columns=cols, rows=tuple(rows), scope=scope, note=note)


def tls_values(banners: list[tuple[str, int, int]]) -> tuple[list, list]:
    """masscan TLS banners summed by version and by cipher suite name,
    biggest first; [] when no banner is a TLS one."""
    versions: dict[str, list[int]] = {}
    suites: dict[str, list[int]] = {}
    for v, raw, adj in banners:
        parts = tls_parts(v) if v != OTHER else None
        if parts is None:
            continue
        for acc, name in ((versions, parts[0]), (suites, parts[1])):
            cell = acc.setdefault(name, [0, 0])
            cell[0] += raw
            cell[1] += adj

    def ordered(acc):
        return sorted(((n, c[0], c[1]) for n, c in acc.items()), key=lambda r: (-r[1], r[0]))
    return ordered(versions), ordered(suites)
