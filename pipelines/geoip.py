"""Vectorized country / ASN lookup over MaxMind DB (.mmdb) files.

Input: two Arrow columns, ``ip16`` (``fixed_size_binary(16)``, network byte
order, IPv4 stored IPv4-mapped as ``::ffff:a.b.c.d``) and ``ip_version``
(int8, 4 or 6). Output: a table ``country`` (ISO code) / ``asn`` (uint32) /
``as_org``, null where the database has no answer. Sample (DB-IP Lite):
``8.8.8.8`` -> ``US``, ``15169``, ``Google LLC``.

Why not call geoip2 per row: it costs ~10 us a row. Instead the database's
search tree is flattened ONCE into sorted range tables (a 32-bit table for the
IPv4 subtree, a 128-bit table for the rest) with dictionary-encoded values, and
whole columns are answered with ``numpy.searchsorted``. The tables are cached
on disk keyed by the database's sha256, so a worker's ``setup()`` only pays the
flattening the first time.

Equivalence with geoip2 is the contract: an IPv4 row answers like
``reader.country("1.2.3.4")`` (the ``::/96`` subtree), an IPv6 row like
``reader.country(<its text>)``, which walks all 128 bits -- so ``::ffff:1.2.3.4``
written as IPv6 follows whatever aliases (``::ffff:0:0/96``, 6to4 ``2002::/16``,
Teredo ``2001::/32``) the database's tree contains, or none. Aliases are edges
into the IPv4 subtree; the flattener keeps them as "continue in the IPv4 table
with address bits [depth, depth+32)" entries, exactly what the tree walk does.

No Beam here: the lead's DoFn builds ``GeoLookup`` from paths and calls
``setup()`` in its own ``setup()``.
"""
from __future__ import annotations

import datetime
import hashlib
import lzma
import os
import struct
import tempfile
from pathlib import Path

import maxminddb
import maxminddb.decoder
import numpy as np
import pyarrow as pa

COUNTRY_TYPES = frozenset({"GeoLite2-Country", "GeoIP2-Country", "GeoLite2-City", "GeoIP2-City",
                           "DBIP-Country-Lite", "DBIP-City-Lite"})
ASN_TYPES = frozenset({"GeoLite2-ASN", "DBIP-ASN-Lite", "GeoIP2-ISP"})
ROLES = {"country": COUNTRY_TYPES, "asn": ASN_TYPES}

_CACHE_FORMAT = 1          # bump when the cached table layout changes
_EMPTY, _ALIAS = -1, -2    # table values that are not dictionary indices
_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)


class GeoIPError(Exception):
    """A GeoIP database cannot be used; the message is one actionable line."""


# -- address helpers (shared with pipelines.optout) ---------------------------
def ip16_to_hilo(arr: pa.FixedSizeBinaryArray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``fixed_size_binary(16)`` addresses into native uint64 (hi, lo).

    The data buffer is viewed big-endian without copying; the one copy is the
    byte swap to native order. Null slots yield whatever bytes they hold (the
    caller masks them)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.binary(16):
        raise TypeError(f"expected fixed_size_binary(16), got {arr.type}")
    n = len(arr)
    if n == 0:
        return np.zeros(0, _U64), np.zeros(0, _U64)
    words = np.frombuffer(arr.buffers()[1], dtype=">u8", count=2 * n, offset=arr.offset * 16)
    pairs = words.astype(_U64).reshape(n, 2)
    return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])


def search_last_le(starts_hi: np.ndarray, starts_lo: np.ndarray,
                   key_hi: np.ndarray, key_lo: np.ndarray) -> np.ndarray:
    """Index of the last 128-bit start <= key (-1 if none), for sorted starts.

    One searchsorted on the high words; only keys whose high word equals a
    start's high word (ranges split inside a /64) need the low words, and those
    are settled by a vectorized bisection within their group."""
    idx = np.searchsorted(starts_hi, key_hi, side="right").astype(np.int64) - 1
    safe = np.maximum(idx, 0)
    fix = np.flatnonzero((idx >= 0) & (starts_hi[safe] == key_hi) & (starts_lo[safe] > key_lo))
    if fix.size:
        k_hi, k_lo = key_hi[fix], key_lo[fix]
        lo = np.searchsorted(starts_hi, k_hi, side="left").astype(np.int64) - 1  # start < key
        hi = idx[fix]                                                          # start > key
        while True:
            open_ = hi - lo > 1
            if not open_.any():
                break
            mid = (lo + hi) // 2
            le = open_ & (starts_lo[np.maximum(mid, 0)] <= k_lo)
            lo = np.where(le, mid, lo)
            hi = np.where(open_ & ~le, mid, hi)
        idx[fix] = lo
    return idx


