"""Land finished scanner outputs: move them into ``<raw>/<week>/`` with a sidecar.

``land(raw_root, week, files, meta)`` checks every file first and moves none
unless all pass. For each file it writes ``<name>.meta.json``::

    {"tool": "masscan", "tool_version": "1.3.2", "command": "masscan ... -oD - | gzip -c > ...",
     "shard": 3, "seed": 2117775754, "start": "2026-11-23T00:00:05Z", "end": "2026-11-23T06:10:00Z",
     "port_hint": null, "transport_hint": "tcp", "scan_start_us": 1795392005000000,
     "sha256": "9f2c...", "bytes": 1834, "format": "masscan-ndjson", "compression": "gzip", ...}

A file still being written is refused. The signals, any one of which refuses:

1. an open writer: a process holds the file open for writing (``/proc/*/fd``
   + ``fdinfo`` flags). Sees only processes of this host and PID namespace.
2. it changed: size or mtime differ between the check's start and its end,
   which is at least ``settle`` seconds later (the whole file is read between).
3. its content is unfinished: a compressed stream without its end marker (a
   ``gzip -c >`` pipe that is still running), a format footer missing (masscan
   ``-oJ`` ``]``, ``-oL`` ``# end``, ``-oB`` trailer), or a last line cut short.
   masscan ndjson and zmap CSV have no footer: for them the gzip end marker
   (the plan pipes outputs through gzip) is the completion signal.

Content that is no scanner output at all, or whose tool contradicts ``meta``,
is refused too. An existing ``<raw>/<week>/<name>`` is never overwritten:
``replace=True`` keeps the old file as ``.<name>.replaced-<n>`` (hidden, so
the pipeline does not read it twice) with its sidecar beside it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import time
from typing import Callable, Iterable, Iterator

import pyarrow.compute as pc

from pipelines.discover import SIDECAR_SUFFIX, check_week
from pipelines.schema import DamageKind
from scanners.base import ReadContext
from scanners.compression import DEFAULT_MAX_INFLATION, READ_CHUNK, decompression_limit
from scanners.registry import read_file_chunks

DEFAULT_SETTLE = 2.0
SIDECAR_KEYS = ("tool", "tool_version", "command", "shard", "seed", "start", "end",
                "port_hint", "transport_hint", "scan_start_us")
# Damage that means "the writer has not finished", not "the data is bad".
UNFINISHED = {DamageKind.COMPRESSION_TRUNCATED, DamageKind.MISSING_FOOTER,
              DamageKind.PARTIAL_LAST_RECORD}
_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


class LandError(Exception):
    """A file cannot be landed; the message says which and why."""


class StillWriting(LandError):
    """The file is (probably) still being written."""


class NotScannerOutput(LandError):
    """The content is no masscan/zmap/zgrab2 output, or not the tool meta says."""


class AlreadyLanded(LandError):
    """The week already holds a file of that name (use replace)."""


@dataclasses.dataclass(frozen=True)
class Landed:
    source: str
    path: str
    sidecar: str
    meta: dict
    replaced: str | None     # where the previous file of that name went


@dataclasses.dataclass
class _Checked:
    source: str
    name: str
    meta: dict


def land(raw_root: str, week: str, files: Iterable[str], meta: dict | None = None, *,
         per_file: dict[str, dict] | None = None, replace: bool = False,
         settle: float = DEFAULT_SETTLE, open_writers: Callable[[str], list[int]] | None = None
         ) -> list[Landed]:
    """Check every file, then move all of them; raises LandError (nothing moved)
    if any file is refused. ``meta`` holds sidecar keys common to all files,
    ``per_file[path]`` overrides them for one file."""
    check_week(week)
    files = list(files)
    if not files:
        raise LandError("no files to land")
    names = [os.path.basename(f) for f in files]
    if len(set(names)) != len(names):
        raise LandError("two files with the same name: a week folder holds each name once")
    writers = open_writers or writers_of
    target_dir = os.path.join(raw_root, week)
    started = {f: _stat(f) for f in files}
    checked, problems = [], []
    for f in files:
        m = {**(meta or {}), **((per_file or {}).get(f, {}))}
        try:
            checked.append(_Checked(f, os.path.basename(f), examine(f, m)))
            if not replace and os.path.lexists(os.path.join(target_dir, os.path.basename(f))):
                raise AlreadyLanded(f"{os.path.basename(f)}: already in {target_dir} "
                                    "(use --replace to replace it; the old one is kept)")
        except LandError as exc:
            problems.append(exc)
    # The settle interval runs from the first stat; reading the files counts.
    remaining = settle - (time.monotonic() - min(s[2] for s in started.values()))
    if remaining > 0:
        time.sleep(remaining)
    for f in files:
        if _stat(f)[:2] != started[f][:2]:
            problems.append(StillWriting(f"{f}: size or mtime changed within {settle:g}s "
                                         "(still being written?)"))
        pids = writers(f)
        if pids:
            problems.append(StillWriting(f"{f}: open for writing by pid {', '.join(map(str, pids))}"))
    if problems:
        if len(problems) == 1:
            raise problems[0]
        first = problems[0]
        raise type(first)(f"{len(problems)} files refused; first: {first}")
    os.makedirs(target_dir, exist_ok=True)
    return [_move(c, target_dir, replace) for c in checked]


def examine(path: str, meta: dict) -> dict:
    """Read ``path`` once: hash, size, format, completeness. Returns the sidecar."""
    if not os.path.isfile(path):
        raise LandError(f"{path}: no such file")
    ctx = ReadContext(source=os.path.basename(path))
    for key in ("port_hint", "transport_hint", "scan_start_us"):
        if meta.get(key) is not None:
            ctx.facts[key] = meta[key]
    digest, size = hashlib.sha256(), 0
    lo = hi = None

    def chunks() -> Iterator[bytes]:
        nonlocal size
        with open(path, "rb") as fh:
            while b := fh.read(READ_CHUNK):
                size += len(b)
                digest.update(b)
                yield b

    limit = decompression_limit(os.path.getsize(path))   # the pipeline's default ceiling: a bomb stops here too
    for batch in read_file_chunks(chunks(), ctx, max_bytes=limit):
        ts = batch.column("timestamp")
        if batch.num_rows and ts.null_count < batch.num_rows:
            mm = pc.min_max(ts.cast("int64"))
            mn, mx = mm["min"].as_py(), mm["max"].as_py()
            lo = mn if lo is None else min(lo, mn)
            hi = mx if hi is None else max(hi, mx)
    if any(d.kind == DamageKind.DECOMPRESSION_LIMIT for d in ctx.damages):
        raise LandError(f"{path}: decompresses past {limit} bytes (the default ceiling, "
                        f"{DEFAULT_MAX_INFLATION}x its size, at least 256 MiB): "
                        "a decompression bomb, not scan output")
    unfinished = sorted({d.kind.value for d in ctx.damages if d.kind in UNFINISHED})
    if unfinished:
        raise StillWriting(f"{path}: unfinished content ({', '.join(unfinished)}); "
                           "still being written, or cut short")
    fmt, tool = ctx.facts.get("format"), ctx.facts.get("tool")
    if fmt == "unknown" and size and _has_content(ctx):
        raise NotScannerOutput(f"{path}: not masscan, zmap or zgrab2 output")
    if fmt == "unknown":      # empty: a shard that found nothing is still a result
        if not meta.get("tool"):
            raise NotScannerOutput(f"{path}: empty, and no tool given to say what it is")
        fmt, tool = "empty", meta["tool"]
    if meta.get("tool") and meta["tool"] != tool:
        raise NotScannerOutput(f"{path}: content is {tool} output ({fmt}), not {meta['tool']}")
    side = {k: meta.get(k) for k in SIDECAR_KEYS}
    side["tool"] = tool
    side["tool_version"] = meta.get("tool_version") or ctx.facts.get("tool_version")
    # No start/end given: the first/last record times are the best evidence.
    side["start"] = meta.get("start") or _iso(lo)
    side["end"] = meta.get("end") or _iso(hi)
    if side["scan_start_us"] is None and meta.get("start"):
        side["scan_start_us"] = _us(meta["start"])
    side.update(sha256=digest.hexdigest(), bytes=size, format=fmt,
                compression=ctx.facts.get("compression", "none"),
                times_from="meta" if meta.get("start") else ("records" if lo is not None else None),
                records=ctx.records_read,
                damage=sorted({d.kind.value for d in ctx.damages}))
    return side


def _has_content(ctx: ReadContext) -> bool:
    return any(d.kind == DamageKind.UNKNOWN_FORMAT for d in ctx.damages)


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    return dt.datetime.fromtimestamp(us / 1e6, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _us(text: str) -> int:
    try:
        t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise LandError(f"start {text!r} is not an ISO time like 2026-11-23T00:00:05Z") from None
    if t.tzinfo is None:
        raise LandError(f"start {text!r} has no time zone (add Z for UTC)")
    return int(t.timestamp() * 1_000_000)


def _stat(path: str) -> tuple[int, int, float]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise LandError(f"{path}: cannot stat ({exc.strerror})") from None
    return st.st_size, st.st_mtime_ns, time.monotonic()


def writers_of(path: str, proc: str = "/proc") -> list[int]:
    """PIDs holding ``path`` open for writing (same device and inode).

    Linux only; other hosts (NFS) and other PID namespaces are invisible, and
    /proc entries we may not read are skipped (run as the scanning user or root)."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    me, found = os.getpid(), []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if int(pid) == me:
            continue
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to read
        for fd in fds:
            try:
                fst = os.stat(os.path.join(fd_dir, fd))
                if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                    continue
                with open(os.path.join(proc, pid, "fdinfo", fd)) as info:
                    flags = next((int(line.split()[1], 8) for line in info
                                  if line.startswith("flags:")), 0)
            except (OSError, ValueError):
                continue  # the fd closed while we looked
            if flags & os.O_ACCMODE in _WRITE_MODES:
                found.append(int(pid))
                break
    return sorted(found)


