"""Vectorized country / ASN lookup over MaxMind DB (.mmdb) files.

Input: ``ip16`` (``fixed_size_binary(16)``, network order, IPv4 stored as
``::ffff:a.b.c.d``) and ``ip_version`` (int8, 4/6). Output: ``country`` (ISO
code), ``asn`` (uint32), ``as_org``; null = unknown. Sample (DB-IP Lite):
``8.8.8.8`` -> ``US``, ``15169``, ``Google LLC``.

geoip2 costs ~10 us a row, so the search tree is flattened once into sorted
range tables (32-bit for the IPv4 subtree, 128-bit for the rest) with
dictionary-encoded values, cached on disk by the database's sha256, and whole
columns are answered with ``numpy.searchsorted``.

The contract is equality with geoip2 for the same text: an IPv4 row answers
like ``reader.country("1.2.3.4")`` (the ``::/96`` subtree), an IPv6 row walks
all 128 bits, so ``::ffff:1.2.3.4`` written as IPv6 follows whatever aliases
(``::ffff:0:0/96``, 6to4, Teredo) the tree has, or none. An alias is an edge
into the IPv4 subtree; the table keeps it as "continue in the IPv4 table with
address bits [depth, depth+32)", which is what the tree walk does.
No Beam here: a DoFn builds ``GeoLookup`` from paths and calls ``setup()``.
"""
from __future__ import annotations

import datetime
import hashlib
import lzma
import os
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import maxminddb
import maxminddb.decoder
import numpy as np
import pyarrow as pa

# Address helpers live in the lighter optout module; re-exported here.
from pipelines.geoip_tables import _ALIAS, _EMPTY, GeoIPError, _oneline, build_tables  # noqa: F401 (re-exported)
from pipelines.iputil import ip16_to_hilo, search_last_le, split_rows  # noqa: F401

COUNTRY_TYPES = frozenset({"GeoLite2-Country", "GeoIP2-Country", "GeoLite2-City", "GeoIP2-City",
                           "DBIP-Country-Lite", "DBIP-City-Lite"})
ASN_TYPES = frozenset({"GeoLite2-ASN", "DBIP-ASN-Lite", "GeoIP2-ISP"})
ROLES = {"country": COUNTRY_TYPES, "asn": ASN_TYPES}

_CACHE_FORMAT = 1          # bump when the cached table layout changes
_U64, _MASK32 = np.uint64, np.uint64(0xFFFFFFFF)


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

    def copy(dst) -> None:
        with lzma.open(path, "rb") as src:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    try:
        _write_atomically(out, copy)
    except (lzma.LZMAError, EOFError) as exc:
        raise GeoIPError(f"GeoIP database {path} is not a valid .xz file ({_oneline(exc)})") from exc
    return out


