"""What changed since a week was published: the basis of incremental runs.

A published week's manifest records the checksum of every input file, of the
opt-out list, of each GeoIP database and of the pipeline code. A week needs a
(re)run when any of those differ now, or when it was never published.

Hashing a big week's raw files on every cron run would be slow, so a small
cache (``OUT/.state/<week>.json``: name -> size, mtime, sha256) lets unchanged
files (same size and mtime) reuse their checksum; anything else is hashed.
The cache only saves time: the decision is always made on checksums.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from pipelines.discover import WEEK_RE, discover

CODE_DIRS = ("pipelines", "scanners")
CODE_SUFFIXES = (".py", ".toml")
# Code that cannot change a week's data: the site (it has its own fingerprint,
# pipelines/orchestrate.py site_fingerprint), the CLI and logging, the bench,
# the demo generator and the scan side. Editing these never reprocesses weeks.
NOT_DATA_CODE = ("pipelines/report/", "pipelines/bench", "pipelines/cli", "pipelines/logs.py",
                 "pipelines/land.py", "scanners/synth/", "scanners/plan.py", "scanners/scanplan.toml")


def code_fingerprint() -> str:
    """sha256 over the data-processing code (pipelines/ and scanners/ sources
    and rule files): any change that could change a week's data changes it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for top in CODE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if name.endswith(CODE_SUFFIXES) and not os.path.relpath(path, root).startswith(NOT_DATA_CODE):
                    h.update(os.path.relpath(path, root).encode() + b"\0")
                    with open(path, "rb") as f:
                        h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes as stored (never decompressed), on any file
    system Beam knows. The one checksum used for inputs, opt-out lists and
    the manifest, so "changed since published" compares like with like."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    h = hashlib.sha256()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def raw_weeks(raw: str) -> list[str]:
    if not os.path.isdir(raw):
        return []
    return sorted(d for d in os.listdir(raw) if WEEK_RE.match(d) and os.path.isdir(os.path.join(raw, d)))


def input_checksums(raw: str, week: str, out: str) -> dict[str, str]:
    """{file name: sha256} of a week's raw files, reusing cached checksums of
    files whose size and mtime did not change."""
    cache_path = os.path.join(out, ".state", f"{week}.json")
    try:
        with open(cache_path) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    sums, new_cache = {}, {}
    for rf in discover(raw, week):
        st = os.stat(rf.path)
        key = [st.st_size, st.st_mtime_ns]
        hit = cache.get(rf.name)
        digest = hit[2] if hit and hit[:2] == key else file_sha256(rf.path)
        sums[rf.name] = digest
        new_cache[rf.name] = key + [digest]
    if new_cache != cache:
        os.makedirs(os.path.dirname(cache_path), exist_ok=True)
        tmp = cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(new_cache, f, sort_keys=True)
        os.replace(tmp, cache_path)
    return sums


@dataclasses.dataclass
class WeekState:
    week: str
    published: bool
    changes: list[str]           # empty: up to date

    @property
    def needs_run(self) -> bool:
        return bool(self.changes)


def week_state(week: str, raw: str, out: str, current: dict) -> WeekState:
    """Compare a week's published manifest with ``current`` = {"code", "exclude",
    "geoip": {"country": sha, "asn": sha}} and the raw files on disk."""
    from pipelines.week import load_manifest
    m = load_manifest(out, week)
    if m is None:
        return WeekState(week, False, ["never published"])
    changes = []
    published = {f["file"]: f["sha256"] for f in m["files"]}
    now = input_checksums(raw, week, out)
    added, removed = sorted(set(now) - set(published)), sorted(set(published) - set(now))
    changed = sorted(n for n in set(now) & set(published) if now[n] != published[n])
    for label, names in (("inputs added", added), ("inputs removed", removed), ("inputs changed", changed)):
        if names:
            changes.append(f"{label}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
    run = m.get("run", {})
    if run.get("exclude_sha256") != current.get("exclude"):
        changes.append("opt-out list changed")
    geo = {k: v.get("sha256") for k, v in (run.get("geoip") or {}).items()}
    if geo != current.get("geoip", {}):
        changes.append("GeoIP databases changed")
    if run.get("code_sha256") != current.get("code"):
        changes.append("pipeline code changed")
    return WeekState(week, True, changes)


def current_inputs(exclude: str | None, country_db: str | None, asn_db: str | None, cache: str) -> dict:
    """Checksums of what a run would use now (the right-hand side of week_state)."""
    from pipelines.geoip import database_info
    geo = {}
    for role, path in (("country", country_db), ("asn", asn_db)):
        if path:
            geo[role] = database_info(path, cache)["sha256"]
    return {"code": code_fingerprint(), "exclude": file_sha256(exclude) if exclude else None,
            "geoip": geo}
