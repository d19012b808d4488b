"""Benchmark input: millions of masscan ``-oD`` (ndjson) records, fast.

``write_bulk(out_dir, n_records, shards, seed)`` writes ``shards`` files
``masscan-bench-shard<i>of<n>.ndjson[.gz]`` with exactly ``n_records`` lines
in total: status records for a spread of ports, SSH banner records (2013
version mix) 5-8 s after their port's status record, and about 0.7% of
status lines retransmitted (written twice). Shards split the (ip, port)
space, as ``masscan --shard i/n`` does. Arrays are drawn with numpy; only
the final line formatting is a (tight) Python loop. Deterministic for a
given seed (and numpy version): same seed, same bytes.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from scanners.synth import content as c
from scanners.synth import population as P
from scanners.synth import writers as w

PORTS = np.array([22, 80, 443, 21, 25, 23, 8080, 3389, 3306, 1723, 110, 143], dtype=np.int64)
PORT_WEIGHTS = np.array([30, 25, 12, 6, 5, 6, 4, 4, 3, 2, 2, 1], dtype=np.float64)
SSH_BANNER_SHARE = 0.9     # SSH ports whose identification string masscan grabbed
DUPLICATE_RATE = 0.007
START = 1378684800         # Monday 2013-09-09 00:00 UTC
DURATION = 6 * 3600

_STATUS = ('{"ip":"%s","timestamp":"%d","port":%d,"proto":"tcp","rec_type":"status",'
           '"data":{"status":"open","reason":"syn-ack","ttl":%d}}\n')
_BANNER = ('{"ip":"%s","timestamp":"%d","port":%d,"proto":"tcp","rec_type":"banner",'
           '"data":{"service_name":"ssh","banner":"%s"}}\n')


def _addresses(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` IPv4 addresses (uint32) inside routed /8s, documentation nets removed."""
    octets = np.array([o for o, _ in P._V4_FIRST], dtype=np.uint32)
    weights = np.array([wt for _, wt in P._V4_FIRST], dtype=np.float64)
    ips = (rng.choice(octets, size=n, p=weights / weights.sum()) << 24) | rng.integers(0, 1 << 24, n, dtype=np.uint32)
    doc = (ips >> 8) == ((203 << 16) | 113)          # 203.0.113.0/24, TEST-NET-3
    ips[doc] ^= np.uint32(1 << 16)
    return ips


def _ip_strings(ips: np.ndarray) -> list[str]:
    o = [str(i) for i in range(256)]
    a, b, cc, d = ((ips >> s) & 0xFF for s in (24, 16, 8, 0))
    return [f"{o[p]}.{o[q]}.{o[r]}.{o[s]}" for p, q, r, s in zip(a.tolist(), b.tolist(), cc.tolist(), d.tolist())]


def _shard_lines(rng: np.random.Generator, n_obs: int, banners: list[str], bweights: np.ndarray) -> tuple:
    """Time-ordered lines for ``n_obs`` open ports; returns (lines, dups, banner count)."""
    ips = _ip_strings(_addresses(rng, n_obs))
    ports = rng.choice(PORTS, size=n_obs, p=PORT_WEIGHTS / PORT_WEIGHTS.sum())
    ttls = np.where(rng.random(n_obs) < 0.7, 64, 128) - rng.integers(4, 26, n_obs)
    ts = START + np.sort(rng.integers(0, DURATION, n_obs))
    has_banner = (ports == 22) & (rng.random(n_obs) < SSH_BANNER_SHARE)
    dup = rng.random(n_obs) < DUPLICATE_RATE
    b_idx = np.flatnonzero(has_banner)
    b_ts = ts[b_idx] + rng.integers(5, 9, b_idx.size)
    b_text = rng.choice(len(banners), size=b_idx.size, p=bweights)
    d_idx = np.flatnonzero(dup)
    # One event list: (time, kind 0=status 1=banner, observation, banner text); stable sort by time.
    t_all = np.concatenate([ts, b_ts, ts[d_idx]])
    kind = np.concatenate([np.zeros(n_obs, np.int8), np.ones(b_idx.size, np.int8), np.zeros(d_idx.size, np.int8)])
    obs = np.concatenate([np.arange(n_obs), b_idx, d_idx])
    text = np.concatenate([np.zeros(n_obs, np.int64), b_text, np.zeros(d_idx.size, np.int64)])
    order = np.lexsort((obs, t_all))
    pl, tl = ports.tolist(), ttls.tolist()
    lines = [_BANNER % (ips[o], t, pl[o], banners[x]) if k else _STATUS % (ips[o], t, pl[o], tl[o])
             for t, k, o, x in zip(t_all[order].tolist(), kind[order].tolist(), obs[order].tolist(),
                                   text[order].tolist())]
    return lines, int(d_idx.size), int(b_idx.size)


def write_bulk(out_dir: str, n_records: int, shards: int = 4, seed: int = 2013,
               fmt: str = "ndjson.gz") -> dict:
    """Write ``n_records`` masscan ndjson lines split over ``shards`` files in
    ``out_dir`` (``fmt`` ``ndjson.gz`` or ``ndjson``); return what was written."""
    if fmt not in ("ndjson.gz", "ndjson"):
        raise ValueError(f"fmt must be 'ndjson.gz' or 'ndjson', not {fmt!r}")
    rng = np.random.default_rng(seed)
    banners = [w.masscan_json_escape(b.encode()) for b in c.SSH_IDENTS]
    bweights = np.array(c.SSH_WEIGHTS) / sum(c.SSH_WEIGHTS)
    # Records per observation on average: status + SSH banner + duplicates.
    p22 = PORT_WEIGHTS[0] / PORT_WEIGHTS.sum()
    per_obs = 1 + p22 * SSH_BANNER_SHARE + DUPLICATE_RATE
    os.makedirs(out_dir, exist_ok=True)
    quota = [n_records // shards + (i < n_records % shards) for i in range(shards)]
    out = {"seed": seed, "records": 0, "files": {}}
    for i, want in enumerate(quota, 1):
        lines, dups, nban = _shard_lines(rng, int(want / per_obs * 1.02) + 16, banners, bweights)
        # The estimate overshoots a little; the scan "ends" at the quota.
        dups -= sum(1 for k in range(want, len(lines)) if lines[k] == lines[k - 1])
        nban -= sum(1 for line in lines[want:] if '"rec_type":"banner"' in line)
        data = "".join(lines[:want]).encode("ascii")
        name = f"masscan-bench-shard{i}of{shards}.{fmt}"
        blob = gzip.compress(data, compresslevel=1, mtime=0) if fmt.endswith(".gz") else data
        with open(os.path.join(out_dir, name), "wb") as fh:
            fh.write(blob)
        out["files"][name] = {"records": want, "banner_records": nban, "duplicates": dups, "bytes": len(blob)}
        out["records"] += want
    return out
