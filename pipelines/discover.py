"""Find a week's raw files (driver side, through Beam's FileSystems).

Layout: ``<raw>/<YYYY-Www>/**``. Everything below the week folder is a scanner
output except sidecars (``*.meta.json``, written by ``portcensus land``) and
hidden files (``.name``: editors, rsync temporaries, ``.partial`` uploads).
Works for any file system Beam knows (local, gs://, s3://, hdfs:// where the
extras are installed).
"""
from __future__ import annotations

import dataclasses
import re

from apache_beam.io.filesystems import FileSystems

WEEK_RE = re.compile(r"^(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])$")
SIDECAR_SUFFIX = ".meta.json"


class DiscoveryError(Exception):
    """The week or raw folder cannot be used (message is for the operator)."""


@dataclasses.dataclass(frozen=True)
class RawFile:
    path: str        # full path/URL for FileSystems.open
    name: str        # path relative to the week folder: the stable provenance name
    size: int


def check_week(week: str) -> str:
    if not WEEK_RE.match(week or ""):
        raise DiscoveryError(f"week {week!r} is not an ISO week like 2013-W37")
    year, wk = int(week[:4]), int(week[6:])
    import datetime
    try:
        datetime.date.fromisocalendar(year, wk, 1)
    except ValueError:
        raise DiscoveryError(f"week {week!r} does not exist ({year} has no week {wk})") from None
    return week


def week_dir(raw: str, week: str) -> str:
    return FileSystems.join(raw, week)


def discover(raw: str, week: str) -> list[RawFile]:
    """Sorted raw files of a week; raises DiscoveryError when there are none."""
    check_week(week)
    base = week_dir(raw, week)
    if not FileSystems.exists(base):
        raise DiscoveryError(f"no raw folder for week {week}: {base} does not exist")
    found = FileSystems.match([FileSystems.join(base, "**")])[0].metadata_list
    prefix = base.rstrip("/") + "/"
    files = []
    for m in found:
        name = m.path[len(prefix):] if m.path.startswith(prefix) else m.path
        leaf = name.rsplit("/", 1)[-1]
        if leaf.startswith(".") or leaf.endswith(SIDECAR_SUFFIX):
            continue
        files.append(RawFile(path=m.path, name=name, size=m.size_in_bytes))
    if not files:
        raise DiscoveryError(f"week {week} has no raw files under {base}")
    return sorted(files, key=lambda f: f.name)
