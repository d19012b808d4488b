"""What changed since a week was published: the basis of incremental runs.

A published week's manifest records the checksum of every input file, the
opt-out list's entries, each GeoIP database's build, the public-cell ``-k``,
the responder thresholds and the pipeline code. A week needs a (re)run when
any of those differ now, or when it was never published. Only content that
can change the data counts: the opt-out list is compared by its normalised
entries (comments, spacing, order and duplicates do not trigger a run), a
GeoIP database by its ``database_type`` and ``build_epoch`` (the same build
re-downloaded or re-compressed does not).

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


def misnamed_week_dirs(raw: str) -> list[str]:
    """Folders under ``raw`` that look meant as weeks but are not named
    ``YYYY-Www`` (``2025-w23``, ``week23``): their files would never be read,
    so the operator must hear about them. Hidden folders are left alone."""
    if not os.path.isdir(raw):
        return []
    return sorted(d for d in os.listdir(raw)
                  if not d.startswith(".") and os.path.isdir(os.path.join(raw, d)) and not WEEK_RE.match(d))


def optout_digest(path: str | None) -> str | None:
    """sha256 of an opt-out list's meaning: its merged address ranges. A
    comment, blank line, reordering or duplicate entry leaves it unchanged;
    any address added or removed changes it. Parsing is pipelines.optout's."""
    if not path:
        return None
    from pipelines.optout import merge_intervals, parse_exclude_text
    with open(path, "rb") as f:
        entries = parse_exclude_text(f.read(), path)
    doc = {str(v): merge_intervals([(e.first, e.last) for e in entries if e.version == v]) for v in (4, 6)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def input_checksums(raw: str, week: str, out: str, write_cache: bool = True) -> dict[str, str]:
    """{file name: sha256} of a week's raw files, reusing cached checksums of
    files whose size and mtime did not change (``write_cache=False`` for a dry
    run, which must not write under OUT)."""
    cache_path = os.path.join(out, ".state", f"{week}.json")
    try:
        with open(cache_path) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    sums, new_cache = {}, {}
    for rf in discover(raw, week):
        if rf.problem:          # a FIFO, device or bad link: never opened (issue 13)
            sums[rf.name] = rf.checksum_token
            continue
        st = os.stat(rf.path)
        key = [st.st_size, st.st_mtime_ns]
        hit = cache.get(rf.name)
        digest = hit[2] if hit and hit[:2] == key else file_sha256(rf.path)
        sums[rf.name] = digest
        new_cache[rf.name] = key + [digest]
    if new_cache != cache and write_cache:
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


def week_state(week: str, raw: str, out: str, current: dict, write_cache: bool = True) -> WeekState:
    """Compare a week's published manifest with ``current`` (see
    ``current_inputs``) and the raw files on disk."""
    from pipelines.week import load_manifest
    m = load_manifest(out, week)
    if m is None:
        return WeekState(week, False, ["never published"])
    changes = []
    published = {f["file"]: f["sha256"] for f in m["files"]}
    now = input_checksums(raw, week, out, write_cache)
    added, removed = sorted(set(now) - set(published)), sorted(set(published) - set(now))
    changed = sorted(n for n in set(now) & set(published) if now[n] != published[n])
    for label, names in (("inputs added", added), ("inputs removed", removed), ("inputs changed", changed)):
        if names:
            changes.append(f"{label}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
    return WeekState(week, True, changes + settings_changes(m.get("run", {}), current))


def settings_changes(run: dict, current: dict) -> list[str]:
    """What differs between a manifest's ``run`` section and ``current``,
    beyond the raw files. Manifests from before a key was recorded fall back
    to what they have (the opt-out file's bytes)."""
    changes = []
    if "optout_entries_sha256" in run:
        if run["optout_entries_sha256"] != current.get("optout"):
            changes.append("opt-out list changed")
    elif run.get("exclude_sha256") != current.get("exclude"):
        changes.append("opt-out list changed")
    geo = {role: [v.get("database_type"), v.get("build_epoch")] for role, v in (run.get("geoip") or {}).items()}
    now = {role: list(v) for role, v in current.get("geoip_builds", {}).items()}
    if geo != now:
        roles = sorted(r for r in set(geo) | set(now) if geo.get(r) != now.get(r))
        changes.append(f"GeoIP database build changed: {', '.join(roles)}")
    if "k" in current and run.get("k") != current["k"]:
        changes.append(f"-k changed ({run.get('k')} -> {current['k']})")
    if "responders" in current and run.get("responder_thresholds") != current["responders"]:
        changes.append("responder thresholds changed")
    if run.get("code_sha256") != current.get("code"):
        changes.append("pipeline code changed")
    return changes


def current_inputs(exclude: str | None, country_db: str | None, asn_db: str | None, cache: str,
                   k: int | None = None, responders=None) -> dict:
    """What a run would use now (the right-hand side of week_state): code
    fingerprint, opt-out digest (and file checksum, for old manifests),
    each GeoIP database's (type, build_epoch), and ``k`` and the responder
    thresholds when given."""
    from pipelines.geoip import database_info
    builds = {}
    for role, path in (("country", country_db), ("asn", asn_db)):
        if path:
            info = database_info(path, cache)
            builds[role] = (info["database_type"], info["build_epoch"])
    cur = {"code": code_fingerprint(), "exclude": file_sha256(exclude) if exclude else None,
           "optout": optout_digest(exclude), "geoip_builds": builds}
    if k is not None:
        cur["k"] = k
    if responders is not None:
        cur["responders"] = dataclasses.asdict(responders)
    return cur
