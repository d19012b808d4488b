"""How much of the targeted address space a week's files cover (an estimate).

Scanners split a job's targets into N shards of one random permutation
(masscan ``--shard k/N``, zmap ``--shards N --shard k-1``), so each shard holds
about 1/N of the job's (address, port) pairs, in random order. A *job* is the
set of files whose names differ only in ``-shard<k>of<N>``; a file without a
shard in its name is a job of one shard. Per job:

* an intact shard covers its 1/N;
* a shard whose damage lost records (truncated or corrupt compression, a bad
  binary record type, a cut last record) covers an unknown part of its 1/N:
  at least 0, and about (its complete records / the mean of its intact
  siblings' records), since shards are equal random slices;
* damage that loses nothing (a missing footer) counts as intact;
* a shard that never arrived covers nothing.

The week's figure is the mean over jobs: ``fraction`` (the estimate; a lost
shard without intact siblings is estimated at 0), ``at_least`` (the lower
bound) and ``exact`` (no shard missing or lossy: the figure is 1.0 exactly). With no damage both are 1.0 -- the files say
nothing about targets that were never scanned (an opt-out list, a plan with
fewer ports), which the methodology page states separately.
"""
from __future__ import annotations

import re

SHARD_RE = re.compile(r"-shard(\d+)of(\d+)(?=[._-])")
LOSSLESS_DAMAGE = {"missing_footer"}


def _job(name: str) -> tuple[str, int, int]:
    m = SHARD_RE.search(name)
    if not m:
        return name, 1, 1
    return name[:m.start()] + "-shard*" + name[m.end():], int(m.group(1)), int(m.group(2))


def coverage(files: list[dict]) -> dict:
    """``files``: manifest file entries (file, read, quarantined, damage)."""
    jobs: dict[str, dict] = {}
    for f in files:
        key, k, n = _job(f["file"])
        job = jobs.setdefault(key, {"n": n, "shards": {}})
        job["n"] = max(job["n"], n)
        lost = any(d["kind"] not in LOSSLESS_DAMAGE for d in f.get("damage", []))
        job["shards"][k] = {"lost": lost, "complete": f["read"] - f.get("quarantined", 0)}
    if not jobs:
        return {"fraction": None, "at_least": None, "exact": False, "jobs": 0, "method": "shards"}
    est_total = low_total = 0.0
    exact = True
    for job in jobs.values():
        exact &= len(job["shards"]) == job["n"] and not any(s["lost"] for s in job["shards"].values())
        intact = [s["complete"] for s in job["shards"].values() if not s["lost"]]
        mean = sum(intact) / len(intact) if intact else None
        est = low = 0.0
        for s in job["shards"].values():
            if not s["lost"]:
                est += 1
                low += 1
            elif mean:
                est += min(1.0, s["complete"] / mean)
        est_total += est / job["n"]
        low_total += low / job["n"]
    return {"fraction": round(est_total / len(jobs), 4), "at_least": round(low_total / len(jobs), 4),
            "exact": exact, "jobs": len(jobs), "method": "shards"}