# -- opening and describing databases -----------------------------------------
def materialize(path: str | os.PathLike, cache_dir: str | os.PathLike | None) -> Path:
    """The path of a plain .mmdb: ``path`` itself, or for ``*.xz`` its
    decompressed copy in ``cache_dir`` (written once, atomically, so parallel
    workers can race safely)."""
    path = Path(path)
    if not path.is_file():
        raise GeoIPError(f"GeoIP database {path} not found (give the path of a .mmdb or .mmdb.xz file)")
    if path.suffix != ".xz":
        return path
    if cache_dir is None:
        raise GeoIPError(f"GeoIP database {path} is xz-compressed: give a cache directory to decompress it into")
    digest = _sha256(path)
    out = Path(cache_dir) / f"{path.name[:-3]}.{digest[:16]}.mmdb"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".mmdb")
    try:
        with os.fdopen(fd, "wb") as dst, lzma.open(path, "rb") as src:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.replace(tmp, out)
    except (lzma.LZMAError, EOFError) as exc:
        raise GeoIPError(f"GeoIP database {path} is not a valid .xz file ({exc})") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def open_database(path, role: str, cache_dir=None) -> maxminddb.Reader:
    """Open ``path`` (.mmdb or .mmdb.xz) for ``role`` "country" or "asn".

    Raises GeoIPError when the file is missing, is not a MaxMind DB, or holds
    the other kind of data (e.g. a country database given as ASN)."""
    if role not in ROLES:
        raise ValueError(f"role must be 'country' or 'asn', not {role!r}")
    mmdb = materialize(path, cache_dir)
    try:
        reader = maxminddb.open_database(str(mmdb))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoIPError(f"{path} is not a readable MaxMind DB (.mmdb) file: {exc}") from exc
    db_type = reader.metadata().database_type
    if not _type_matches(db_type, role):
        reader.close()
        other = "asn" if role == "country" else "country"
        hint = f" -- it looks like a {other} database" if _type_matches(db_type, other) else ""
        raise GeoIPError(f"{path} has database_type {db_type!r}, not a {role} database{hint}; "
                         f"expected one of {', '.join(sorted(ROLES[role]))}")
    return reader


def _type_matches(db_type: str, role: str) -> bool:
    # DB-IP writes e.g. "DBIP-ASN-Lite (compat=GeoLite2-ASN)": accept the name or its compat name.
    name, _, rest = str(db_type).partition(" (compat=")
    return name in ROLES[role] or rest.rstrip(")") in ROLES[role]


def database_info(path, cache_dir=None) -> dict:
    """Manifest facts of a database file (sha256 is of the plain .mmdb)."""
    mmdb = materialize(path, cache_dir)
    try:
        with maxminddb.open_database(str(mmdb)) as reader:
            meta = reader.metadata()
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoIPError(f"{path} is not a readable MaxMind DB (.mmdb) file: {exc}") from exc
    built = datetime.datetime.fromtimestamp(meta.build_epoch, datetime.timezone.utc)
    return {"database_type": meta.database_type, "build_date": built.isoformat().replace("+00:00", "Z"),
            "build_epoch": meta.build_epoch, "sha256": _sha256(mmdb),
            "ip_version": meta.ip_version, "node_count": meta.node_count}


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- flattening the search tree ------------------------------------------------
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
    with maxminddb.open_database(str(mmdb)) as reader:
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
        except (maxminddb.InvalidDatabaseError, ValueError, IndexError, KeyError, struct.error) as exc:
            raise GeoIPError(f"MaxMind DB data section is corrupt: {exc}") from exc
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
        out["iso"] = np.array([k[0] for k in keys], dtype="<U8")
    else:
        out["asn"] = np.array([-1 if k[0] is None else k[0] for k in keys], np.int64)
        blob = [(k[1] or "").encode() for k in keys]
        out["org_offsets"] = np.cumsum([0] + [len(b) for b in blob], dtype=np.int64)
        out["org_blob"] = np.frombuffer(b"".join(blob) or b"\0", np.uint8)
        out["org_valid"] = np.array([k[1] is not None for k in keys], bool)
    out["ip_version"] = np.array([meta.ip_version])
    return out


def load_tables(mmdb: Path, role: str, cache_dir) -> dict[str, np.ndarray]:
    """Tables for ``mmdb``, from ``cache_dir`` if built before (keyed by sha256)."""
    if cache_dir is None:
        return build_tables(mmdb, role)
    cache = Path(cache_dir) / f"geoip-{role}-{_sha256(mmdb)[:32]}-v{_CACHE_FORMAT}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    tables = build_tables(mmdb, role)
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **tables)
        os.replace(tmp, cache)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return tables


