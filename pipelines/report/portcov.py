"""Coverage per port and job: the week's single coverage figure hides that
one port's only job lost a shard while every other port was complete.

A *job* is the set of input files that differ only in ``-shardKofN``
(pipelines/coverage.py); its coverage is that module's estimate over its own
files. A port's coverage is the coverage of the job that found most of its
hosts (``facts['by_file']``, from the clean rows' provenance); the other jobs
that found some are listed beside it. Files are numbered in manifest order,
as the damaged-files table numbers them: names never reach the site.
"""
from __future__ import annotations

import dataclasses

from pipelines.coverage import _job, coverage


@dataclasses.dataclass(frozen=True)
class JobCoverage:
    label: str                  # "masscan, files 4-6 (3 shards)"
    tool: str
    shards: int
    damaged: int                # shards whose damage lost records
    fraction: float | None
    at_least: float | None
    exact: bool
    hosts: int                  # open hosts of the port this job found


@dataclasses.dataclass(frozen=True)
class PortCoverage:
    fraction: float | None
    at_least: float | None
    exact: bool
    jobs: tuple[JobCoverage, ...]   # most hosts first

    def comparable(self, other: "PortCoverage | None", tolerance: float = 0.005) -> bool:
        """Two weeks' figures for this port differ by less than ``tolerance``."""
        if other is None or self.fraction is None or other.fraction is None:
            return False
        return abs(self.fraction - other.fraction) < tolerance


def _files_label(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"file {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"files {numbers[0]}\u2013{numbers[-1]}"
    return "files " + ", ".join(str(n) for n in numbers)


def port_coverage(manifest: dict, facts: dict | None) -> dict[str, PortCoverage]:
    """{"22/tcp": PortCoverage} for every port some file found open hosts on."""
    if not facts:
        return {}
    jobs: dict[str, list[tuple[int, dict]]] = {}
    for i, f in enumerate(manifest.get("files", []), 1):
        if "file" in f and "read" in f:
            jobs.setdefault(_job(f["file"])[0], []).append((i, f))
    by_file = facts.get("by_file", {})
    per_port: dict[str, list[JobCoverage]] = {}
    for key in sorted(jobs):
        members = jobs[key]
        cov = coverage([f for _, f in members])
        n = _job(members[0][1]["file"])[2]
        damaged = sum(1 for _, f in members if any(d.get("kind") != "missing_footer" for d in f.get("damage", [])))
        tool = members[0][1].get("tool") or "?"
        label = f"{tool}, {_files_label([i for i, _ in members])}" + (f" ({n} shards)" if n > 1 else "")
        found: dict[str, int] = {}
        for _, f in members:
            for port, hosts in by_file.get(f["file"], {}).items():
                found[port] = found.get(port, 0) + hosts
        for port, hosts in found.items():
            per_port.setdefault(port, []).append(JobCoverage(
                label, tool, n, damaged, cov["fraction"], cov["at_least"], bool(cov["exact"]), hosts))
    out = {}
    for port, lst in per_port.items():
        lst.sort(key=lambda j: (-j.hosts, j.label))
        main = lst[0]
        out[port] = PortCoverage(main.fraction, main.at_least, main.exact, tuple(lst))
    return out
