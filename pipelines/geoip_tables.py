"""Flatten a MaxMind DB search tree into sorted range tables (see pipelines/geoip.py).

Pure: a .mmdb path in, numpy arrays out; pipelines/geoip.py caches them and
answers lookups with ``searchsorted``. The tree is walked breadth-first over
all of its nodes at once with numpy; an IPv6 database's IPv4 subtree (and its
aliases) is walked separately as 32-bit starts.
"""
from __future__ import annotations

import struct
from pathlib import Path

import maxminddb
import maxminddb.decoder
import numpy as np

_EMPTY, _ALIAS = -1, -2    # table values that are not dictionary indices
_U64 = np.uint64


class GeoIPError(Exception):
    """A GeoIP database cannot be used; the message is one actionable line."""


def _oneline(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _node_records(buf: bytes, node_count: int, record_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Left/right record of every node (MaxMind DB spec, 'Search Tree Section')."""
    if record_size not in (24, 28, 32):
        raise GeoIPError(f"unsupported MaxMind DB record_size {record_size}")
    width = record_size // 4
    if node_count * width > len(buf):
        raise GeoIPError("MaxMind DB search tree is truncated")
    raw = np.frombuffer(buf, np.uint8, count=node_count * width).reshape(node_count, width)
    col = [raw[:, i].astype(np.int64) for i in range(width)]
    if record_size == 24:
        return col[0] << 16 | col[1] << 8 | col[2], col[3] << 16 | col[4] << 8 | col[5]
    if record_size == 28:  # the middle byte's nibbles are the records' top bits
        return ((col[3] & 0xF0) << 20 | col[0] << 16 | col[1] << 8 | col[2],
                (col[3] & 0x0F) << 24 | col[4] << 16 | col[5] << 8 | col[6])
    return (col[0] << 24 | col[1] << 16 | col[2] << 8 | col[3],
            col[4] << 24 | col[5] << 16 | col[6] << 8 | col[7])


def _walk(left, right, node_count: int, root: int, width: int, alias_node: int | None):
    """Leaves under ``root`` over ``width`` address bits, breadth first.

    Returns (start_hi, start_lo, depth, record) sorted by start; the leaves
    partition the space. An edge to ``alias_node`` becomes a leaf with record
    _ALIAS. A valid tree visits every node at most once, which bounds the work
    on a corrupt or hostile file."""
    if root >= node_count:  # the subtree is a single record
        return np.zeros(1, _U64), np.zeros(1, _U64), np.zeros(1, np.int16), np.array([root])
    nodes, hi, lo = np.array([root]), np.zeros(1, _U64), np.zeros(1, _U64)
    parts, visited = [], 1
    for depth in range(1, width + 1):
        pos = width - depth
        bit_hi, bit_lo = (_U64(1 << (pos - 64)), _U64(0)) if pos >= 64 else (_U64(0), _U64(1 << pos))
        child = np.concatenate([left[nodes], right[nodes]])
        c_hi, c_lo = np.concatenate([hi, hi | bit_hi]), np.concatenate([lo, lo | bit_lo])
        inner = child < node_count
        alias = inner & (child == alias_node) if alias_node is not None else np.zeros_like(inner)
        inner &= ~alias
        leaf = ~inner
        rec = np.where(alias, _ALIAS, child)[leaf]
        parts.append((c_hi[leaf], c_lo[leaf], np.full(rec.size, depth, np.int16), rec))
        nodes, hi, lo = child[inner], c_hi[inner], c_lo[inner]
        visited += nodes.size
        if visited > node_count:
            raise GeoIPError("MaxMind DB search tree is corrupt (a node is reachable twice)")
        if not nodes.size:
            break
    if nodes.size:
        raise GeoIPError("MaxMind DB search tree is corrupt (deeper than the address width)")
    s_hi, s_lo, dep, rec = (np.concatenate(c) for c in zip(*parts))
    order = np.lexsort((s_lo, s_hi))
    return s_hi[order], s_lo[order], dep[order], rec[order]


def _extract_country(record) -> tuple | None:
    country = record.get("country") if isinstance(record, dict) else None
    iso = country.get("iso_code") if isinstance(country, dict) else None
    if iso is not None and not isinstance(iso, str):
        raise GeoIPError("MaxMind DB record has a non-text country.iso_code")
    return None if iso is None else (iso,)


def _extract_asn(record) -> tuple | None:
    if not isinstance(record, dict):
        return None
    asn, org = record.get("autonomous_system_number"), record.get("autonomous_system_organization")
    if asn is not None and not (isinstance(asn, int) and 0 <= asn < 2**32):
        raise GeoIPError("MaxMind DB record has an autonomous_system_number outside 0..2^32-1")
    if org is not None and not isinstance(org, str):
        raise GeoIPError("MaxMind DB record has a non-text autonomous_system_organization")
    return None if asn is None and org is None else (asn, org)


def build_tables(mmdb: Path, role: str) -> dict[str, np.ndarray]:
    """Flatten one database into range tables (the cached arrays)."""
    from pipelines.geoip import _open_reader  # pipelines.geoip imports this module
    with _open_reader(mmdb, mmdb) as reader:
        meta = reader.metadata()
    buf = mmdb.read_bytes()
    n = meta.node_count
    tree_size = n * meta.record_size // 4
    left, right = _node_records(buf, n, meta.record_size)
    v4_root = 0
    if meta.ip_version == 6:  # same rule as the readers: 96 left turns, or the record met on the way
        for _ in range(96):
            if v4_root >= n:
                break
            v4_root = int(left[v4_root])
    v4 = _walk(left, right, n, v4_root, 32, None)
    v6 = (_walk(left, right, n, 0, 128, v4_root if v4_root < n else None) if meta.ip_version == 6
          else (np.zeros(1, _U64), np.zeros(1, _U64), np.zeros(1, np.int16), np.array([n])))
    decoder = maxminddb.decoder.Decoder(buf, tree_size + 16)
    extract = _extract_country if role == "country" else _extract_asn
    values: dict[tuple, int] = {}
    by_record: dict[int, int] = {n: _EMPTY, _ALIAS: _ALIAS}
    for rec in np.unique(np.concatenate([v4[3], v6[3]])).tolist():
        if rec in by_record:
            continue
        offset = rec - n + tree_size
        if rec < n or offset >= len(buf):
            raise GeoIPError("MaxMind DB search tree points outside the data section")
        try:
            value = extract(decoder.decode(offset)[0])
        except (maxminddb.InvalidDatabaseError, ValueError, TypeError, IndexError, KeyError,
                OverflowError, struct.error) as exc:
            raise GeoIPError(f"MaxMind DB data section is corrupt: {_oneline(exc)}") from exc
        by_record[rec] = _EMPTY if value is None else values.setdefault(value, len(values))
    out = {}
    for name, (s_hi, s_lo, dep, rec) in (("v4", v4), ("v6", v6)):
        uniq, inverse = np.unique(rec, return_inverse=True)
        val = np.array([by_record[r] for r in uniq.tolist()], np.int32)[inverse]
        keep = np.ones(val.size, bool)  # merge neighbours with the same answer
        keep[1:] = (val[1:] != val[:-1]) | (val[1:] == _ALIAS)
        if name == "v4":
            out["v4_start"] = s_lo[keep].astype(np.uint32)
        else:
            out["v6_start_hi"], out["v6_start_lo"] = s_hi[keep], s_lo[keep]
            out["v6_depth"] = dep[keep]
            if (dep[val == _ALIAS] > 96).any():
                raise GeoIPError("MaxMind DB aliases the IPv4 subtree below /96; unsupported")
        out[f"{name}_val"] = val[keep]
    keys = list(values)  # insertion order == dictionary index
    if role == "country":
        out["iso"] = np.array([k[0] for k in keys], dtype=str)
    else:
        out["asn"] = np.array([-1 if k[0] is None else k[0] for k in keys], np.int64)
        blob = [(k[1] or "").encode() for k in keys]
        out["org_offsets"] = np.cumsum([0] + [len(b) for b in blob], dtype=np.int64)
        out["org_blob"] = np.frombuffer(b"".join(blob) or b"\0", np.uint8)
        out["org_valid"] = np.array([k[1] is not None for k in keys], bool)
    out["ip_version"] = np.array([meta.ip_version])
    return out
