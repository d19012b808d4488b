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