def _move(c: _Checked, target_dir: str, replace: bool) -> Landed:
    final = os.path.join(target_dir, c.name)
    replaced = None
    if os.path.lexists(final):
        if not replace:
            raise AlreadyLanded(f"{c.name}: already in {target_dir}")
        replaced = _keep_old(final)
    side_path = final + SIDECAR_SUFFIX
    # The sidecar goes first: whoever sees the data file also sees its sidecar.
    tmp = os.path.join(target_dir, f".{c.name}.meta.landing")
    with open(tmp, "w") as fh:
        json.dump(c.meta, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, side_path)
    _place(c.source, final, c.meta["sha256"])
    return Landed(source=c.source, path=final, sidecar=side_path, meta=c.meta, replaced=replaced)


def _keep_old(final: str) -> str:
    folder, name = os.path.split(final)
    n = 1
    while os.path.lexists(os.path.join(folder, f".{name}.replaced-{n}")):
        n += 1
    kept = os.path.join(folder, f".{name}.replaced-{n}")
    os.rename(final, kept)
    if os.path.exists(final + SIDECAR_SUFFIX):
        os.rename(final + SIDECAR_SUFFIX, kept + SIDECAR_SUFFIX)
    return kept


def _place(source: str, final: str, sha256: str) -> None:
    """Move ``source`` to ``final`` without ever clobbering: a hard link fails
    if ``final`` appeared meanwhile. Across file systems: copy, verify, link."""
    folder, name = os.path.split(final)
    tmp = os.path.join(folder, f".{name}.landing")
    try:
        os.rename(source, tmp)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # another file system: copy instead
            raise LandError(f"{source}: cannot move ({exc.strerror})") from None
        _copy_verified(source, tmp, sha256)
        os.unlink(source)
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise AlreadyLanded(f"{name}: appeared in {folder} while landing; "
                            f"the new file is kept as {tmp}") from None
    os.unlink(tmp)


def _copy_verified(source: str, dest: str, sha256: str) -> None:
    h = hashlib.sha256()
    with open(source, "rb") as src, open(dest, "wb") as dst:
        while b := src.read(READ_CHUNK):
            h.update(b)
            dst.write(b)
        dst.flush()
        os.fsync(dst.fileno())
    if h.hexdigest() != sha256:
        os.unlink(dest)
        raise StillWriting(f"{source}: content changed while landing (sha256 differs)")
    shutil.copystat(source, dest)
