"""Pictures as static SVG, drawn by matplotlib's SVG backend (no pyplot, no
global state): bars, lines over weeks, small multiples (sparklines), a
distribution and a world choropleth.

    svg = bars([("22/tcp", 6026), ...], "Open hosts per port")   # bytes

Why matplotlib: a well-kept library whose SVG backend is deterministic once
``svg.hashsalt`` is fixed and the date left out of the metadata, so golden
files can byte-compare. It is imported lazily and once (``_mpl``): importing
it costs about half a second, which a site without charts (or a CLI that
never renders) should not pay.

Every figure is 4 inches (288 units of viewBox) wide with 9-point text and
the root ``<svg>`` keeps only its viewBox, so a page scales it to its width:
on a 390 px phone the text is about 11 px, on a desktop the page caps
the width. Text stays text (``svg.fonttype: none``), never outlines, and
mathtext is off: a ``$`` in a banner is a dollar sign. matplotlib escapes
text as XML; the pages embed the files with ``<img>``, in which no script
can run whatever a label says.
"""
from __future__ import annotations

import functools
import io
import re

from markupsafe import escape

from scanners.escapes import escape_unsafe

WIDTH = 4.0                # inches; 1 inch = 72 viewBox units
PALETTE = ("#1f5fa8", "#c2410c", "#2f7d32", "#7b2cbf", "#b91c1c", "#0e7490", "#a16207", "#4b5563")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (1, 1)), (0, (8, 2, 1, 2)), (0, (3, 3)))
INK, MUTED, GRID, EMPTY = "#18181b", "#52525b", "#d4d4d8", "#e4e4e7"
# Sequential, light to dark, distinguishable in grey scale (ColorBrewer Blues).
CLASSES = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
RC = {"svg.hashsalt": "portcensus", "svg.fonttype": "none", "font.family": "DejaVu Sans",
      "font.size": 9, "text.parse_math": False, "axes.edgecolor": MUTED, "axes.labelcolor": INK,
      "xtick.color": MUTED, "ytick.color": MUTED, "text.color": INK, "path.simplify": True,
      "axes.titlesize": 9, "legend.fontsize": 8.5, "legend.frameon": False}
