"""Jinja filters: every number, date and banner on the site is formatted here,
so templates stay dumb and the formatting is tested once (tests/unit/test_report.py).

Formatting never depends on the locale or the clock: thousands separators are
Python's ``,`` format, month names are spelled out below, and dates derive
from the ISO week alone.
"""
from __future__ import annotations

import datetime

from scanners.escapes import escape_unsafe

DASH = "\u2014"      # a cell with no value
MINUS = "\u2212"     # typographic minus for negative changes
ELLIPSIS = "\u2026"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Long banners are clipped on the page (the downloads keep them whole).
BANNER_CHARS = 200


def intcomma(n: int | str | None) -> str:
    """1730887 -> '1,730,887'; None -> an em dash; a label in a number
    column ("other sizes") as it is."""
    if isinstance(n, str) and not n.isdigit():
        return text(n)
    return DASH if n is None else f"{int(n):,}"


def text(value) -> str:
    """Any data text as shown: control, bidi, line-separator and
    noncharacter code points as \\uXXXX (scanners/escapes.py) -- a second
    line of defence behind the gate, for text that reached a page another way."""
    return escape_unsafe(str(value))


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: 0.1234 -> '12.3%'; tiny non-zero -> '<0.1%'."""
    if x is None:
        return DASH
    floor = 10 ** -digits
    if 0 < x * 100 < floor:
        return f"<{floor:.{digits}f}%"
    return f"{x * 100:.{digits}f}%"


def share(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else part / whole


def signed(n: int | None) -> str:
    """A change: '+1,234', '−56' (U+2212), '±0'."""
    if n is None:
        return DASH
    if n > 0:
        return f"+{n:,}"
    if n < 0:
        return f"{MINUS}{-n:,}"
    return "\u00b10"


def signed_pct(x: float | None, digits: int = 1) -> str:
    """A relative change or a change of share: 0.123 -> '+12.3%', -0.05 -> '−5.0%'."""
    if x is None:
        return DASH
    text = f"{abs(x) * 100:.{digits}f}%"
    return ("+" if x > 0 else MINUS if x < 0 else "\u00b1") + text


def points(x: float | None, digits: int = 1) -> str:
    """A change of share in percentage points: 0.021 -> '+2.1 pt'."""
    return DASH if x is None else signed_pct(x, digits)[:-1] + " pt"


def size(n: int | None) -> str:
    """A file size for people: 812 B, 12.3 kB, 4.1 MB (SI units)."""
    if n is None:
        return DASH
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"


def clip(value: str | None, limit: int = BANNER_CHARS) -> str:
    if value is None:
        return DASH
    value = text(value)
    return value if len(value) <= limit else value[: limit - 1] + ELLIPSIS


def week_days(week: str) -> tuple[datetime.date, datetime.date]:
    """Monday and Sunday of an ISO week '2013-W37'."""
    year, num = week.split("-W")
    monday = datetime.date.fromisocalendar(int(year), int(num), 1)
    return monday, monday + datetime.timedelta(days=6)


def _day(d: datetime.date, year: bool) -> str:
    return f"{d.day} {MONTHS[d.month - 1]}" + (f" {d.year}" if year else "")


def week_range(week: str) -> str:
    """'2013-W37' -> '9–15 Sep 2013'; across months/years the parts repeat."""
    a, b = week_days(week)
    if (a.year, a.month) == (b.year, b.month):
        return f"{a.day}\u2013{_day(b, True)}"
    if a.year == b.year:
        return f"{_day(a, False)} \u2013 {_day(b, True)}"
    return f"{_day(a, True)} \u2013 {_day(b, True)}"


def atom_date(week: str) -> str:
    """When a week's numbers are final: 00:00 UTC on the Monday after it."""
    _, sunday = week_days(week)
    return (sunday + datetime.timedelta(days=1)).isoformat() + "T00:00:00Z"


def cell(value, kind: str = "text") -> str:
    """One table cell as text, by column kind (int, count, pct, delta, banner, text)."""
    if value is None:
        return DASH
    if kind == "int":
        return intcomma(value)
    if kind == "count":
        return str(int(value))       # the 2013 listing: plain digits, no separators
    if kind == "pct":
        return pct(value)
    if kind == "delta":
        return signed(value)
    if kind == "pctdelta":
        return signed_pct(value)
    if kind == "points":
        return points(value)
    if kind == "banner":
        return clip(value)
    return text(value)


FILTERS = {
    "intcomma": intcomma, "pct": pct, "signed": signed, "clip": clip,
    "week_range": week_range, "atom_date": atom_date, "cell": cell, "signed_pct": signed_pct, "size": size,
}


def href(target: str, root: str) -> str:
    """A site-relative path as a link from a page whose ``root`` is "../..";
    absolute URLs (our attributions) pass unchanged."""
    return target if target.startswith(("https://", "http://")) else root + target


FILTERS["href"] = href