def _write_atomically(target: Path, write) -> None:
    """Write via a temporary file and rename, so parallel workers may race and
    a crash never leaves a half-written cache file behind."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    except OSError as exc:
        raise GeoIPError(f"cannot write the GeoIP cache directory {target.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _open_reader(mmdb: Path, shown) -> maxminddb.Reader:
    """maxminddb reader whose metadata decodes, or GeoIPError."""
    try:
        reader = maxminddb.open_database(str(mmdb))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoIPError(f"{shown} is not a readable MaxMind DB (.mmdb) file: {_oneline(exc)}") from exc
    try:
        meta = reader.metadata()  # the C extension decodes it lazily
        if not isinstance(meta.database_type, str) or meta.ip_version not in (4, 6):
            raise ValueError("database_type or ip_version missing")
    except (ValueError, TypeError, AttributeError, maxminddb.InvalidDatabaseError) as exc:
        reader.close()
        raise GeoIPError(f"{shown} has unreadable MaxMind DB metadata: {_oneline(exc)}") from exc
    return reader


def open_database(path, role: str, cache_dir=None) -> maxminddb.Reader:
    """Open ``path`` (.mmdb or .mmdb.xz) for ``role`` "country" or "asn"; the caller closes it.

    Raises GeoIPError when the file is missing, is not a MaxMind DB, or holds
    the other kind of data (e.g. a country database given as ASN)."""
    if role not in ROLES:
        raise ValueError(f"role must be 'country' or 'asn', not {role!r}")
    reader = _open_reader(materialize(path, cache_dir), path)
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
    name, _, rest = db_type.partition(" (compat=")
    return name in ROLES[role] or rest.rstrip(")") in ROLES[role]


def database_info(path, cache_dir=None) -> dict:
    """Manifest facts of a database file (sha256 is of the plain .mmdb)."""
    mmdb = materialize(path, cache_dir)
    with _open_reader(mmdb, path) as reader:
        meta = reader.metadata()
    try:
        built = datetime.datetime.fromtimestamp(meta.build_epoch, datetime.timezone.utc)
    except (OverflowError, ValueError, OSError) as exc:
        raise GeoIPError(f"{path} has an impossible build_epoch {meta.build_epoch!r}") from exc
    return {"database_type": meta.database_type, "build_date": built.isoformat().replace("+00:00", "Z"),
            "build_epoch": meta.build_epoch, "sha256": _sha256(mmdb),
            "ip_version": meta.ip_version, "node_count": meta.node_count}


def _sha256(path: Path) -> str:
    # A run hashes each database and its decompressed copy several times
    # (checks, cache names, the manifest's record): 16 hashes, 0.05 s of a
    # 50k-record week. Remembered while the file is the same one (_settled).
    try:
        with open(path, "rb") as fh:
            before = _stat_of(os.fstat(fh.fileno()))
            key = (os.path.abspath(path), before)
            if key in _DIGESTS:
                return _DIGESTS[key]
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
            after = _stat_of(os.fstat(fh.fileno()))
    except OSError as exc:
        raise GeoIPError(f"cannot read GeoIP database {path}: {exc.strerror}") from exc
    if before == after and _settled(before):
        _DIGESTS[key] = digest
    return digest


_DIGESTS: dict = {}


# -- flattening the search tree ------------------------------------------------
def load_tables(mmdb: Path, role: str, cache_dir) -> dict[str, np.ndarray]:
    """Tables for ``mmdb``, from ``cache_dir`` if built before (keyed by sha256)."""
    if cache_dir is None:
        return build_tables(mmdb, role)
    cache = Path(cache_dir) / f"geoip-{role}-{_sha256(mmdb)[:32]}-v{_CACHE_FORMAT}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # unreadable cache: rebuild and replace it
    tables = build_tables(mmdb, role)
    _write_atomically(cache, lambda fh: np.savez(fh, **tables))
    return tables


# -- lookup ----------------------------------------------------------------------
class _Table:
    """Range tables of one database; ``find`` gives dictionary indices (-1 = none)."""

    def __init__(self, t: dict[str, np.ndarray]):
        self.t = t
        self.v6_capable = int(t["ip_version"][0]) == 6

    def v4(self, key32: np.ndarray) -> np.ndarray:
        t = self.t
        return t["v4_val"][np.searchsorted(t["v4_start"], key32.astype(np.uint32), side="right") - 1]

    def v6(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
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
                val[sel] = self.v4(key)
        return val


class _Rows:
    """One batch prepared for every table: IPv4 keys pre-sorted, because
    searchsorted with sorted keys is ~4x faster than with random ones (cache
    locality), which pays for one argsort shared by the country and ASN tables."""

    def __init__(self, ip16, ip_version):
        hi, lo, is4, is6 = split_rows(ip16, ip_version)
        self.n = hi.size
        self.idx4 = None if is4.all() else np.flatnonzero(is4)
        key = (lo if self.idx4 is None else lo[self.idx4]) & _MASK32
        self.order = np.argsort(key)
        self.key4 = key[self.order]
        self.idx6 = np.flatnonzero(is6)
        self.hi6, self.lo6 = hi[self.idx6], lo[self.idx6]

    def find(self, table: _Table) -> np.ndarray:
        """Dictionary index per row, -1 where unknown."""
        out = np.full(self.n, _EMPTY, np.int32)
        out[self.order if self.idx4 is None else self.idx4[self.order]] = table.v4(self.key4)
        if self.idx6.size:
            out[self.idx6] = table.v6(self.hi6, self.lo6)
        return out


_LOADED: dict = {}
_LOADED_LOCK = threading.Lock()


def _stat(path) -> tuple | None:
    try:
        return _stat_of(os.stat(path))
    except (OSError, TypeError):
        return None


def _stat_of(st: os.stat_result) -> tuple:
    """What tells a database file changed (a later run in the same process may
    use a new one): a replaced file has a new inode, one rewritten in place a
    new change time, even when a copy keeps size and mtime (``cp -p``)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


# Only a file unchanged for this long is remembered by its stat: kernels and
# file systems with coarse timestamps give two writes within one tick the
# same times (git's "racily clean" rule). Real databases are days old.
_SETTLED_NS = 2_000_000_000


def _settled(stat: tuple | None) -> bool:
    return stat is not None and time.time_ns() - stat[-1] > _SETTLED_NS


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
        # One load per process: each worker thread has its own DoFn and so its
        # own GeoLookup, and the tables (~23 MB for DB-IP lite) are read-only.
        paths = [None if p is None else os.path.abspath(p) for p in (self.country_path, self.asn_path)]
        stats = [_stat(p) for p in paths]
        if not all(_settled(st) for p, st in zip(paths, stats) if p is not None):
            self._load()      # a database changed just now (or missing: _load says so) is not shared
            self._loaded = True
            return
        key = (*paths, None if self.cache_dir is None else os.path.abspath(self.cache_dir), *stats)
        with _LOADED_LOCK:
            if key not in _LOADED:
                self._load()
                _LOADED.clear()   # only the databases of the latest run are kept
                _LOADED[key] = {k: v for k, v in vars(self).items() if k.startswith("_") and k != "_loaded"}
            vars(self).update(_LOADED[key])
        self._loaded = True

    def _load(self) -> None:
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
                num = np.append(t["asn"], -1)  # the sentinel keeps indexing valid when empty
                self._asn_num, self._asn_ok = num.astype(np.uint32), num >= 0

    def lookup(self, ip16: pa.FixedSizeBinaryArray, ip_version: pa.Int8Array) -> pa.Table:
        """Answer one batch: ``ip16`` as described above, ``ip_version`` 4/6.
        Rows with a null address or version, or a version other than 4/6, get nulls."""
        self.setup()
        rows = _Rows(ip16, ip_version)
        n = rows.n
        if self._country is not None:
            c = rows.find(self._country)
            country = self._iso.take(pa.array(c, mask=c < 0))
        else:
            country = pa.nulls(n, pa.string())
        if self._asn is not None:
            a = rows.find(self._asn)
            none = a < 0
            safe = np.where(none, 0, a)
            asn = pa.array(self._asn_num[safe], pa.uint32(), mask=none | ~self._asn_ok[safe])
            org = self._orgs.take(pa.array(a, mask=none))
        else:
            asn, org = pa.nulls(n, pa.uint32()), pa.nulls(n, pa.string())
        return pa.Table.from_arrays([country, asn, org], schema=self.SCHEMA)