STYLE = '\n  <style type="text/css">*{stroke-linejoin: round; stroke-linecap: butt}</style>'
ROOT_ATTRS = 'stroke-linejoin="round" stroke-linecap="butt"'
_SIZE = re.compile(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"')
_PATH = re.compile(r'( d="[^"]*")')
_NUM = re.compile(r"-?\d+\.\d{2,}")
_CMD = re.compile(r"\s*([MLQCZz])\s*")


@functools.cache
def _mpl():
    """(matplotlib, Figure, FigureCanvasSVG), imported once."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    return matplotlib, Figure, FigureCanvasSVG


def _figure(height: float):
    _, Figure, Canvas = _mpl()
    fig = Figure(figsize=(WIDTH, height))
    Canvas(fig)
    return fig


def _short(num: re.Match) -> str:
    return f"{float(num.group(0)):.1f}"


def _svg(fig, title: str) -> bytes:
    """The figure as SVG bytes: viewBox only, a <title>, path numbers to 0.1
    unit (a tenth of a point: invisible, and a third of the bytes)."""
    matplotlib = _mpl()[0]
    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        # no date and no "Matplotlib v3.x.y" creator: the bytes must not change
        # with the day or a patch release
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = _SIZE.sub(r"\1", text, count=1)
    # matplotlib's one stylesheet rule ("*" selector) would restyle a page the
    # SVG is pasted into: the same as inherited attributes on the root instead
    text = text.replace(STYLE, "", 1).replace("<svg ", f"<svg {ROOT_ATTRS} ", 1)
    text = _PATH.sub(lambda m: " d=\"" + _CMD.sub(r"\1", _NUM.sub(_short, m.group(1)[4:-1])) + "\"", text)
    text = text.replace(">\n <metadata>", f">\n <title>{escape(escape_unsafe(title))}</title>\n <metadata>", 1)
    return text.encode("utf-8")


def _draw(height: float, paint, title: str) -> bytes:
    """Make a figure under our rc settings, let ``paint(fig)`` fill it, return SVG."""
    matplotlib = _mpl()[0]
    with matplotlib.rc_context(RC):
        fig = _figure(height)
        paint(fig)
        return _svg(fig, title)


def _plain(ax, grid_axis: str = "y") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, axis=grid_axis, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def _thousands(v, _pos=None) -> str:
    return f"{v:,.0f}"


def _percent(v, _pos=None) -> str:
    return f"{v * 100:.0f}%"


def clip(label: str, n: int = 34) -> str:
    """A label as drawn: unsafe code points (controls, bidi overrides) as
    \\uXXXX, as every page shows them (scanners/escapes.py), then clipped."""
    label = escape_unsafe(str(label))
    return label if len(label) <= n else label[: n - 1] + "\u2026"


def bars(items: list[tuple[str, int]], title: str) -> bytes:
    """Horizontal bars, biggest first as given: [(label, value)]."""
    n = max(len(items), 1)
    height = 0.42 + 0.2 * n          # inches: 0.2 a bar, 0.32 below for the ticks, 0.1 above

    def paint(fig):
        ax = fig.add_axes((0.22, 0.32 / height, 0.68, 1 - 0.42 / height))
        labels = [clip(lab, 14) for lab, _ in items]
        values = [v for _, v in items]
        ys = list(range(len(items)))
        ax.barh(ys, values, color=PALETTE[0], height=0.7)
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_ylim(len(items) - 0.5, -0.5)
        top = max(values or [1]) or 1
        for y, v in zip(ys, values):
            ax.text(v + top * 0.01, y, _thousands(v), va="center", fontsize=8, color=MUTED)
        ax.set_xlim(0, top * 1.18)
        ax.xaxis.set_major_formatter(_thousands)
        ax.xaxis.set_major_locator(_mpl()[0].ticker.MaxNLocator(4))
        ax.tick_params(axis="y", length=0)
        _plain(ax, "x")
    return _draw(height, paint, title)


def lines(x_labels: list[str], series: list[tuple[str, list[float | None]]], title: str,
          percent: bool = True) -> bytes:
    """Lines over weeks: series = [(label, [value per x or None])]; None breaks the line.
    The legend sits below the plot, one series a line, so long names fit a phone."""
    legend_h = 0.19 * len(series)
    height = 2.4 + legend_h

    def paint(fig):
        bottom = (0.45 + legend_h) / height
        ax = fig.add_axes((0.14, bottom, 0.78, 1 - bottom - 0.1 / height))
        xs = list(range(len(x_labels)))
        handles, labels = [], []
        for i, (label, values) in enumerate(series):
            ys = [float("nan") if v is None else v for v in values]
            handles += ax.plot(xs, ys, color=PALETTE[i % 8], linestyle=DASHES[i % 8], marker=MARKERS[i % 8],
                               markersize=4.5, linewidth=1.6)
            labels.append(clip(label, 44))
        every = max(1, -(-len(xs) // 4))
        ticks = sorted(set(xs[::every]) | {xs[-1]})
        ax.set_xticks(ticks, [x_labels[t] for t in ticks])
        ax.set_xlim(-0.3, len(xs) - 0.7)
        peak = max([v for _, vs in series for v in vs if v is not None] or [0])
        ax.set_ylim(0, (peak or 1) * 1.08)
        ax.yaxis.set_major_formatter(_percent if percent else _thousands)
        ax.yaxis.set_major_locator(_mpl()[0].ticker.MaxNLocator(5))
        _plain(ax)
        # handles and labels given, not taken from the lines: matplotlib drops a
        # line label that starts with "_", and a banner's version string may
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(-0.14, -0.3 / (height - legend_h - 0.55)), ncol=1, handlelength=2.6,
                  borderaxespad=0, alignment="left")
    return _draw(height, paint, title)


def sparklines(panels: list[tuple[str, list[int | None]]], x_labels: list[str], title: str,
               cols: int = 3) -> bytes:
    """Small multiples: one tiny line per panel (label, values over x_labels),
    each on its own scale from 0, the latest value written beside its name."""
    rows = -(-len(panels) // cols)
    height = 0.12 + 0.72 * rows      # inches: per row a 0.22 title, a 0.4 plot, a 0.1 gap

    def paint(fig):
        for n, (label, values) in enumerate(panels):
            r, c = divmod(n, cols)
            left = 0.02 + c / cols
            top = 1 - (0.3 + 0.72 * r) / height
            ax = fig.add_axes((left + 0.02, top - 0.4 / height, 1 / cols - 0.08, 0.4 / height))
            xs = [i for i, v in enumerate(values) if v is not None]
            ys = [v for v in values if v is not None]
            ax.plot(xs, ys, color=PALETTE[0], linewidth=1.5)
            if xs:
                ax.plot(xs[-1:], ys[-1:], "o", color=PALETTE[1], markersize=3.5)
            ax.set_xlim(-0.2, len(x_labels) - 0.8)
            ax.set_ylim(0, max(ys or [1]) * 1.15 or 1)
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            ax.axhline(0, color=GRID, linewidth=0.8)
            last = "\u2014" if values[-1] is None else _thousands(values[-1])
            ax.set_title(f"{label}  {last}", loc="left", fontsize=8.5, pad=2)
    return _draw(height, paint, title)


def columns(items: list[tuple[str, int]], title: str, muted_last: bool = False) -> bytes:
    """Vertical bars in the order given (a distribution over classes); with
    ``muted_last`` the last class (e.g. "unknown") is grey."""
    def paint(fig):
        ax = fig.add_axes((0.15, 0.17, 0.8, 0.75))
        xs = list(range(len(items)))
        colours = [PALETTE[0]] * len(items)
        if muted_last and items:
            colours[-1] = "#a1a1aa"
        values = [v for _, v in items]
        ax.bar(xs, values, color=colours, width=0.7)
        ax.set_xticks(xs, [lab for lab, _ in items], fontsize=8)
        top = max(values or [1]) or 1
        for x, v in zip(xs, values):
            ax.text(x, v + top * 0.02, _thousands(v), ha="center", fontsize=8, color=MUTED)
        ax.set_ylim(0, top * 1.15)
        ax.yaxis.set_major_formatter(_thousands)
        ax.yaxis.set_major_locator(_mpl()[0].ticker.MaxNLocator(4))
        ax.tick_params(axis="x", length=0)
        _plain(ax)
    return _draw(2.6, paint, title)


def choropleth(shapes: dict[str, list[list[tuple[float, float]]]], classes: dict[str, int],
               legend: list[str], title: str, swatches: list[str] | None = None) -> bytes:
    """A world map: ``shapes`` = {code: [ring of projected (x, y)]}, ``classes``
    = {code: class index into ``swatches`` (default CLASSES)}; countries
    without a class are drawn pale. ``legend`` labels the classes, then the
    pale 'no data' swatch."""
    swatches = list(swatches or CLASSES)
    xs = [x for rings in shapes.values() for ring in rings for x, _ in ring]
    ys = [y for rings in shapes.values() for ring in rings for _, y in ring]
    span_x, span_y = ((max(xs) - min(xs)), (max(ys) - min(ys))) if xs else (1, 1)
    map_h = WIDTH * 0.96 * span_y / span_x
    legend_rows = -(-len(legend) // 3)
    height = map_h + 0.2 + 0.2 * legend_rows

    def paint(fig):
        from matplotlib.collections import PolyCollection
        from matplotlib.patches import Patch
        ax = fig.add_axes((0.02, (0.15 + 0.2 * legend_rows) / height, 0.96, map_h / height))
        polys, colours = [], []
        for code in sorted(shapes):
            colour = swatches[classes[code]] if code in classes else EMPTY
            for ring in shapes[code]:
                polys.append(ring)
                colours.append(colour)
        ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="#ffffff", linewidths=0.3))
        if xs:
            ax.set_xlim(min(xs), max(xs))
            ax.set_ylim(min(ys), max(ys))
        ax.set_aspect("equal")
        ax.set_axis_off()
        handles = [Patch(facecolor=c, label=lab) for c, lab in zip(swatches + [EMPTY], legend)]
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.02, 0.01), ncol=3,
                   handlelength=1.2, columnspacing=1.0, borderaxespad=0)
    return _draw(height, paint, title)