# -- lookup ----------------------------------------------------------------------
class _Table:
    """Range tables of one database; ``find`` gives dictionary indices (-1 = none)."""

    def __init__(self, t: dict[str, np.ndarray]):
        self.t = t
        self.v6_capable = int(t["ip_version"][0]) == 6

    def _v4(self, key32: np.ndarray) -> np.ndarray:
        t = self.t
        return t["v4_val"][np.searchsorted(t["v4_start"], key32.astype(np.uint32), side="right") - 1]

    def _v6(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        if not self.v6_capable:  # geoip2 refuses IPv6 addresses in an IPv4-only database
            return np.full(hi.size, _EMPTY, np.int32)
        t = self.t
        i = search_last_le(t["v6_start_hi"], t["v6_start_lo"], hi, lo)
        val = t["v6_val"][i]
        aliased = np.flatnonzero(val == _ALIAS)
        if aliased.size:
            depth = t["v6_depth"][i[aliased]]
            for d in np.unique(depth).tolist():  # continue in the IPv4 subtree with bits [d, d+32)
                sel = aliased[depth == d]
                h, l = hi[sel], lo[sel]
                if d >= 64:
                    key = (l >> _U64(96 - d)) & _MASK32
                elif d + 32 <= 64:
                    key = (h >> _U64(32 - d)) & _MASK32
                else:
                    key = ((h << _U64(d - 32)) | (l >> _U64(96 - d))) & _MASK32
                val[sel] = self._v4(key)
        return val

    def find(self, hi, lo, is4, is6) -> np.ndarray:
        if is4.all():
            return self._v4(lo & _MASK32)
        out = np.full(hi.size, _EMPTY, np.int32)
        if is4.any():
            out[is4] = self._v4(lo[is4] & _MASK32)
        if is6.any():
            out[is6] = self._v6(hi[is6], lo[is6])
        return out


class GeoLookup:
    """Country and ASN of whole address columns.

    ``GeoLookup(country_path, asn_path, cache_dir)`` keeps only the paths
    (picklable); ``setup()`` opens, validates and loads the tables. Either path
    may be None, giving an all-null column."""

    SCHEMA = pa.schema([pa.field("country", pa.string()), pa.field("asn", pa.uint32()),
                        pa.field("as_org", pa.string())])

    def __init__(self, country_path=None, asn_path=None, cache_dir=None):
        self.country_path, self.asn_path, self.cache_dir = country_path, asn_path, cache_dir
        self._country = self._asn = None
        self._loaded = False

    def __getstate__(self):
        return {"country_path": self.country_path, "asn_path": self.asn_path, "cache_dir": self.cache_dir}

    def __setstate__(self, state):
        self.__init__(**state)

    def setup(self) -> None:
        if self._loaded:
            return
        for role, path in (("country", self.country_path), ("asn", self.asn_path)):
            if path is None:
                continue
            open_database(path, role, self.cache_dir).close()  # validates type, raises GeoIPError
            t = load_tables(materialize(path, self.cache_dir), role, self.cache_dir)
            if role == "country":
                self._country, self._iso = _Table(t), pa.array(t["iso"].tolist(), pa.string())
            else:
                offs, blob = t["org_offsets"].tolist(), t["org_blob"].tobytes()
                orgs = [blob[a:b].decode() if ok else None
                        for a, b, ok in zip(offs[:-1], offs[1:], t["org_valid"].tolist())]
                self._asn, self._orgs = _Table(t), pa.array(orgs, pa.string())
                self._asn_num, self._asn_ok = t["asn"].astype(np.uint32), t["asn"] >= 0
        self._loaded = True

    def lookup(self, ip16: pa.FixedSizeBinaryArray, ip_version: pa.Int8Array) -> pa.Table:
        """Answer one batch: ``ip16`` as described above, ``ip_version`` 4/6.
        Rows with a null address or version, or a version other than 4/6, get nulls."""
        self.setup()
        if isinstance(ip16, pa.ChunkedArray):
            ip16 = ip16.combine_chunks()
        if isinstance(ip_version, pa.ChunkedArray):
            ip_version = ip_version.combine_chunks()
        hi, lo = ip16_to_hilo(ip16)
        ok = np.ones(len(hi), bool) if ip16.null_count == 0 else ip16.is_valid().to_numpy(zero_copy_only=False)
        ver = ip_version.fill_null(0).to_numpy(zero_copy_only=False)
        is4, is6 = ok & (ver == 4), ok & (ver == 6)
        if not ((hi[is4] == 0) & ((lo[is4] >> _U64(32)) == _U64(0xFFFF))).all():
            raise ValueError("ip_version 4 rows must hold IPv4-mapped addresses (::ffff:a.b.c.d)")
        n = len(hi)
        if self._country is not None:
            c = self._country.find(hi, lo, is4, is6)
            country = self._iso.take(pa.array(c, mask=c < 0))
        else:
            country = pa.nulls(n, pa.string())
        if self._asn is not None:
            a = self._asn.find(hi, lo, is4, is6)
            none = a < 0
            safe = np.where(none, 0, a)
            asn = pa.array(self._asn_num[safe], pa.uint32(), mask=none | ~self._asn_ok[safe])
            org = self._orgs.take(pa.array(a, mask=none))
        else:
            asn, org = pa.nulls(n, pa.uint32()), pa.nulls(n, pa.string())
        return pa.Table.from_arrays([country, asn, org], schema=self.SCHEMA)
