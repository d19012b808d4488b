"""Networks where one box answers for all, and hosts that answer everything.

A router that forwards every connection on a port to one machine makes a
whole /24 look like 256 identical servers. Counting them 256 times skews every
statistic, so each observation may belong to a *suspected responder group*:

* same network (/24 for IPv4, /48 for IPv6), same port and transport;
* byte-identical identity signature: the banners minus the types that vary
  per connection even on one box (the raw HTTP headers carry ``Date:``,
  memcached stats carry uptime);
* no two different SSH host keys among them (members without a key, seen by
  a scanner that does not fetch keys, do not count against the group);
* at least ``min_hosts`` addresses, and at least ``min_share`` of all the
  responders of that network on that port.

Statistics then exist twice: *raw* (every address) and *adjusted* (each
group counted once). Separately, ``host_open_ports`` counts the open ports of
each address this week and ``many_ports`` flags addresses at or above
``many_ports`` (tarpits and honeypots answer on every port).

Everything here runs inside one dedup bucket: buckets are keyed by network
(see ``pipelines.normalize.bucket_keys``), so a network and all ports of a
host are always together.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.iputil import ip16_to_hilo

# Banner types that differ between two connections to the same machine.
VOLATILE_BANNER_TYPES = ("http", "memcached")


@dataclasses.dataclass(frozen=True)
class ResponderThresholds:
    # 32 identical answers in one /24 is 1/8 of the network: more than a rack
    # of identically imaged servers usually holds, fewer than a forwarded /24
    # (where nearly every address answers). See docs/DATA.md.
    min_hosts: int = 32
    min_share: float = 0.9
    many_ports: int = 8


def annotate(clean: pa.Table, th: ResponderThresholds = ResponderThresholds()) -> pa.Table:
    """Add ``responder_group`` (string id or null), ``host_open_ports`` (int16)
    and ``many_ports`` (bool) to a merged bucket (which still has ``ip16``)."""
    n = clean.num_rows
    if n == 0:
        return clean.append_column("responder_group", pa.array([], pa.string())) \
                    .append_column("host_open_ports", pa.array([], pa.int16())) \
                    .append_column("many_ports", pa.array([], pa.bool_()))
    is_open = pc.equal(clean.column("status"), "open").to_numpy(zero_copy_only=False)
    hi, lo = ip16_to_hilo(clean.column("ip16").combine_chunks())

    host_ports = _per_host_open_ports(hi, lo, is_open)
    return (clean.append_column("responder_group", _responder_groups(clean, hi, lo, is_open, th))
                 .append_column("host_open_ports", pa.array(host_ports, pa.int16()))
                 .append_column("many_ports", pa.array(host_ports >= th.many_ports)))


def _responder_groups(clean: pa.Table, hi: np.ndarray, lo: np.ndarray, is_open: np.ndarray,
                      th: ResponderThresholds) -> pa.Array:
    """Per row: the id of its suspected responder group, or null.

    All keys become integer ids (numpy), so the per-network and per-signature
    counts are bincounts over the same row ids: no Arrow join is needed to
    bring a network's responder count to each of its signatures."""
    n = clean.num_rows
    v4 = clean.column("ip_version").to_numpy() == 4
    net_hi = np.where(v4, hi, hi & np.uint64(0xFFFF_FFFF_FFFF_0000))
    net_lo = np.where(v4, lo & np.uint64(0xFFFF_FFFF_FFFF_FF00), np.uint64(0))
    port, transport = clean.column("port"), clean.column("transport")
    # A null port or transport never matched a network (nulls do not join): such rows are in no group.
    keyed = pc.and_(pc.is_valid(port), pc.is_valid(transport)).to_numpy(zero_copy_only=False)
    port_code, transport_code = _codes(port), _codes(transport)
    sig = _signatures(clean)
    sig_code = _codes(sig)
    fp_code = (_codes(clean.column("key_fingerprint_sha256"))
               if "key_fingerprint_sha256" in clean.column_names else np.full(n, -1))

    rows = np.flatnonzero(is_open & keyed)                # responders
    # The network first (a cheap sort: a merged bucket is sorted by address within each file),
    # then each further key packed with the ids so far into one integer.
    net, _ = _ids(net_hi[rows], net_lo[rows])
    net, _ = _ids(_pack(_pack(net, port_code[rows]), transport_code[rows]))
    net_hosts = np.bincount(net)
    signed = sig_code[rows] >= 0
    rows, net = rows[signed], net[signed]
    if not len(rows):
        return pa.nulls(n, pa.string())
    group, first = _ids(_pack(net, sig_code[rows]))       # (network, port, transport, signature)
    members = np.bincount(group)
    with_key = fp_code[rows] >= 0
    _, pair_first = _ids(_pack(group[with_key], fp_code[rows][with_key]))
    host_keys = np.bincount(group[with_key][pair_first], minlength=len(members))
    share = members.astype(np.float64) / net_hosts[net[first]].astype(np.float64)
    # One box has one host key: members that sent two different keys are
    # different machines, whatever their banners say. (A member without a
    # key, e.g. seen by masscan only, cannot contradict the others.)
    hits = np.flatnonzero((members >= th.min_hosts) & (share >= th.min_share) & (host_keys <= 1))
    if not len(hits):
        return pa.nulls(n, pa.string())

    rep = rows[first[hits]]                               # one member per group: its keys
    gids = [_group_id(*g) for g in zip(net_hi[rep].tolist(), net_lo[rep].tolist(),
                                       port.take(rep).to_pylist(), transport.take(rep).to_pylist(),
                                       sig.take(rep).to_pylist())]
    gid_of_group = np.full(len(members), -1)
    gid_of_group[hits] = np.arange(len(hits))
    gid_of_row = np.full(n, -1)
    gid_of_row[rows] = gid_of_group[group]
    return pa.array(gids, pa.string()).take(pa.array(gid_of_row, mask=gid_of_row < 0))


