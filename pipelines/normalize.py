"""Validate and normalize RAW_SCHEMA batches (pure, vectorized, Beam-free).

``normalize_batch(batch, limits, excluded=...)`` splits one reader batch into

* ``work``: valid rows in WORK_SCHEMA (canonical IP text + ``ip16``, lower-
  cased transport, uint16-range port, UTC timestamp, a uint64 ``bucket_key``
  for hash-partitioned dedup);
* ``quarantine``: QUARANTINE_SCHEMA rows, one per invalid record, with the
  first failing check as the reason;
* ``excluded``: per-file counts of rows whose address is inside the opt-out
  list -- decided first, before any other check, so a record of an opted-out
  host is excluded even when it is invalid otherwise (never quarantined with
  its address) -- and ``special``: of valid rows in IANA special-purpose space
  (both counted, never kept).

Checks run in a fixed order so a record with several problems always gets
the same reason: ip, port, transport, timestamp (absurd, missing, outside
the week's window), status, banner size.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.iputil import IP16, ip16_to_hilo, parse_ips
from pipelines.schema import (HOST_KEY_FIELDS, PORT_SOURCES, QUARANTINE_SCHEMA, TIMESTAMP, TRANSPORTS,
                              QuarantineReason)
from scanners.base import MAX_BANNER_BYTES, excerpt

# Timestamps outside this window cannot come from a scanner (masscan's epoch
# seconds misread as microseconds, a zeroed field, a corrupt binary record).
MIN_TIMESTAMP_US = 631_152_000_000_000      # 1990-01-01
MAX_TIMESTAMP_US = 4_102_444_800_000_000    # 2100-01-01

STATUSES = ("open", "closed", "no_response")

WORK_SCHEMA = pa.schema([
    ("ip", pa.string()), ("ip_version", pa.int8()), ("ip16", IP16),
    ("port", pa.int32()), ("transport", pa.string()),
    ("status", pa.string()), ("reason", pa.string()), ("ttl", pa.int32()),
    ("timestamp", TIMESTAMP), ("service", pa.string()), ("banner", pa.binary()),
    ("tool", pa.string()), ("tool_version", pa.string()),
    ("source_file", pa.string()), ("source_offset", pa.int64()),
    ("bucket_key", pa.uint64()),     # per /24 or /48 network, see bucket_keys
] + [(f.name, f.type) for f in HOST_KEY_FIELDS] + [
    ("port_source", pa.int8()),      # PORT_SOURCES index; null: the record names its port
])


@dataclasses.dataclass(frozen=True)
class Limits:
    max_banner_bytes: int = MAX_BANNER_BYTES
    # [start, end) in UTC microseconds a record's time must fall in (the week
    # with its slack, see week_window); None: only the 1990..2100 check.
    window: tuple[int, int] | None = None
    # Exclude IANA special-purpose space (pipelines/special_purpose.py); off
    # only for scans of test networks (--allow-special-purpose).
    exclude_special_purpose: bool = True


DEFAULT_WEEK_SLACK_HOURS = 24


def week_window(week: str, slack_hours: int = DEFAULT_WEEK_SLACK_HOURS) -> tuple[int, int]:
    """[start, end) of ISO ``week`` (Monday 00:00 UTC to the next Monday),
    widened by ``slack_hours`` on each side for scans that run across
    midnight Sunday, in microseconds."""
    import datetime
    year, num = week.split("-W")
    monday = datetime.datetime.combine(datetime.date.fromisocalendar(int(year), int(num), 1),
                                       datetime.time(), tzinfo=datetime.timezone.utc)
    start = int(monday.timestamp()) * 1_000_000
    slack = slack_hours * 3_600_000_000
    return start - slack, start + 7 * 86_400_000_000 + slack


@dataclasses.dataclass
class NormalizeResult:
    work: pa.RecordBatch
    quarantine: pa.RecordBatch | None
    excluded: dict[str, int]          # source_file -> records excluded (opt-out)
    special: dict[str, int] = dataclasses.field(default_factory=dict)   # -> excluded as special_purpose


ExcludedFn = Callable[[pa.FixedSizeBinaryArray, np.ndarray], np.ndarray]

# Reasons by small-integer code (0: the row passed), so the per-row bookkeeping
# is an int8 array, not Python objects.
_REASONS = (None,) + tuple(QuarantineReason)


def _listed_spelled(texts, rows: np.ndarray, excluded: ExcludedFn) -> np.ndarray:
    """True for the ``rows`` whose raw address text spells a listed address
    (the decoding pipelines/optout.py listed_excerpts uses)."""
    from pipelines.leakcheck import literal_texts   # pure; its address regexes
    values = texts.to_pylist()
    at, spelled = [], []
    for i in np.flatnonzero(rows):
        v = values[i]
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        for t in literal_texts(v or ""):
            at.append(i)
            spelled.append(t)
    hit = np.zeros(len(values), bool)
    if spelled:
        p = parse_ips(pa.array(spelled, pa.string()))
        found = np.asarray(excluded(p.ip16, p.version), dtype=bool) & p.valid
        hit[np.asarray(at)[found]] = True
    return hit


def normalize_batch(batch: pa.RecordBatch, limits: Limits = Limits(),
                    excluded: ExcludedFn | None = None) -> NormalizeResult:
    n = batch.num_rows
    code = np.zeros(n, dtype=np.int8)   # first failing check per row: _REASONS index, 0 = none

    def fail(mask: np.ndarray, why: QuarantineReason) -> None:
        code[mask & (code == 0)] = _REASONS.index(why)

    ips = parse_ips(batch.column("ip"))
    fail(~ips.valid, QuarantineReason.INVALID_IP)

    port = batch.column("port")
    port_np = pc.fill_null(port, -1).to_numpy(zero_copy_only=False)
    fail(_isnull(port), QuarantineReason.MISSING_FIELD)
    fail((port_np < 0) | (port_np > 65535), QuarantineReason.INVALID_PORT)

    transport = pc.utf8_lower(batch.column("transport"))
    fail(~_np(pc.is_in(transport, pa.array(TRANSPORTS))), QuarantineReason.INVALID_TRANSPORT)

    ts = batch.column("timestamp").cast(pa.int64())
    ts_np = pc.fill_null(ts, 0).to_numpy(zero_copy_only=False)
    has_ts = ~_isnull(ts)
    fail(has_ts & ((ts_np < MIN_TIMESTAMP_US) | (ts_np > MAX_TIMESTAMP_US)),
         QuarantineReason.INVALID_TIMESTAMP)
    # The readers already gave a record without a time its file's (sidecar
    # scan start, scanner header); still none: it cannot be placed in a week.
    fail(~has_ts, QuarantineReason.MISSING_TIMESTAMP)
    if limits.window is not None:
        lo, hi = limits.window
        fail((ts_np < lo) | (ts_np >= hi), QuarantineReason.OUTSIDE_WEEK)

    status = pc.utf8_lower(batch.column("status"))
    fail(~_isnull(status) & ~_np(pc.is_in(status, pa.array(STATUSES))), QuarantineReason.MALFORMED_RECORD)

    banner = batch.column("banner")
    blen = pc.fill_null(pc.binary_length(banner), 0).to_numpy(zero_copy_only=False)
    fail(blen > limits.max_banner_bytes, QuarantineReason.OVERSIZED_RECORD)
    # A record with neither a status nor a banner says nothing about the port.
    fail(_isnull(status) & _isnull(banner), QuarantineReason.MISSING_FIELD)

    # Opted-out hosts before everything else: their records are excluded
    # whatever else is wrong with them, so no quarantine row keeps their address.
    ex_counts: dict[str, int] = {}
    ex = np.zeros(n, dtype=bool)
    if excluded is not None and ips.valid.any():
        ex = np.asarray(excluded(ips.ip16, ips.version), dtype=bool) & ips.valid
    if excluded is not None and not ips.valid.all():
        # an address field that does not parse (" 10.0.0.1", "10.0.0.1:22",
        # "[2001:db8::1]") may still spell a listed host: excluded, not quarantined
        ex |= _listed_spelled(batch.column("ip"), ~ips.valid, excluded)
    if ex.any():
        ex_counts = _count_by_file(batch, ex)

    bad = (code != 0) & ~ex
    quarantine = _quarantine_rows(batch, np.flatnonzero(bad), code) if bad.any() else None

    good = (code == 0) & ~ex
    sp_counts: dict[str, int] = {}
    if limits.exclude_special_purpose and good.any():
        from pipelines.special_purpose import default as special_purpose
        sp = special_purpose().contains(ips.ip16, ips.version) & good
        if sp.any():
            sp_counts = _count_by_file(batch, sp)
            good &= ~sp

    work = pa.RecordBatch.from_arrays([
        ips.text,
        pa.array(ips.version),
        ips.ip16,
        port,
        transport,
        status,
        batch.column("reason"),
        batch.column("ttl"),
        batch.column("timestamp"),
        batch.column("service"),
        banner,
        batch.column("tool"),
        batch.column("tool_version"),
        batch.column("source_file"),
        batch.column("source_offset"),
        pa.array(bucket_keys(ips.ip16, port, transport), pa.uint64()),
        *(batch.column(f.name) for f in HOST_KEY_FIELDS),
        _port_source_codes(batch.column("port_source")),
    ], schema=WORK_SCHEMA)
    # Usually every row is good: then nothing is copied here (the bucket split
    # copies each row once anyway); else one filter over the whole batch.
    if not good.all():
        work = work.filter(pa.array(good))
    return NormalizeResult(work=work, quarantine=quarantine, excluded=ex_counts, special=sp_counts)


def _port_source_codes(col: pa.Array) -> pa.Array:
    """RAW ``port_source`` text -> int8 PORT_SOURCES index (null stays null:
    the record named its port; nearly every batch is all null, and costs nothing)."""
    if col.null_count == len(col):
        return pa.nulls(len(col), pa.int8())
    code = pc.index_in(col, value_set=pa.array(PORT_SOURCES))
    # A value outside the enum is a reader bug; never let it pass as evidence.
    code = pc.if_else(pc.and_(pc.is_valid(col), pc.is_null(code)), PORT_SOURCES.index("assumed"), code)
    return code.cast(pa.int8())


def bucket_keys(ip16: pa.FixedSizeBinaryArray, port: pa.Array, transport: pa.Array) -> np.ndarray:
    """A well-mixed uint64 per *network*: the /24 of an IPv4 address, the /48
    of an IPv6 one. Every port of a host and every host of a network meet in
    one dedup bucket, so single-responder networks and many-port hosts are
    found after the merge without another shuffle; the same observation
    always gets the same key in any file or process (no salted ``hash()``).
    ``port`` and ``transport`` are accepted for the signature's sake and
    deliberately ignored."""
    hi, lo = ip16_to_hilo(ip16)
    is_v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    net_hi = np.where(is_v4, np.uint64(0), hi & np.uint64(0xFFFF_FFFF_FFFF_0000))
    net_lo = np.where(is_v4, lo & np.uint64(0xFFFF_FFFF_FFFF_FF00), np.uint64(0))
    with np.errstate(over="ignore"):
        return _mix(_mix(net_hi) ^ net_lo)


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: cheap, well-distributed, identical on every machine.
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _np(arr: pa.Array) -> np.ndarray:
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(bool)


def _isnull(arr: pa.Array) -> np.ndarray:
    return pc.is_null(arr).to_numpy(zero_copy_only=False).astype(bool)


def _count_by_file(batch: pa.RecordBatch, mask: np.ndarray) -> dict[str, int]:
    files = batch.column("source_file").filter(pa.array(mask))
    vc = pc.value_counts(files)
    return {v["values"].as_py(): v["counts"].as_py() for v in vc}


_DETAIL = {
    QuarantineReason.INVALID_IP.value: "address is not valid IPv4 or IPv6 text",
    QuarantineReason.MISSING_FIELD.value: "record lacks a port, or has neither status nor banner",
    QuarantineReason.INVALID_PORT.value: "port outside 0..65535",
    QuarantineReason.INVALID_TRANSPORT.value: "transport is not tcp, udp, sctp or icmp",
    QuarantineReason.INVALID_TIMESTAMP.value: "timestamp outside 1990..2100",
    QuarantineReason.MALFORMED_RECORD.value: "status is not open, closed or no_response",
    QuarantineReason.OVERSIZED_RECORD.value: "banner longer than the limit",
    QuarantineReason.MISSING_TIMESTAMP.value: "no timestamp in the record, and none for its file (sidecar scan_start_us)",
    QuarantineReason.OUTSIDE_WEEK.value: "timestamp outside the week's window (the ISO week plus the slack)",
}


def _quarantine_rows(batch: pa.RecordBatch, rows: np.ndarray, code: np.ndarray) -> pa.RecordBatch:
    """Quarantine rows for invalid records; the excerpt shows what was wrong."""
    sub = batch.take(pa.array(rows))
    reasons = [_REASONS[c].value for c in code[rows].tolist()]
    ips = sub.column("ip").to_pylist()
    ports = sub.column("port").to_pylist()
    trans = sub.column("transport").to_pylist()
    banners = sub.column("banner").to_pylist()
    excerpts = []
    for ip, port, tr, b in zip(ips, ports, trans, banners):
        head = f"ip={ip!r} port={port!r} transport={tr!r} banner=".encode("utf-8", "backslashreplace")
        excerpts.append(excerpt(head + (b or b"")[:80]))
    return pa.RecordBatch.from_arrays([
        sub.column("source_file"),
        sub.column("source_offset"),
        pa.array(reasons, pa.string()),
        pa.array([_DETAIL[r] for r in reasons], pa.string()),
        pa.array(excerpts, pa.string()),
    ], schema=QUARANTINE_SCHEMA)


# -- the shuffle form ---------------------------------------------------------
# What crosses the dedup GroupByKey is held in memory by in-process runners and
# written to disk by distributed ones, so it is packed: the canonical IP text
# (derivable from ip16) and the bucket key (spent) are dropped, repeated
# strings are dictionary-encoded, and all-null columns (host keys, for every
# scanner but zgrab2 ssh) are left out. This cut the bytes per row ~2.5x.
_SHUFFLE_DROP = ("ip", "bucket_key")
_SHUFFLE_DICT = ("transport", "status", "reason", "service", "tool", "tool_version", "source_file",
                 "key_algorithm")


def pack(work: pa.RecordBatch, keep: tuple[str, ...] = ()) -> pa.RecordBatch:
    """The shuffle form of ``work``; ``keep`` names dropped columns to keep
    (the file shuffle keeps ``bucket_key`` to split big buckets into passes)."""
    cols, names = [], []
    for name in work.schema.names:
        col = work.column(name)
        if (name in _SHUFFLE_DROP and name not in keep) or (len(col) and col.null_count == len(col)):
            continue
        cols.append(col.dictionary_encode() if name in _SHUFFLE_DICT else col)
        names.append(name)
    return pa.RecordBatch.from_arrays(cols, names=names)


def unpack_table(packed: list[pa.RecordBatch]) -> pa.Table:
    """Packed batches (``pack``) as one WORK_SCHEMA table; ``ip`` and
    ``bucket_key`` come back as nulls unless kept (the merge derives the text
    of the rows it keeps from ip16). One chunk, its rows in no promised
    order: the merge is a total order on content. Batches with the same columns are
    decoded together, a column per call rather than a column per batch: a
    bucket of a big week has one part per spilled batch (hundreds)."""
    groups: dict[tuple, list[pa.RecordBatch]] = {}
    for b in packed:
        groups.setdefault(tuple(b.schema), []).append(b)   # fields: name, type, nullability
    tables = []
    for batches in groups.values():
        # One chunk (the merge sorts and gathers on one; a column past 2 GiB
        # stays split), and a dictionary column's text written once: the
        # parts' dictionaries are unified, then decoded together.
        t = pa.Table.from_batches(batches).combine_chunks()
        cols = []
        for f in WORK_SCHEMA:
            if f.name in t.column_names:
                col = t.column(f.name)
                cols.append(col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col)
            else:
                cols.append(pa.nulls(t.num_rows, f.type))
        tables.append(pa.Table.from_arrays(cols, schema=WORK_SCHEMA))
    if len(tables) > 1:
        return pa.concat_tables(tables).combine_chunks()
    return tables[0] if tables else WORK_SCHEMA.empty_table()
