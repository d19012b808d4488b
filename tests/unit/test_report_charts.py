"""Chart helpers of the report site (pipelines/report/charts.py, plots.py)."""
from pipelines.report.charts import _bounds


def test_map_classes_hold_every_country():
    # 156 rounded to two digits is 160, above the smallest country: it had no
    # class and the map (and the whole site build) raised ValueError
    for values in ([156, 2_000, 50_000], [1_260, 2_000, 50_000], [7], [3, 3, 3]):
        bounds = _bounds(sorted(values))
        assert bounds[0] == min(values)
        assert bounds == sorted(set(bounds))
        for v in values:
            assert any(v >= b for b in bounds), (v, bounds)


def _every_kind_of_chart() -> dict[str, bytes]:
    from pipelines.report import plots
    square = [[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]]
    return {
        "bars": plots.bars([("OpenSSH 9.6", 120), ("dropbear", 40)], "bars"),
        "columns": plots.columns([("1 year", 30), ("unknown", 5)], "columns", muted_last=True),
        "lines": plots.lines(["2026-W01", "2026-W02"], [("OpenSSH 9.6", [0.4, 0.5])], "lines"),
        "sparklines": plots.sparklines([("22", [10, 12])], ["2026-W01", "2026-W02"], "sparklines"),
        "choropleth": plots.choropleth({"DE": square}, {"DE": 0}, ["1+", "none"], "map"),
    }


def test_chart_bytes_do_not_name_the_matplotlib_release():
    for kind, svg in _every_kind_of_chart().items():
        assert svg.startswith(b"<?xml") or b"<svg" in svg[:400], kind
        assert b"Matplotlib v" not in svg, kind
        assert b"matplotlib.org" not in svg, kind


def test_a_series_named_with_a_leading_underscore_keeps_its_legend_entry():
    # matplotlib hides auto-collected labels starting with "_"; names come from banners
    from pipelines.report import plots
    svg = plots.lines(["2026-W01", "2026-W02"], [("_hidden", [0.1, 0.2]), ("shown", [0.3, 0.4])], "t").decode()
    assert ">_hidden</text>" in svg
    assert ">shown</text>" in svg
    assert svg.index(">_hidden</text>") < svg.index(">shown</text>")   # in the series' order


def test_a_map_without_shapes_is_still_drawn():
    # the span's "if xs else (1, 1)" guarded only the second span: empty shapes raised
    from pipelines.report import plots
    svg = plots.choropleth({}, {}, ["none, or fewer than 10 per port"], "no map data")
    assert b"<svg" in svg and b"none, or fewer than 10 per port" in svg
