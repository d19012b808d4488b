"""The benchmark's main baseline does the same work as portcensus: on a small
bench week, DuckDB's same-work script and a real portcensus run agree on the
observation count and the port-22 banner top 20 (what ``make bench`` checks),
and the bench week's records fall inside the bench week."""
import json
import os
import subprocess
import sys

import pytest

from pipelines import bench, bench_baselines
from scanners.synth.bulk import write_bulk

pytest.importorskip("duckdb")


def test_duckdb_same_work_agrees_with_portcensus(tmp_path):
    week_dir = tmp_path / "raw" / bench.BENCH_WEEK
    write_bulk(str(week_dir), 6000, shards=2)
    out = tmp_path / "out"
    rc = subprocess.run([sys.executable, "-m", "pipelines", "run", "--week", bench.BENCH_WEEK,
                         "--raw", str(tmp_path / "raw"), "--out", str(out), "--quiet", "--no-site"],
                        capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    manifest = json.load(open(out / f"week={bench.BENCH_WEEK}" / "manifest.json"))
    accepted = manifest["totals"]["accepted"]
    assert accepted > 5000 * 0.5            # the bench week's timestamps are in the bench week
    geo = bench_baselines.prepare_geo(str(tmp_path / "geo"))
    duck = bench_baselines.run_same_work(str(week_dir / "*.gz"), geo, str(tmp_path / "duck"),
                                         bench.BENCH_WEEK, k=10, threads=2)
    assert duck["observations"] == accepted
    top = bench.portcensus_top20(str(out), bench.BENCH_WEEK)
    assert len(top) >= 10 and duck["top20"] == top
    assert os.listdir(tmp_path / "duck" / "clean")          # Parquet by port was written


def test_summarise_takes_min_median_and_max_rss():
    runs = [{"wall_s": 3.0, "cpu_s": 5.0, "peak_rss_mb": 100}, {"wall_s": 1.0, "cpu_s": 2.0, "peak_rss_mb": 300},
            {"wall_s": 2.0, "cpu_s": 9.0, "peak_rss_mb": 200}]
    s = bench.summarise(runs)
    assert (s["wall_min_s"], s["wall_median_s"], s["cpu_min_s"], s["cpu_median_s"], s["peak_rss_mb"]) == \
        (1.0, 2.0, 2.0, 5.0, 300)
