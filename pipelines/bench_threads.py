"""``python -m pipelines.bench_threads``: does multi_threading publish the same week?

Runs a week built to break parallel execution once in-process (the default
runner) and then ``--repeat`` times with ``--direct_running_mode
multi_threading --direct_num_workers 2``, and compares every published file
of each repetition with the reference: Parquet row for row (order-free),
manifests without the source-tree hash, everything else byte for byte.
Prints one line per repetition and exits 1 if any differs. The runs go
through ``process_week``, so they have the guard of pipelines/beam_guard.py
(docs/SCALING.md: "multi_threading: what lost rows and why it cannot now").

The week: the demo week, ``--bulk`` masscan ``-oD`` records in three gzip
shards, one ``-oJ`` file whose objects list 3,500 ports each (one line ->
several batches sharing source offsets), a gzip stream cut in half and a
file with refused lines. Small batches (``--batch-rows``) and a small
``--merge-rows`` make many spill files and buckets merged in passes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time

WEEK = "2013-W37"
MULTI_THREADING = ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]
# Said explicitly: a big enough week would get threads by default (pipelines/runmode.py).
IN_PROCESS = ["--direct_running_mode=in_memory"]


def write_stress_week(raw: str, bulk_records: int = 300_000, seed: int = 7) -> None:
    """The stress week's raw files under ``raw/WEEK/`` (deterministic)."""
    from scanners.synth import writers as w
    from scanners.synth.bulk import write_bulk
    from scanners.synth.demo import write_demo_week

    write_demo_week(raw, WEEK, 2013)
    wd = os.path.join(raw, WEEK)
    rng = random.Random(seed)
    t0 = 1378684800 + 3600          # Monday of 2013-W37, 01:00 UTC
    lines = []
    for h in range(5):
        ip = f"46.{20 + h}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        ports = ", ".join(f'{{"port": {p}, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 50}}'
                          for p in range(1, 3501))
        lines.append(f'{{   "ip": "{ip}",   "timestamp": "{t0 + h}", "ports": [ {ports} ] }}\n')
    with open(os.path.join(wd, "wide-oJ.json"), "w") as f:
        f.write("[\n" + ",\n".join(lines) + "]\n")
    bulk = os.path.join(wd, "bulk")
    write_bulk(bulk, bulk_records, shards=3, seed=seed)
    first = os.path.join(bulk, sorted(os.listdir(bulk))[0])
    with open(first, "rb") as f:
        data = f.read()
    with open(os.path.join(wd, "cut.ndjson.gz"), "wb") as f:
        f.write(data[: len(data) // 2])
    refused = [w.masscan_ndjson_line(w.MasscanRecord(ip=f"47.0.{i // 200}.{i % 200 + 1}", port=22, proto="tcp",
                                                     timestamp=t0 + i, status="open", ttl=60))
               for i in range(400)]
    for i in range(0, 400, 7):       # bad addresses and ports among good lines
        refused[i] = refused[i].replace(b'"port":22', b'"port":70000') if i % 2 else \
            refused[i].replace(b'"ip":"47.', b'"ip":"470.')
    with open(os.path.join(wd, "refused.ndjson"), "wb") as f:
        f.write(b"".join(refused))


def run_stress_week(raw: str, out: str, beam_args: list[str], batch_rows: int = 1000,
                    merge_rows: int = 5000, buckets: int = 5, shuffle: str = "files") -> dict:
    """Process the stress week into a fresh ``out``; returns the manifest."""
    from pipelines.config import RunConfig
    from pipelines.week import process_week

    shutil.rmtree(out, ignore_errors=True)
    cfg = RunConfig(week=WEEK, raw=raw, out=out, buckets=buckets, batch_rows=batch_rows,
                    merge_rows=merge_rows, shuffle=shuffle).validate()
    return process_week(cfg, ["--runner=FnApiRunner", *beam_args])


def published(out: str) -> dict[str, str]:
    """{relative path: absolute path} of every published file (hidden
    folders such as .staging and .trash are the runner's scratch)."""
    found = {}
    for folder, dirs, files in os.walk(out):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, out)] = path
    return found


def without_code_hash(manifest):
    """The manifest minus ``code_sha256``: the driver hashes the source tree
    at each run's start, and in a shared working tree the code may change
    between two runs (no runner can affect it)."""
    if isinstance(manifest, dict):
        return {k: without_code_hash(v) for k, v in manifest.items() if k != "code_sha256"}
    if isinstance(manifest, list):
        return [without_code_hash(v) for v in manifest]
    return manifest


def _parquet_rows(path: str):
    import pyarrow.parquet as pq
    t = pq.read_table(path)
    # nested columns (banners maps, lists) cannot be sort keys: sort the rows' reprs
    return t.schema, sorted(map(repr, t.to_pylist()))


def files_differ(a: str, b: str) -> bool:
    """Parquet row for row (order-free), manifests without the source-tree
    hash, everything else byte for byte."""
    if a.endswith(".parquet"):
        return _parquet_rows(a) != _parquet_rows(b)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        da, db = fa.read(), fb.read()
    if da != db and os.path.basename(a) == "manifest.json":
        return without_code_hash(json.loads(da)) != without_code_hash(json.loads(db))
    return da != db


def compare_outputs(ref: str, got: str) -> list[str]:
    """Published files (relative paths) that differ between two output roots."""
    a, b = published(ref), published(got)
    return [rel for rel in sorted(set(a) | set(b))
            if rel not in a or rel not in b or files_differ(a[rel], b[rel])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bench_threads", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=".bench/threads", help="work folder (default .bench/threads)")
    ap.add_argument("--repeat", type=int, default=10, help="multi_threading repetitions (default 10)")
    ap.add_argument("--bulk", type=int, default=300_000, help="bulk masscan records in the week (default 300k)")
    ap.add_argument("--batch-rows", type=int, default=1000)
    ap.add_argument("--merge-rows", type=int, default=5000)
    ap.add_argument("--buckets", type=int, default=5)
    ap.add_argument("--shuffle-beam", action="store_true", help="the old shuffle path (--shuffle beam)")
    args = ap.parse_args(argv)
    raw = os.path.join(args.dir, f"raw-{args.bulk}")
    if not os.path.isdir(raw):
        print(f"writing the stress week ({args.bulk:,} bulk records) ...", flush=True)
        write_stress_week(raw, args.bulk)
    extra = dict(batch_rows=args.batch_rows, merge_rows=args.merge_rows, buckets=args.buckets,
                 shuffle="beam" if args.shuffle_beam else "files")
    ref_out = os.path.join(args.dir, "ref")
    t = time.perf_counter()
    ref = run_stress_week(raw, ref_out, IN_PROCESS, **extra)
    print(f"in-process: {ref['totals']} in {time.perf_counter() - t:.1f} s", flush=True)
    bad = 0
    for i in range(args.repeat):
        out = os.path.join(args.dir, "mt")
        t = time.perf_counter()
        run_stress_week(raw, out, MULTI_THREADING, **extra)
        dt = time.perf_counter() - t
        differ = compare_outputs(ref_out, out)
        bad += bool(differ)
        print(f"multi_threading {i + 1}/{args.repeat}: {dt:.1f} s, "
              + ("identical" if not differ else f"{len(differ)} files differ: {differ[:5]}"), flush=True)
    print(f"{bad} of {args.repeat} repetitions differed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
