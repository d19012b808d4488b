"""Merge the records of one dedup bucket into clean observations (pure).

One clean row per (ip, port, transport). Its records are the port's status
record(s) and banner record(s), from any file, shard or retransmission.

Merge rules (documented in docs/DATA.md; every rule is a total order on record
*content*, so the result does not depend on file order or shard split):

1. Status: ``open`` beats ``closed`` beats ``no_response``. A port with only
   banner records is ``open`` (it answered). ``reason`` and ``ttl`` come from
   the deciding record: best status first, then earliest timestamp, then the
   smallest (reason, ttl).
2. ``first_seen``/``last_seen``: min/max timestamp over all the records.
3. Banners: one per banner type (``service``). Among records of the same type,
   a non-empty banner beats an empty one (masscan's second UDP memcached
   datagram is an empty banner), then the earliest timestamp, then the
   smallest bytes.
4. Accounting: the deciding record is *accepted*; every other record of the
   observation is *merged* (its banner joined the row, or it repeated what the
   row already says). Provenance columns name the deciding record.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.iputil import ip16_text, ip16_to_hilo
from pipelines.layout import file_keys
from pipelines.schema import HOST_KEY_FIELDS, OBSERVATION_SCHEMA, PORT_SOURCES

_STATUS_RANK = {"open": 0, "closed": 1, "no_response": 2}
BANNER_ONLY_RANK = 3
# What a clean row takes from its deciding record.
_REP_COLUMNS = ["ip16", "ip_version", "port", "transport", "status", "reason", "ttl", "tool", "tool_version",
                "source_file", "source_offset"]


@dataclasses.dataclass
class MergeResult:
    clean: pa.Table                  # OBSERVATION_SCHEMA + ip16, sorted by ([file,] ip16, port, transport)
    accepted: dict[str, int]         # source_file -> records accepted
    merged: dict[str, int]           # source_file -> records merged


def merge_bucket(work: pa.Table, week: str, partition_ports: tuple[int, ...] | None = None) -> MergeResult:
    """``work``: WORK_SCHEMA rows of one bucket (any order, any files). With
    ``partition_ports`` the clean rows come in the order of the files they
    are written to (``layout.file_keys``), then by (ip16, port, transport):
    the order the writer would otherwise make with a copy of every column.
    The rows themselves do not depend on it."""
    n = work.num_rows
    if n == 0:
        return MergeResult(_empty_clean(), {}, {})
    work = work.combine_chunks()   # one chunk per normalize batch: sorting and takes are faster on one
    rank = pc.fill_null(
        pc.index_in(work.column("status"), value_set=pa.array(list(_STATUS_RANK))),
        BANNER_ONLY_RANK).cast(pa.int8())
    keys = _sort_keys(work, rank, partition_ports)
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in keys.column_names])
    order_np = order.to_numpy()

    # Groups are runs of equal (ip16, port, transport) in sorted order; only
    # the columns that need it are taken in that order, never the whole table.
    group_cols = ("_hi", "_lo", "port", "transport")
    starts = _group_starts(keys.select(group_cols).take(order), group_cols)
    first = np.flatnonzero(starts)                         # sorted position of each group's first row
    n_groups = len(first)
    gid = np.cumsum(starts) - 1                            # group of each sorted position
    rep = work.select(_REP_COLUMNS).take(order_np[first])  # deciding record per group
    first_seen, last_seen = _seen(work.column("timestamp").take(order), first)
    records = np.diff(np.append(first, n)).astype(np.int32)

    row_gid = np.empty(n, np.int64)                        # group of each row of work
    row_gid[order_np] = gid
    status = pc.if_else(pc.equal(rank.take(pa.array(order_np[first])), BANNER_ONLY_RANK),
                        pa.scalar("open"), rep.column("status"))

    # Unsorted rows will do: _banner_maps sorts by every column it returns.
    keys_b, items, fallback_lists, offsets = _banner_maps(
        work.select(["service", "banner", "timestamp"]).append_column("_gid", pa.array(row_gid)), n_groups)
    host_key = _host_keys(work, order_np, gid, n_groups)
    banners = pa.MapArray.from_arrays(offsets, keys_b, items)

    clean = pa.table({
        "week": pa.repeat(pa.scalar(week), n_groups),
        # From ip16: the text is not shipped through the shuffle (normalize.pack).
        "ip": ip16_text(rep.column("ip16"), rep.column("ip_version").to_numpy()),
        "ip_version": rep.column("ip_version"),
        "port": rep.column("port").cast(pa.uint16()),
        "transport": rep.column("transport"),
        "status": status,
        "reason": rep.column("reason"),
        "ttl": rep.column("ttl"),
        "first_seen": first_seen,
        "last_seen": last_seen,
        "banners": banners,
        "banner_fallback": fallback_lists,
        "tool": rep.column("tool"),
        "tool_version": rep.column("tool_version"),
        "records": pa.array(records),
        **host_key,
        "source_file": rep.column("source_file"),
        "source_offset": rep.column("source_offset"),
        "port_source": _port_sources(work.column("port_source"), order_np, first),
    }, schema=OBSERVATION_SCHEMA).append_column("ip16", rep.column("ip16"))

    accepted = _counts(rep.column("source_file"))
    everything = _counts(work.column("source_file"))      # a count needs no order
    merged = {f: c - accepted.get(f, 0) for f, c in everything.items() if c - accepted.get(f, 0)}
    return MergeResult(clean, accepted, merged)


def _port_sources(codes, order: np.ndarray, first: np.ndarray) -> pa.Array:
    """Per group the best evidence for its port (lowest PORT_SOURCES index):
    one record that names the port confirms it for the whole observation."""
    codes = codes.combine_chunks() if isinstance(codes, pa.ChunkedArray) else codes
    if codes.null_count == len(codes):
        return pa.repeat(pa.scalar(PORT_SOURCES[0]), len(first))
    c = pc.fill_null(codes, 0).to_numpy(zero_copy_only=False)[order]
    best = np.minimum.reduceat(c, first)
    return pa.array(PORT_SOURCES, pa.string()).take(pa.array(best))


def _sort_keys(work: pa.Table, rank: pa.Array, partition_ports: tuple[int, ...] | None = None) -> pa.Table:
    """The merge's total order as a table of sort keys (all ascending).

    ip16 is replaced by its two big-endian 64-bit halves: they order exactly
    as its 16 bytes do, and integer keys sort about twice as fast as
    fixed-size binary ones. The file key leads where given: it is a function
    of the port, so each group's records stay together and in their order."""
    ip16 = work.column("ip16").combine_chunks()
    hi, lo = ip16_to_hilo(ip16)
    null = ip16.is_null().to_numpy(zero_copy_only=False) if ip16.null_count else None
    cols = {}
    if partition_ports is not None:
        ports = pc.fill_null(work.column("port"), 0).to_numpy()
        cols["_file"] = pa.array(file_keys(ports, partition_ports))
    cols.update({"_hi": pa.array(hi, mask=null), "_lo": pa.array(lo, mask=null),
                 "port": work.column("port"), "transport": work.column("transport"), "_rank": rank})
    for name in ("timestamp", "reason", "ttl", "service", "banner", "source_file", "source_offset"):
        cols[name] = work.column(name)
    return pa.table(cols)


