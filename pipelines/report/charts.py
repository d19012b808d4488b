"""Charts drawn at build time as inline SVG: readable without JavaScript,
printable, and as deterministic as the numbers behind them.

Every text (labels come from banners and fingerprint rules) goes through
``markupsafe.escape``; colours and shapes are presentation attributes rather
than ``style`` so the page's Content-Security-Policy (no inline styles)
holds. Series differ by marker shape and dash pattern as well as colour, so
the charts survive grey-scale printing and colour blindness.
"""
from __future__ import annotations

import math

from markupsafe import Markup, escape

from pipelines.report.filters import clip, intcomma

PALETTE = ("#1f5fa8", "#c2410c", "#2f7d32", "#7b2cbf", "#b91c1c", "#0e7490", "#a16207", "#4b5563")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "4 4", "1 2", "10 4", "3 6")
LABEL_CHARS = 40


def nice_max(value: int) -> int:
    """The smallest 1/2/2.5/5 x 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    exp = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        top = step * exp
        if top >= value:
            return int(math.ceil(top))
    return 10 * exp


def ticks(top: int, n: int = 4) -> list[int]:
    """n+1 evenly spaced integer ticks from 0 to ``top`` (duplicates dropped)."""
    return sorted({round(top * i / n) for i in range(n + 1)})


def _f(x: float) -> str:
    return f"{x:.1f}"


def _marker(i: int, x: float, y: float, colour: str) -> str:
    shape = i % 4
    if shape == 0:
        return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3.5" fill="{colour}"/>'
    if shape == 1:
        return f'<rect x="{_f(x - 3.2)}" y="{_f(y - 3.2)}" width="6.4" height="6.4" fill="{colour}"/>'
    if shape == 2:
        return (f'<path d="M{_f(x)} {_f(y - 4.2)} L{_f(x + 4)} {_f(y + 3)} L{_f(x - 4)} {_f(y + 3)} Z" '
                f'fill="{colour}"/>')
    return (f'<path d="M{_f(x)} {_f(y - 4.5)} L{_f(x + 4.5)} {_f(y)} L{_f(x)} {_f(y + 4.5)} '
            f'L{_f(x - 4.5)} {_f(y)} Z" fill="{colour}"/>')


def line_chart(x_labels: list[str], series: list[tuple[str, list[int | None]]], title: str,
               uid: str, width: int = 760, plot_height: int = 220) -> Markup:
    """Lines over weeks: ``series`` = [(label, [value per x or None])].
    A None (no data: the value was below k or absent) breaks the line."""
    left, right, top_pad = 64, 48, 28   # room for the last week label, centred on its point
    legend_h = 20 * len(series) + 8
    height = top_pad + plot_height + 40 + legend_h
    w = width - left - right
    peak = max([v for _, vs in series for v in vs if v is not None] or [0])
    top = nice_max(peak)
    n = len(x_labels)

    def xpos(i: int) -> float:
        return left + (w / 2 if n == 1 else w * i / (n - 1))

    def ypos(v: float) -> float:
        return top_pad + plot_height - plot_height * v / top

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="{uid}-t" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{uid}-t">{escape(title)}</title>']
    for t in ticks(top):
        y = ypos(t)
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{_f(y)}" y2="{_f(y)}" stroke="#d4d4d8" '
                   f'stroke-width="1"/>')
        out.append(f'<text x="{left - 8}" y="{_f(y + 4)}" text-anchor="end" font-size="12" '
                   f'fill="#3f3f46">{escape(intcomma(t))}</text>')
    # At most ~10 x labels, always the first and the last.
    every = max(1, math.ceil(n / 10))
    for i, lab in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            out.append(f'<text x="{_f(xpos(i))}" y="{top_pad + plot_height + 18}" text-anchor="middle" '
                       f'font-size="12" fill="#3f3f46">{escape(lab)}</text>')
    for si, (label, values) in enumerate(series):
        colour, dash = PALETTE[si % len(PALETTE)], DASHES[si % len(DASHES)]
        runs, run = [], []
        for i, v in enumerate(values):
            if v is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append((xpos(i), ypos(v)))
        if run:
            runs.append(run)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for r in runs:
            if len(r) > 1:
                pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in r)
                out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"'
                           f'{dash_attr}/>')
        for i, v in enumerate(values):
            if v is not None:
                out.append(_marker(si, xpos(i), ypos(v), colour))
        ly = top_pad + plot_height + 40 + 20 * si
        out.append(f'<line x1="{left}" x2="{left + 28}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"{dash_attr}/>')
        out.append(_marker(si, left + 14, ly, colour))
        out.append(f'<text x="{left + 36}" y="{ly + 4}" font-size="13" fill="#18181b">'
                   f'{escape(clip(label, LABEL_CHARS))}</text>')
    out.append("</svg>")
    return Markup("\n".join(out))


def bar_chart(items: list[tuple[str, int]], title: str, uid: str, width: int = 760) -> Markup:
    """Horizontal bars, biggest first as given: [(label, value)]."""
    label_w, right, row = 150, 80, 22
    height = row * len(items) + 12
    w = width - label_w - right
    top = max([v for _, v in items] or [0]) or 1
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="{uid}-t" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{uid}-t">{escape(title)}</title>']
    for i, (label, value) in enumerate(items):
        y = 6 + i * row
        bw = max(1.0, w * value / top) if value else 0.0
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="13" '
                   f'fill="#18181b">{escape(clip(label, 22))}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{_f(bw)}" height="{row - 8}" '
                   f'fill="{PALETTE[0]}"/>')
        out.append(f'<text x="{_f(label_w + bw + 6)}" y="{y + 15}" font-size="12" '
                   f'fill="#3f3f46">{escape(intcomma(value))}</text>')
    out.append("</svg>")
    return Markup("\n".join(out))
