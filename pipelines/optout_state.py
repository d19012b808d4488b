"""Opt-outs are a property of the output root, not of one command line.

The first opt-out list applied to an OUT is recorded there, and every later
command that processes or publishes (run, reprocess, weekly, render) applies
the recorded list -- unioned with ``--exclude FILE`` when one is given, which
then grows the record. Forgetting ``--exclude`` once can no longer put
opted-out hosts back. Shrinking the list takes an explicit flag
(``--drop-optout-entries FILE`` or ``--replace-optout FILE``) and is logged
as a warning.

State, beside the published weeks::

    OUT/state/optout.txt    the recorded list in masscan --excludefile syntax
                            (merged ranges, canonical: CIDR where it is one, else a-b)
    OUT/state/optout.json   its sha256, entries digest (pipelines/state.py
                            optout_digest), size and the history of changes

``optout.txt`` is the file the pipeline reads (``RunConfig.exclude``), so
manifests and change detection see its meaning. A hand edit of
``optout.txt``, or one of the two files missing, is refused (``OptOutStateError``,
exit 2) rather than guessed at: a list that lost entries is the failure that
matters. An OUT whose weeks were published with a list before the state
existed, but has none recorded, is refused too until the list is given once.

``resolve`` reads only (``--dry-run`` uses it); ``commit`` writes the state.
The interval arithmetic is pure and works on the merged interval lists of
pipelines/optout.py.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import hashlib
import ipaddress
import json
import logging
import os
import tempfile

from pipelines.optout import OptOutError, merge_intervals, parse_exclude_text

log = logging.getLogger("portcensus")

STATE_DIR = "state"
LIST_FILE = "optout.txt"
RECORD_FILE = "optout.json"
HEADER = (b"# The opt-out list of this output root, recorded by portcensus (pipelines/optout_state.py).\n"
          b"# Do not edit: grow it with --exclude FILE, shrink it with --drop-optout-entries FILE or\n"
          b"# --replace-optout FILE. A hand edit is refused.\n")

Intervals = tuple[tuple[int, int], ...]


class OptOutStateError(OptOutError):
    """The recorded opt-out state is missing, damaged or contradicts the
    published weeks; the message says how to fix it (exit 2)."""


class Change(str, enum.Enum):
    """What a command does to the recorded list (closed vocabulary)."""
    NONE = "none"            # no list recorded, none given
    KEPT = "kept"            # the recorded list as it is (an --exclude adds nothing new)
    RECORDED = "recorded"    # the first list recorded for this output root
    GROWN = "grown"          # --exclude added entries
    DROPPED = "dropped"      # --drop-optout-entries removed entries
    REPLACED = "replaced"    # --replace-optout set a new list


@dataclasses.dataclass(frozen=True)
class Resolution:
    """The list a command applies, and how it differs from the record."""
    change: Change
    v4: Intervals
    v6: Intervals
    previous_digest: str | None
    added: int = 0             # addresses added (IPv4 + IPv6)
    removed: int = 0           # addresses removed
    source: str | None = None  # the file that changed it

    @property
    def empty(self) -> bool:
        return not self.v4 and not self.v6

    @property
    def digest(self) -> str | None:
        return None if self.empty else intervals_digest(self.v4, self.v6)

    @property
    def changed(self) -> bool:
        return self.change not in (Change.NONE, Change.KEPT)


def intervals_digest(v4, v6) -> str:
    """The digest of a list's meaning (its merged ranges), as
    pipelines/state.py optout_digest computes it from a file."""
    doc = {"4": [list(p) for p in v4], "6": [list(p) for p in v6]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


# -- interval arithmetic (pure) ------------------------------------------------
def union(a: Intervals, b: Intervals) -> Intervals:
    return tuple(merge_intervals(list(a) + list(b)))


def subtract(a: Intervals, b: Intervals) -> Intervals:
    """``a`` without the addresses of ``b`` (both merged and sorted)."""
    out, j = [], 0
    for first, last in a:
        cur = first
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= last and cur <= last:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            k += 1
        if cur <= last:
            out.append((cur, last))
    return tuple(out)


def size(intervals: Intervals) -> int:
    return sum(b - a + 1 for a, b in intervals)


def parse_file(path: str) -> tuple[Intervals, Intervals]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise OptOutError(f"{path}: cannot read the opt-out file ({exc.strerror or exc})") from exc
    return parse_bytes(data, path)


def parse_bytes(data: bytes, name: str) -> tuple[Intervals, Intervals]:
    entries = parse_exclude_text(data, name)
    return tuple(tuple(merge_intervals([(e.first, e.last) for e in entries if e.version == v]))
                 for v in (4, 6))


def canonical_text(v4: Intervals, v6: Intervals) -> bytes:
    """The list as masscan syntax, one merged range a line: a CIDR block
    where the range is one, else ``first-last``."""
    lines = []
    for version, intervals in ((4, v4), (6, v6)):
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        bits = 32 if version == 4 else 128
        for first, last in intervals:
            span = last - first + 1
            if span & (span - 1) == 0 and first % span == 0:
                plen = bits - span.bit_length() + 1
                lines.append(str(cls(first)) if plen == bits else f"{cls(first)}/{plen}")
            else:
                lines.append(f"{cls(first)}-{cls(last)}")
    return HEADER + "".join(line + "\n" for line in lines).encode()


# -- the state on disk ------------------------------------------------------------
def state_paths(out: str) -> tuple[str, str]:
    return os.path.join(out, STATE_DIR, LIST_FILE), os.path.join(out, STATE_DIR, RECORD_FILE)


def recorded(out: str) -> tuple[Intervals, Intervals, dict] | None:
    """(v4, v6, record) of OUT's recorded list; None when nothing is recorded.
    Raises OptOutStateError when the state is incomplete or was edited."""
    list_path, record_path = state_paths(out)
    has_list, has_record = os.path.exists(list_path), os.path.exists(record_path)
    if not has_list and not has_record:
        return None
    if not has_list:
        raise OptOutStateError(f"{list_path} is missing, but {record_path} records an opt-out list: restore it "
                               f"from a backup, or give the list again with --replace-optout FILE")
    if not has_record:
        raise OptOutStateError(f"{record_path} is missing beside {list_path}: restore it, or confirm the list "
                               f"with --replace-optout {list_path}")
    with open(list_path, "rb") as f:
        data = f.read()
    try:
        with open(record_path) as f:
            record = json.load(f)
    except ValueError:
        raise OptOutStateError(f"{record_path} is not valid JSON: restore it, or confirm the list with "
                               f"--replace-optout {list_path}") from None
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise OptOutStateError(f"{list_path} was changed outside portcensus (its sha256 differs from "
                               f"{record_path}): add entries with --exclude FILE, remove them with "
                               f"--drop-optout-entries FILE, or set the list with --replace-optout FILE")
    v4, v6 = parse_bytes(data, list_path)
    return v4, v6, record


def _published_with_list(out: str) -> list[str]:
    """Weeks under OUT whose manifest says an opt-out list was applied."""
    from pipelines.week import load_manifest, published_weeks
    weeks = []
    for w in published_weeks(out):
        run = (load_manifest(out, w) or {}).get("run") or {}
        if run.get("optout_entries_sha256") or run.get("exclude_sha256"):
            weeks.append(w)
    return weeks


def resolve(out: str, exclude: str | None = None, replace: str | None = None,
            drop: str | None = None) -> Resolution:
    """The list a command on ``out`` applies: the recorded one (or
    ``replace``), less ``drop``, plus ``exclude``. Reads only."""
    if replace and drop:
        raise OptOutStateError("--replace-optout and --drop-optout-entries do not go together: "
                               "--replace-optout alone sets the whole list")
    broken = False
    try:
        rec = recorded(out)
    except OptOutStateError:
        if not replace:
            raise
        rec, broken = None, True     # --replace-optout is the way out of a damaged or edited record
    if rec is None:
        old4, old6, old_digest = (), (), None
        if not (exclude or replace):
            weeks = _published_with_list(out)
            if weeks:
                raise OptOutStateError(
                    f"{out} has published weeks made with an opt-out list ({', '.join(weeks[:3])}"
                    f"{' ...' if len(weeks) > 3 else ''}) but no recorded list: give it once with "
                    f"--exclude FILE (it is then recorded in {os.path.join(out, STATE_DIR)}/)")
    else:
        old4, old6, record = rec
        old_digest = record.get("entries_sha256")
    v4, v6, source, change = old4, old6, None, None
    if replace:
        v4, v6 = parse_file(replace)
        source, change = replace, Change.REPLACED
    if drop:
        d4, d6 = parse_file(drop)
        v4, v6 = subtract(v4, d4), subtract(v6, d6)
        source, change = drop, Change.DROPPED
    if exclude:
        e4, e6 = parse_file(exclude)
        v4, v6 = union(v4, e4), union(v6, e6)
        source = source or exclude
    added = size(subtract(v4, old4)) + size(subtract(v6, old6))
    removed = size(subtract(old4, v4)) + size(subtract(old6, v6))
    if change is None or (not added and not removed and change is not Change.REPLACED):
        if rec is None:
            change = Change.RECORDED if (v4 or v6) else Change.NONE
        else:
            change = Change.GROWN if added else Change.KEPT
    if rec is None and change is Change.REPLACED and not broken:
        change = Change.RECORDED
    return Resolution(change, v4, v6, old_digest, added, removed, source)


def commit(out: str, res: Resolution) -> str | None:
    """Write the state for ``res`` (when it changed anything) and return the
    path of the list to apply (None: no list). Call under the run lock."""
    list_path, record_path = state_paths(out)
    if res.change is Change.NONE:
        return None
    if not res.changed:
        return list_path
    data = canonical_text(res.v4, res.v6)
    try:
        with open(record_path) as f:
            history = json.load(f).get("history", [])
    except (OSError, ValueError):
        history = []
    history.append({
        # operational state, never published: the clock is fine here
        "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "change": res.change.value, "source": os.path.abspath(res.source) if res.source else None,
        "added_addresses": str(res.added), "removed_addresses": str(res.removed),
        "entries_sha256": res.digest, "previous_entries_sha256": res.previous_digest})
    record = {"sha256": hashlib.sha256(data).hexdigest(), "entries_sha256": res.digest,
              "ipv4_ranges": len(res.v4), "ipv6_ranges": len(res.v6),
              "ipv4_addresses": size(res.v4), "ipv6_addresses": str(size(res.v6)), "history": history}
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    # The list first, then the record that vouches for it: a crash between
    # the two leaves a mismatch, which is refused loudly, never a silent loss.
    for path, blob in ((list_path, data), (record_path, (json.dumps(record, indent=2) + "\n").encode())):
        with open(path + ".tmp", "wb") as f:
            f.write(blob)
        os.replace(path + ".tmp", path)
    if res.change is Change.REPLACED:
        log.warning(f"opt-out list of {out} replaced by {res.source} (+{res.added:,} / -{res.removed:,} "
                    f"addresses against the last valid record)", extra={"optout_change": res.change.value})
    elif res.removed:
        log.warning(f"opt-out list of {out} shrunk by {res.removed:,} addresses ({res.change.value}: "
                    f"{res.source}): weeks with raw files are reprocessed with the smaller list; weeks "
                    f"whose raw files are gone keep those hosts excluded",
                    extra={"optout_change": res.change.value, "removed": str(res.removed)})
    else:
        log.info(f"opt-out list of {out} {res.change.value}: +{res.added:,} addresses",
                 extra={"optout_change": res.change.value, "added": str(res.added)})
    return list_path


def apply(out: str, exclude: str | None = None, replace: str | None = None,
          drop: str | None = None) -> tuple[str | None, Resolution]:
    """``resolve`` then ``commit``: (path of the list to apply or None, resolution)."""
    res = resolve(out, exclude, replace, drop)
    return commit(out, res), res


@contextlib.contextmanager
def previewed(out: str, res: Resolution):
    """The path of the list ``res`` would apply, without writing under OUT
    (for --dry-run and status): the recorded file, or a temporary copy of
    the changed list; None when there is no list."""
    if res.change is Change.NONE:
        yield None
    elif not res.changed:
        yield state_paths(out)[0]
    else:
        fd, path = tempfile.mkstemp(prefix="portcensus-optout-", suffix=".txt")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(canonical_text(res.v4, res.v6))
            yield path
        finally:
            os.unlink(path)


def describe(res: Resolution) -> str:
    """One line for the operator: which list a command applies."""
    n = size(res.v4) + size(res.v6)
    if res.change is Change.NONE:
        return "opt-out list: none recorded for this output root"
    text = {Change.KEPT: "the recorded list", Change.RECORDED: "recorded now (first list of this output root)",
            Change.GROWN: f"the recorded list grown by {res.added:,} addresses",
            Change.DROPPED: f"the recorded list less {res.removed:,} addresses",
            Change.REPLACED: f"replaced (+{res.added:,} / -{res.removed:,} addresses)"}[res.change]
    return f"opt-out list: {text}; {len(res.v4) + len(res.v6):,} ranges, {n:,} addresses"


def manifest_facts(out: str, path: str | None) -> dict | None:
    """What a week's manifest says about where its list came from: the
    recorded list of its output root (the only way lists are applied)."""
    if not path:
        return None
    list_path, _ = state_paths(out)
    return {"recorded_list": os.path.abspath(path) == os.path.abspath(list_path),
            "list": os.path.relpath(os.path.abspath(path), os.path.abspath(out))
            if os.path.abspath(path).startswith(os.path.abspath(out) + os.sep) else os.path.basename(path)}