def _seen(ts: pa.Array, first: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(min, max) timestamp of each run of ``ts`` starting at ``first``; nulls
    are skipped and a run of only nulls gives null (as Arrow's min/max)."""
    ts = ts.combine_chunks() if isinstance(ts, pa.ChunkedArray) else ts
    valid = ts.is_valid().to_numpy(zero_copy_only=False)
    us = pc.fill_null(ts.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    none = ~np.logical_or.reduceat(valid, first)
    lo = np.minimum.reduceat(np.where(valid, us, big), first)
    hi = np.maximum.reduceat(np.where(valid, us, small), first)
    return (pa.array(lo, mask=none).cast(ts.type), pa.array(hi, mask=none).cast(ts.type))


def _banner_maps(t: pa.Table, n_groups: int):
    """Per group: sorted banner types -> chosen banner text."""
    from scanners.escapes import banner_text_column

    has = pc.and_(pc.is_valid(t.column("service")), pc.is_valid(t.column("banner")))
    b = t.filter(has).select(["_gid", "service", "banner", "timestamp"])
    empty = pc.equal(pc.binary_length(b.column("banner")), 0)
    b = b.append_column("_empty", empty)
    b = b.take(pc.sort_indices(b, sort_keys=[
        ("_gid", "ascending"), ("service", "ascending"), ("_empty", "ascending"),
        ("timestamp", "ascending"), ("banner", "ascending")]))
    first = _group_starts(b, ("_gid", "service"))
    b = b.filter(pa.array(first))
    text, fell_back = banner_text_column(b.column("banner"))
    gids = b.column("_gid").to_numpy()
    counts = np.bincount(gids, minlength=n_groups) if len(gids) else np.zeros(n_groups, dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    # banner_fallback: the banner types whose bytes were not valid UTF-8.
    fb = np.asarray(fell_back.to_numpy(zero_copy_only=False), dtype=bool) if len(b) else np.zeros(0, bool)
    fb_services = b.column("service").filter(pa.array(fb))
    fb_counts = np.bincount(gids[fb], minlength=n_groups) if fb.any() else np.zeros(n_groups, dtype=np.int64)
    fb_offsets = pa.array(np.concatenate([[0], np.cumsum(fb_counts)]).astype(np.int32))
    fallback = pa.ListArray.from_arrays(fb_offsets, fb_services.combine_chunks()
                                        if isinstance(fb_services, pa.ChunkedArray) else fb_services)
    return (b.column("service").combine_chunks(), text, fallback, offsets)


def _host_keys(work: pa.Table, order: np.ndarray, gid: np.ndarray, n_groups: int) -> dict[str, pa.Array]:
    """Per group: the host key of its earliest record that has one (then the
    smallest fingerprint), so a key re-read by another shard changes nothing.
    ``order``/``gid``: the rows of ``work`` in merge order and their groups."""
    names = [f.name for f in HOST_KEY_FIELDS]
    out = {f.name: pa.nulls(n_groups, f.type) for f in HOST_KEY_FIELDS}
    fp = work.column("key_fingerprint_sha256")
    if fp.null_count == len(fp):
        return out
    has = fp.is_valid().to_numpy(zero_copy_only=False)[order]
    # The keyed rows in merge order (ties then fall as in the merge's own sort).
    k = work.select(["timestamp"] + names).take(pa.array(order[has]))
    k = k.append_column("_gid", pa.array(gid[has]))
    k = k.sort_by([("_gid", "ascending"), ("timestamp", "ascending"), ("key_fingerprint_sha256", "ascending")])
    k = k.filter(pa.array(_group_starts(k, ("_gid",))))
    idx = np.full(n_groups, -1, dtype=np.int64)
    idx[k.column("_gid").to_numpy()] = np.arange(k.num_rows)
    take = pa.array(idx, mask=idx < 0)
    return {name: k.column(name).take(take).combine_chunks() for name in names}


def _group_starts(t: pa.Table, cols: tuple[str, ...]) -> np.ndarray:
    """Boolean mask: row i starts a new group of equal ``cols`` (t is sorted)."""
    n = t.num_rows
    starts = np.zeros(n, dtype=bool)
    if n == 0:
        return starts
    starts[0] = True
    for c in cols:
        col = t.column(c).combine_chunks()
        differs = pc.not_equal(col.slice(1), col.slice(0, n - 1))
        # null != value counts as a difference; null == null does not.
        both_null = pc.and_(pc.is_null(col.slice(1)), pc.is_null(col.slice(0, n - 1)))
        differs = pc.if_else(pc.is_null(differs), pc.invert(both_null), differs)
        starts[1:] |= differs.to_numpy(zero_copy_only=False).astype(bool)
    return starts


def _counts(col: pa.ChunkedArray) -> dict[str, int]:
    return {v["values"].as_py(): v["counts"].as_py() for v in pc.value_counts(col)}


def _empty_clean() -> pa.Table:
    return OBSERVATION_SCHEMA.empty_table().append_column("ip16", pa.array([], pa.binary(16)))
