"""The component figures of ``make bench`` (pipelines/bench.py runs them):

* GeoIP: the vectorized lookup vs geoip2's per-call reader, on random IPv4
  addresses, one core;
* identify: distinct vs total banners and rows/s of ``identify_table`` on the
  bench week's clean rows (each distinct banner is parsed once);
* batch GCD: distinct RSA moduli, time and peak RSS (pipelines/keys/bench_gcd.py
  in a child process, so its memory is its own).

Each returns a small dict that is printed and stored in .bench/results.jsonl.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa


def geoip_rates(n: int = 1_000_000, per_call_sample: int = 50_000) -> dict:
    import geoip2.database

    from pipelines.config import DEFAULT_ASN_DB, DEFAULT_COUNTRY_DB, DEFAULT_GEOIP_CACHE
    from pipelines.geoip import GeoLookup, materialize
    from pipelines.iputil import parse_ips

    rng = np.random.default_rng(7)
    ints = rng.integers(1 << 24, 224 << 24, n, dtype=np.uint64)
    text = pa.array([f"{i >> 24}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in ints.tolist()])
    ips = parse_ips(text)
    geo = GeoLookup(DEFAULT_COUNTRY_DB, DEFAULT_ASN_DB, DEFAULT_GEOIP_CACHE)
    geo.setup()
    version = pa.array(ips.version)
    t = time.perf_counter()
    geo.lookup(ips.ip16, version)
    vec = time.perf_counter() - t
    reader = geoip2.database.Reader(str(materialize(DEFAULT_COUNTRY_DB, DEFAULT_GEOIP_CACHE)))
    sample = text.slice(0, per_call_sample).to_pylist()
    t = time.perf_counter()
    for ip in sample:
        try:
            reader.country(ip)
        except geoip2.errors.AddressNotFoundError:
            pass
    per_call = time.perf_counter() - t
    return {"lookups": n, "vectorized_per_s": round(n / vec), "vectorized_what": "country+asn+org",
            "geoip2_country_per_s": round(per_call_sample / per_call)}


def identify_rate(out: str, week: str) -> dict:
    from pipelines.summary import clean_dataset
    from scanners.protocols.identify import identify_table, primary_banners

    t = clean_dataset(out, week).to_table(columns=["port", "transport", "banners"])
    port, transport, banners = (t.column(c).combine_chunks() for c in ("port", "transport", "banners"))
    _types, texts = primary_banners(banners)
    distinct = len(pa.table({"p": port, "t": transport, "b": texts}).group_by(["p", "t", "b"]).aggregate([]))
    start = time.perf_counter()
    identify_table(port, transport, banners)
    took = time.perf_counter() - start
    return {"rows": t.num_rows, "distinct_banners": distinct, "seconds": round(took, 2),
            "rows_per_s": round(t.num_rows / took) if took else None}


def batch_gcd(moduli: int, cache_dir: str) -> dict:
    cmd = [sys.executable, "-m", "pipelines.keys.bench_gcd", "--moduli", str(moduli),
           "--cache", f"{cache_dir}/moduli-{moduli}.bin"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"moduli": moduli, "error": (done.stderr or done.stdout).strip()[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])
