"""``make bench``: the pipeline end to end beside the baselines, same files.

1. portcensus ``run`` (Beam, in-process FnApiRunner unless Beam flags are given)
2. DuckDB doing **the same work** (``pipelines/bench_baselines.py``): the main
   baseline; its observation count and port-22 banner top 20 are checked
   against portcensus's manifest and aggregates, so a run where the two did
   not do the same work says so
3. reference lines: DuckDB parse + ``DISTINCT`` + count only, the pyarrow.json
   parse floor, and ``zcat | awk | sort | uniq -c``

The tools run interleaved (``--repeat`` rounds of one run each, in turn), each
as its own process; for each the table gives min and median wall time, CPU
time (user + system of the process and its children), records/s and peak
RSS (``getrusage(RUSAGE_CHILDREN)`` of a fresh wrapper). The figures that
count are ratios: portcensus's wall time over DuckDB same-work's, and its CPU
per record over the parse floor's. Results are appended as JSON to
``.bench/results.jsonl`` with the machine they ran on (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

from pipelines.bench_baselines import DUCKDB_MINIMAL, SHELL  # noqa: F401 (documented queries)

# The ISO week of the bench week's timestamps (scanners/synth/bulk.py START,
# Monday 2013-09-09): any other week quarantines every record as outside_week.
BENCH_WEEK = "2013-W37"


def _measure(cmd: list[str] | str, shell: bool = False) -> dict:
    """Run one command in a fresh child: wall time, CPU time and peak RSS."""
    t0 = time.perf_counter()
    # A fresh grandchild per measurement: RUSAGE_CHILDREN is a running max over
    # all children, so measure inside a wrapper process to isolate each one.
    wrapper = [sys.executable, "-c", _WRAPPER, json.dumps({"cmd": cmd, "shell": shell})]
    out = subprocess.run(wrapper, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode not in (0, 3):
        raise SystemExit(f"bench: command failed ({out.returncode}): {cmd}\n{out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_s"] = round(wall, 3)
    return res


_WRAPPER = r"""
import json, resource, subprocess, sys
spec = json.loads(sys.argv[1])
p = subprocess.run(spec["cmd"], shell=spec["shell"], capture_output=True, text=True)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(p.stdout[-4000:], file=sys.stderr)
print(json.dumps({"rc": p.returncode, "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
                  "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                  "stdout_tail": p.stdout[-20000:], "stderr_tail": p.stderr[-1000:]}))
sys.exit(0 if p.returncode in (0, 3) else p.returncode)
"""


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


def summarise(runs: list[dict]) -> dict:
    """min and median over repetitions (peak RSS: the largest)."""
    walls = [r["wall_s"] for r in runs]
    cpus = [r["cpu_s"] for r in runs]
    return {"runs": len(runs), "wall_min_s": min(walls), "wall_median_s": round(statistics.median(walls), 3),
            "cpu_min_s": min(cpus), "cpu_median_s": round(statistics.median(cpus), 3),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def portcensus_top20(out: str, week: str) -> list[list]:
    import pyarrow.parquet as pq

    t = pq.read_table(os.path.join(out, f"week={week}", "aggregates", "aggregates.parquet"),
                      columns=["port", "dimension", "value", "hosts_raw"]).to_pylist()
    rows = [(r["value"], r["hosts_raw"]) for r in t
            if r["port"] == 22 and r["dimension"] == "banner" and r["value"] != "other"]
    rows.sort(key=lambda x: (-x[1], x[0]))
    return [[v, int(h)] for v, h in rows[:20]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000, help="records to generate (default 2M)")
    ap.add_argument("--shards", type=int, default=4, help="input files (default 4)")
    ap.add_argument("--dir", default=".bench", help="work folder (default .bench)")
    ap.add_argument("--buckets", type=int, default=None,
                    help="--buckets for the pipeline (default: its own, from the input size)")
    ap.add_argument("--no-one-thread", action="store_true",
                    help="skip the second portcensus line, the same run held to one thread")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds per tool (default 3)")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--gcd", type=int, default=20_000,
                    help="distinct RSA moduli for the batch-GCD figure (0 skips; default 20000; making "
                         "the moduli costs ~4 ms each once, then they are cached in --dir)")
    ap.add_argument("--no-parts", action="store_true", help="only the pipeline comparison")
    ap.add_argument("beam_args", nargs="*", help="extra Beam flags for the pipeline run (after --)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    from pipelines import bench_baselines
    from scanners.synth.bulk import write_bulk

    raw = os.path.join(args.dir, f"raw-{args.records}")
    week_dir = os.path.join(raw, BENCH_WEEK)
    if not os.path.isdir(week_dir):
        t = time.perf_counter()
        print(f"generating {args.records:,} records in {args.shards} files ...", flush=True)
        write_bulk(week_dir, args.records, shards=args.shards)
        print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)
    files = sorted(glob.glob(os.path.join(week_dir, "*.gz")))
    size = sum(os.path.getsize(f) for f in files)
    out = os.path.join(args.dir, "out")
    duck_out = os.path.join(args.dir, "duckdb-out")
    gz_glob = os.path.join(week_dir, "*.gz")
    py = [sys.executable, "-m", "pipelines.bench_baselines"]

    pc = [sys.executable, "-m", "pipelines", "run", "--week", BENCH_WEEK, "--raw", raw, "--out", out,
          *(["--buckets", str(args.buckets)] if args.buckets else []), "--quiet", "--no-site", "--force"]
    # The default run (threads for a big week, pipelines/runmode.py), and
    # beside it the same run in one thread: what the second core is worth.
    tools: dict[str, list[str] | str] = {"portcensus": [*pc, *args.beam_args]}
    if not args.no_one_thread and not any("running_mode" in a or "--runner" in a for a in args.beam_args):
        tools["portcensus 1 thread"] = [*pc, "--direct_running_mode=in_memory", *args.beam_args]
    if not args.skip_baselines:
        geo = bench_baselines.prepare_geo(os.path.join(args.dir, "duckdb-geo"))   # untimed, like geoip/cache
        tools["duckdb same work"] = [*py, "same-work", "--glob", gz_glob, "--geo", geo, "--out", duck_out,
                                     "--week", BENCH_WEEK]
        tools["duckdb minimal"] = [*py, "minimal", "--glob", gz_glob]
        tools["pyarrow parse"] = [*py, "floor", *files]
        tools["sort|uniq"] = SHELL.format(files=" ".join(files))

    runs: dict[str, list[dict]] = {name: [] for name in tools}
    last: dict[str, dict] = {}
    for rnd in range(args.repeat):
        for name, cmd in tools.items():
            if name.startswith("portcensus"):
                shutil.rmtree(out, ignore_errors=True)
            if name == "duckdb same work":
                shutil.rmtree(duck_out, ignore_errors=True)
            r = _measure(cmd, shell=isinstance(cmd, str))
            runs[name].append(r)
            last[name] = r
            print(f"  round {rnd + 1}/{args.repeat} {name}: {r['wall_s']:.2f} s", flush=True)
    results = {name: summarise(rs) for name, rs in runs.items()}

    manifest = json.load(open(os.path.join(out, f"week={BENCH_WEEK}", "manifest.json")))
    read, accepted = manifest["totals"]["read"], manifest["totals"]["accepted"]
    checks = {"identity_holds": bool(manifest["totals"]["identity_holds"]), "observations": accepted > 0}
    if accepted == 0:
        print("bench: portcensus accepted no records: the bench week and its timestamps disagree", file=sys.stderr)
    if "duckdb same work" in last:
        duck = _last_json(last["duckdb same work"]["stdout_tail"])
        checks["same_observations"] = duck.get("observations") == accepted
        checks["same_top20"] = duck.get("top20") == portcensus_top20(out, BENCH_WEEK)

    print(f"\n{read:,} records ({size / 1e6:.1f} MB gzip, {len(files)} files) -> {accepted:,} observations; "
          f"{args.repeat} interleaved rounds; checks: " + ", ".join(f"{k} {'ok' if v else 'FAILS'}"
                                                                 for k, v in checks.items()))
    print(f"{'':<20}{'wall min':>9}{'median':>8}{'cpu min':>9}{'records/s':>12}{'peak MB':>9}{'wall vs same-work':>19}")
    base = results.get("duckdb same work", {}).get("wall_min_s")
    for name, r in results.items():
        ratio = f"{r['wall_min_s'] / base:.2f}x" if base else "-"
        print(f"{name:<20}{r['wall_min_s']:>9.2f}{r['wall_median_s']:>8.2f}{r['cpu_min_s']:>9.2f}"
              f"{read / r['wall_min_s']:>12,.0f}{r['peak_rss_mb']:>9,.0f}{ratio:>19}")
    ratios = {}
    if base:
        ratios["wall_vs_duckdb_same_work"] = round(results["portcensus"]["wall_min_s"] / base, 3)
    if "pyarrow parse" in results:
        ratios["cpu_vs_parse_floor"] = round(results["portcensus"]["cpu_min_s"]
                                             / results["pyarrow parse"]["cpu_min_s"], 2)
    if ratios:
        print("ratios: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))
    record = {
        "records": read, "files": len(files), "gzip_bytes": size, "buckets": manifest["run"]["buckets"], "repeat": args.repeat,
        "beam_args": args.beam_args, "machine": _machine(), "checks": checks, "ratios": ratios,
        "results": results,
    }
    if not args.no_parts:
        from pipelines import bench_identify, bench_parts
        parts = {"identify": bench_parts.identify_rate(out, BENCH_WEEK), "geoip": bench_parts.geoip_rates(),
                 "identify_zipf": bench_identify.zipf_rate(), "rule_scaling": bench_identify.rule_scaling()}
        if args.gcd:
            parts["batch_gcd"] = bench_parts.batch_gcd(args.gcd, args.dir)
        record["parts"] = parts
        i, g = parts["identify"], parts["geoip"]
        print(f"\nidentify: {i['distinct_banners']:,} distinct of {i['rows']:,} rows, "
              f"{i['rows_per_s']:,} rows/s (each distinct banner parsed once)")
        z = parts["identify_zipf"]
        print(f"identify, Zipf mix: {z['distinct_banners']:,} distinct of {z['rows']:,} rows, "
              f"{z['distinct_per_s']:,} distinct banners/s")
        for proto, sc in parts["rule_scaling"].items():
            print(f"rules x5 ({proto}): {sc['us_per_subject']} -> {sc['us_per_subject_x']} us per subject "
                  f"({sc['rules']} -> {sc['rules_x']} rules, ratio {sc['ratio']}; linear scan "
                  f"{sc['linear_us_per_subject']} -> {sc['linear_us_per_subject_x']} us, ratio {sc['linear_ratio']})")
        print(f"geoip: vectorized {g['vectorized_per_s']:,} lookups/s ({g['vectorized_what']}); "
              f"geoip2 per call {g['geoip2_country_per_s']:,}/s (country only)")
        if "batch_gcd" in parts:
            b = parts["batch_gcd"]
            print(f"batch GCD: {b.get('moduli'):,} moduli in {b.get('batch_gcd_s')} s, "
                  f"peak RSS {b.get('peak_rss_mb')} MB (+ workers {b.get('children_peak_rss_mb')} MB)"
                  if "error" not in b else f"batch GCD: {b['error']}")
    with open(os.path.join(args.dir, "results.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    return 0 if all(checks.values()) else 1


def _machine() -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "mem_gib": round(mem, 1), "cpu": cpu,
            "python": platform.python_version()}


if __name__ == "__main__":
    sys.exit(main())
