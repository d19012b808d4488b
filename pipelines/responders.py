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
    sig = _signatures(clean)
    net_hi = np.where(clean.column("ip_version").to_numpy() == 4, hi,
                      hi & np.uint64(0xFFFF_FFFF_FFFF_0000))
    net_lo = np.where(clean.column("ip_version").to_numpy() == 4,
                      lo & np.uint64(0xFFFF_FFFF_FFFF_FF00), np.uint64(0))
    keys = pa.table({
        "net_hi": net_hi, "net_lo": net_lo,
        "port": clean.column("port"), "transport": clean.column("transport"),
        "sig": sig, "row": np.arange(n),
        "fp": (clean.column("key_fingerprint_sha256") if "key_fingerprint_sha256" in clean.column_names
               else pa.nulls(n, pa.string())),
    }).filter(pa.array(is_open))

    groups = np.full(n, None, dtype=object)
    if keys.num_rows:
        per_net = keys.group_by(["net_hi", "net_lo", "port", "transport"], use_threads=False) \
                      .aggregate([("row", "count")]).rename_columns(
                          ["net_hi", "net_lo", "port", "transport", "net_hosts"])
        signed = keys.filter(pc.is_valid(keys.column("sig")))
        five = ["net_hi", "net_lo", "port", "transport", "sig"]
        per_sig = signed.group_by(five, use_threads=False).aggregate(
            [("row", "count"), ("fp", "count_distinct", pc.CountOptions(mode="only_valid"))])
        per_sig = per_sig.join(per_net, ["net_hi", "net_lo", "port", "transport"])
        share = pc.divide(per_sig.column("row_count").cast(pa.float64()),
                          per_sig.column("net_hosts").cast(pa.float64()))
        # One box has one host key: members that sent two different keys are
        # different machines, whatever their banners say. (A member without a
        # key, e.g. seen by masscan only, cannot contradict the others.)
        hit = pc.and_(pc.and_(pc.greater_equal(per_sig.column("row_count"), th.min_hosts),
                              pc.greater_equal(share, th.min_share)),
                      pc.less_equal(per_sig.column("fp_count_distinct"), 1))
        hits = per_sig.filter(hit).select(five)
        if hits.num_rows:
            gids = [_group_id(*g) for g in zip(*(hits.column(c).to_pylist() for c in five))]
            hits = hits.append_column("gid", pa.array(gids, pa.string()))
            members = signed.join(hits, five, join_type="inner")
            groups[members.column("row").to_numpy()] = members.column("gid").to_numpy(zero_copy_only=False)

    return (clean.append_column("responder_group", pa.array(groups, pa.string()))
                 .append_column("host_open_ports", pa.array(host_ports, pa.int16()))
                 .append_column("many_ports", pa.array(host_ports >= th.many_ports)))


def _per_host_open_ports(hi: np.ndarray, lo: np.ndarray, is_open: np.ndarray) -> np.ndarray:
    """For each row: how many open (port, transport) observations its address has."""
    order = np.lexsort((lo, hi))       # merged buckets are sorted already: this is cheap
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
    lists = pa.ListArray.from_arrays(pa.array(new_offsets.astype(np.int32)),
                                     entries.filter(pa.array(keep)))
    joined = pc.binary_join(lists, "\x1e")
    empty = pc.equal(pc.utf8_length(pc.fill_null(joined, "")), 0)
    return pc.if_else(empty, pa.scalar(None, pa.string()), joined)


def _group_id(net_hi: int, net_lo: int, port: int, transport: str, sig: str) -> str:
    h = hashlib.sha256(f"{net_hi}:{net_lo}:{port}:{transport}:".encode() + sig.encode("utf-8", "surrogatepass"))
    return "rg-" + h.hexdigest()[:16]