def _codes(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per row an integer standing for its value (equal values, equal codes); -1 for null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    indices = pc.dictionary_encode(values).indices
    return (indices if indices.null_count == 0 else pc.fill_null(indices, -1)).to_numpy()


def _ids(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per row the id of its combination of column values, ids numbered in
    sorted key order; per id the index of one row that has it)."""
    order = np.lexsort(columns[::-1])
    new = np.zeros(len(order), bool)
    new[:1] = True
    for column in columns:
        c = column[order]
        new[1:] |= c[1:] != c[:-1]
    ids = np.empty(len(order), np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids, order[new]


def _pack(ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """One non-negative integer per (id, code) pair, ordered as the pairs are."""
    return ids * (int(codes.max(initial=0)) + 1) + codes


def _per_host_open_ports(hi: np.ndarray, lo: np.ndarray, is_open: np.ndarray) -> np.ndarray:
    """For each row: how many open (port, transport) observations its address has."""
    order = np.lexsort((lo, hi))       # sorted runs already (one per file): this is cheap
    h, lw = hi[order], lo[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (h[1:] != h[:-1]) | (lw[1:] != lw[:-1])
    host = np.cumsum(starts) - 1
    counts = np.bincount(host, weights=is_open[order].astype(np.int64)).astype(np.int64)
    out = np.empty(len(order), dtype=np.int64)
    out[order] = counts[host]
    return out


def _signatures(clean: pa.Table) -> pa.Array:
    """Per row: the stable banners (sorted by type) joined into one string, or
    null when nothing stable was said (a silent open port proves nothing)."""
    banners = clean.column("banners").combine_chunks()
    flat_keys = banners.keys
    flat_items = banners.items
    offsets = banners.offsets.to_numpy()
    keep = ~pc.is_in(flat_keys, pa.array(VOLATILE_BANNER_TYPES)).to_numpy(zero_copy_only=False)
    entries = pc.binary_join_element_wise(flat_keys, flat_items, "\x1f")
    kept = np.concatenate([[0], np.cumsum(keep)])
    new_offsets = kept[offsets]
    # No stable entry (or no map at all): a null list, so a null signature.
    # (A kept entry is never "": it holds at least the separator.)
    lists = pa.ListArray.from_arrays(pa.array(new_offsets.astype(np.int32)),
                                     entries.filter(pa.array(keep)),
                                     mask=pa.array(new_offsets[1:] == new_offsets[:-1]))
    return pc.binary_join(lists, "\x1e")


def _group_id(net_hi: int, net_lo: int, port: int, transport: str, sig: str) -> str:
    h = hashlib.sha256(f"{net_hi}:{net_lo}:{port}:{transport}:".encode() + sig.encode("utf-8", "surrogatepass"))
    return "rg-" + h.hexdigest()[:16]
