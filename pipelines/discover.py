"""Find a week's raw files (driver side, through Beam's FileSystems).

Layout: ``<raw>/<YYYY-Www>/**``. Everything below the week folder is a scanner
output except sidecars (``*.meta.json``, written by ``portcensus land``) and
hidden files (``.name``: editors, rsync temporaries, ``.partial`` uploads).
Works for any file system Beam knows (local, gs://, s3://, hdfs:// where the
extras are installed).
"""
from __future__ import annotations

import dataclasses
import os
import re
import stat

from apache_beam.io.filesystems import FileSystems

from pipelines.schema import DamageKind

WEEK_RE = re.compile(r"^(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])$")
SIDECAR_SUFFIX = ".meta.json"


class DiscoveryError(Exception):
    """The week or raw folder cannot be used (message is for the operator)."""


@dataclasses.dataclass(frozen=True)
class RawFile:
    path: str        # full path/URL for FileSystems.open
    name: str        # path relative to the week folder: the stable provenance name (escape_name)
    size: int        # bytes at discovery: reading stops there
    problem: str | None = None   # a DamageKind value: not a file to open (FIFO, loop, ...)
    problem_detail: str = ""

    @property
    def checksum_token(self) -> str | None:
        """What stands for the sha256 of a problem entry, both in the manifest and
        in the change check (pipelines/state.py): the two must agree, or a week
        with a FIFO would look changed on every run (issue 13)."""
        return f"problem:{self.problem}" if self.problem is not None else None


def escape_name(raw: bytes) -> str:
    """A file name as provenance text: valid UTF-8 as is, any other byte as
    ``\\xNN`` and a backslash doubled, so ``unescape_name`` gives the bytes back."""
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def unescape_name(name: str) -> bytes:
    out, i = bytearray(), 0
    while i < len(name):
        if name[i] == "\\" and name[i + 1:i + 2] == "x":
            out.append(int(name[i + 2:i + 4], 16))
            i += 4
        elif name[i] == "\\":
            out += b"\\"
            i += 2
        else:
            out += name[i].encode("utf-8")
            i += 1
    return bytes(out)


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
    """Sorted raw files of a week; raises DiscoveryError when there are none.

    A local raw folder is walked entry by entry (``_walk_local``): every entry
    that is not a regular file inside RAW comes back with a ``problem`` (it is
    listed in the manifest, never opened). Other file systems go through
    Beam's ``FileSystems.match``, which lists regular objects only."""
    check_week(week)
    base = week_dir(raw, week)
    if not FileSystems.exists(base):
        raise DiscoveryError(f"no raw folder for week {week}: {base} does not exist")
    if "://" not in base:
        files = _walk_local(base, raw)
    else:
        found = FileSystems.match([FileSystems.join(base, "**")])[0].metadata_list
        prefix = base.rstrip("/") + "/"
        files = []
        for m in found:
            name = m.path[len(prefix):] if m.path.startswith(prefix) else m.path
            if not _skipped(name.rsplit("/", 1)[-1]):
                files.append(RawFile(path=m.path, name=name, size=m.size_in_bytes))
    if not files:
        raise DiscoveryError(f"week {week} has no raw files under {base}")
    return sorted(files, key=lambda f: f.name)


def _skipped(leaf: str) -> bool:
    return leaf.startswith(".") or leaf.endswith(SIDECAR_SUFFIX)


def _walk_local(base: str, raw: str) -> list[RawFile]:
    """Every entry under ``base``, ``lstat``-ed before anything is opened:
    regular files (and symlinks to regular files inside RAW) to read; FIFOs,
    devices, sockets, links out of RAW, dangling links, loops and folders that
    cannot be listed as ``problem`` entries."""
    root = os.path.realpath(os.fsencode(raw))
    out: list[RawFile] = []
    seen_dirs: set[str] = set()

    def problem(path: bytes, rel: bytes, kind: DamageKind, detail: str) -> None:
        out.append(RawFile(path=os.fsdecode(path), name=escape_name(rel), size=0,
                           problem=kind.value, problem_detail=detail))

    def walk(folder: bytes, rel: bytes) -> None:
        real = os.path.realpath(folder)
        if real in seen_dirs:
            problem(folder, rel.rstrip(b"/"), DamageKind.SYMLINK_LOOP, "folder reached twice (a symlink loop)")
            return
        seen_dirs.add(real)
        try:
            names = sorted(e.name for e in os.scandir(folder))
        except OSError as exc:
            problem(folder, rel.rstrip(b"/") or b".", DamageKind.UNREADABLE_FOLDER,
                    f"cannot list the folder: {type(exc).__name__}")
            return
        for leaf in names:
            if _skipped(os.fsdecode(leaf)):
                continue
            path, name = os.path.join(folder, leaf), rel + leaf
            try:
                st = os.lstat(path)
            except OSError as exc:
                problem(path, name, DamageKind.READ_ERROR, f"cannot stat: {type(exc).__name__}")
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.path.realpath(path, strict=True)
                except FileNotFoundError:
                    problem(path, name, DamageKind.DANGLING_LINK, "symlink to nothing")
                    continue
                except OSError:      # ELOOP
                    problem(path, name, DamageKind.SYMLINK_LOOP, "symlink that resolves to itself")
                    continue
                if os.path.commonpath([root, target]) != root:
                    problem(path, name, DamageKind.OUTSIDE_RAW, "symlink that leads out of the raw folder")
                    continue
                st = os.stat(path)
            if stat.S_ISDIR(st.st_mode):
                walk(path, name + b"/")
            elif stat.S_ISREG(st.st_mode):
                out.append(RawFile(path=os.fsdecode(path), name=escape_name(name), size=st.st_size))
            else:
                problem(path, name, DamageKind.NOT_A_REGULAR_FILE,
                        "not a regular file (FIFO, device or socket): never opened")

    walk(os.fsencode(base), b"")
    return out
