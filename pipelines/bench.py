"""``make bench``: the pipeline end to end beside two baselines, same files.

1. portcensus ``run`` (Beam, in-process FnApiRunner unless --runner is given)
2. DuckDB: the equivalent parse + dedup + count in SQL
3. the classic shell pipeline: ``zcat | awk | LC_ALL=C sort -u | sort | uniq -c | sort -rn``

Each runs as its own process; time is wall-clock and memory is that
process's peak RSS (``getrusage(RUSAGE_CHILDREN)`` of a fresh child).
Results print as a table and are appended as JSON to ``.bench/results.jsonl``
so docs/BENCHMARKS.md can quote them with the machine they ran on.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import time

BENCH_WEEK = "2013-W38"


def _measure(cmd: list[str] | str, shell: bool = False) -> dict:
    """Run one command in a fresh child; wall time and that child's peak RSS."""
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
                  "stdout_tail": p.stdout[-2000:], "stderr_tail": p.stderr[-1000:]}))
sys.exit(0 if p.returncode in (0, 3) else p.returncode)
"""

DUCKDB_SQL = """
SELECT port, proto, count(*) AS hosts FROM (
  SELECT DISTINCT ip, port, proto
  FROM read_json('{glob}', format='newline_delimited', compression='gzip',
                 columns={{ip: 'VARCHAR', timestamp: 'VARCHAR', port: 'INTEGER', proto: 'VARCHAR'}})
) GROUP BY port, proto ORDER BY hosts DESC;
"""

SHELL = ("zcat {files} | LC_ALL=C awk -F'\"' '{{print $4\" \"$11\" \"$14}}' | LC_ALL=C sort -u "
         "| LC_ALL=C awk '{{print $2\" \"$3}}' | LC_ALL=C sort | uniq -c | sort -rn")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000, help="records to generate (default 2M)")
    ap.add_argument("--shards", type=int, default=4, help="input files (default 4)")
    ap.add_argument("--dir", default=".bench", help="work folder (default .bench)")
    ap.add_argument("--buckets", type=int, default=32)
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--gcd", type=int, default=20_000,
                    help="distinct RSA moduli for the batch-GCD figure (0 skips; default 20000; making "
                         "the moduli costs ~4 ms each once, then they are cached in --dir)")
    ap.add_argument("--no-parts", action="store_true", help="only the pipeline comparison")
    ap.add_argument("beam_args", nargs="*", help="extra Beam flags for the pipeline run (after --)")
    args = ap.parse_args(argv)

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
    shutil.rmtree(out, ignore_errors=True)

    results = {}
    cli = [sys.executable, "-m", "pipelines", "run", "--week", BENCH_WEEK, "--raw", raw,
           "--out", out, "--buckets", str(args.buckets), "--quiet", "--no-site", *args.beam_args]
    results["portcensus"] = _measure(cli)
    manifest = json.load(open(os.path.join(out, f"week={BENCH_WEEK}", "manifest.json")))
    read = manifest["totals"]["read"]
    if not args.skip_baselines:
        db_script = DUCKDB_SQL.format(glob=os.path.join(week_dir, "*.gz"))
        results["duckdb"] = _measure([sys.executable, "-c",
                                      "import duckdb,sys; print(duckdb.sql(sys.argv[1]).fetchall()[:3])",
                                      db_script])
        results["sort|uniq"] = _measure(SHELL.format(files=" ".join(files)), shell=True)

    print(f"\n{read:,} records ({size / 1e6:.1f} MB gzip, {len(files)} files) -> "
          f"{manifest['totals']['accepted']:,} observations; identity "
          f"{'holds' if manifest['totals']['identity_holds'] else 'FAILS'}")
    print(f"{'':<12}{'wall s':>9}{'records/s':>13}{'peak RSS MB':>13}{'vs DuckDB':>11}")
    base = results.get("duckdb", {}).get("wall_s")
    for name, r in results.items():
        ratio = f"{base / r['wall_s']:.0%}" if base else "-"
        print(f"{name:<12}{r['wall_s']:>9.2f}{read / r['wall_s']:>13,.0f}{r['peak_rss_mb']:>13,.0f}{ratio:>11}")
    record = {
        "records": read, "files": len(files), "gzip_bytes": size, "buckets": args.buckets,
        "beam_args": args.beam_args, "machine": _machine(),
        "results": {k: {"wall_s": v["wall_s"], "peak_rss_mb": v["peak_rss_mb"]} for k, v in results.items()},
    }
    if not args.no_parts:
        from pipelines import bench_parts
        from pipelines import bench_identify
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
                  f"({sc['rules']} -> {sc['rules_x']} rules, ratio {sc['ratio']})")
        print(f"geoip: vectorized {g['vectorized_per_s']:,} lookups/s ({g['vectorized_what']}); "
              f"geoip2 per call {g['geoip2_country_per_s']:,}/s (country only)")
        if "batch_gcd" in parts:
            b = parts["batch_gcd"]
            print(f"batch GCD: {b.get('moduli'):,} moduli in {b.get('batch_gcd_s')} s, "
                  f"peak RSS {b.get('peak_rss_mb')} MB (+ workers {b.get('children_peak_rss_mb')} MB)"
                  if "error" not in b else f"batch GCD: {b['error']}")
    with open(os.path.join(args.dir, "results.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    return 0


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
