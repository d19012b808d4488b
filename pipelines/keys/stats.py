"""Weekly SSH host-key statistics, as counts only.

Input: an Arrow table, one row per SSH observation (ip:port) of one week:

=======================  ==============  =====================================
column                   type            meaning
=======================  ==============  =====================================
ip                       string          canonical address (never null)
port                     int (any)       TCP port (never null)
key_algorithm            string|null     SSH name, e.g. ``ssh-rsa``
key_fingerprint_sha256   string|null     hex SHA-256 of the key blob (key id)
rsa_modulus              binary|null     RSA modulus, big-endian
rsa_exponent             int64|null      RSA public exponent
key_bits                 int32|null      key size as the scanner reported it
product                  string|null     server product label
asn                      uint32|null     origin AS of ip
responder_group          string|null     id of a single-responder network
=======================  ==============  =====================================

Units. A *key* is a distinct fingerprint; a *host* is a distinct ip (one
server answering on 22 and 2222 is one host); an *adjusted host* is a
distinct responder group, or the ip when it belongs to none -- so a middlebox
answering for a whole /24 with one key counts once in adjusted counts. Rows
without a fingerprint are counted (``observations_without_key``) and take no
further part. RSA size is the modulus's bit length when the modulus is known,
else ``key_bits``; key size 0 means "not known".

Output: nested dicts whose keys are fixed field names, members of the closed
enums below, key sizes (int), ``AS<n>``/``unknown`` or sanitised product
labels, and whose leaves are non-negative ints. ``assert_counts_only`` checks
exactly that before anything is returned, so no key, modulus, factor,
fingerprint or address can leave this module. A sample (abridged)::

    {"observations": 5, "observations_without_key": 0, "keys": 3, "hosts": 5,
     "hosts_adjusted": 4,
     "algorithms": {"rsa": {"keys": 2, "hosts": 4, "hosts_adjusted": 3}, ...},
     "shared_keys": {"keys": 1, "hosts": 3, "keys_adjusted": 1, "hosts_adjusted": 2,
                     "by_product": {...}, "by_asn": {"AS64500": {...}}},
     "weak_keys": {"rsa_lt_2048": {"keys": 1, "hosts": 1, "hosts_adjusted": 1}, ...},
     "batch_gcd": {"moduli": 2, "moduli_sharing_prime": 0, ...}}
"""
from __future__ import annotations

import enum
import re

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.keys.batchgcd import DEFAULT_CHUNK_SIZE, batch_gcd

INPUT_TYPES = {
    "ip": pa.string(), "port": pa.int32(), "key_algorithm": pa.string(),
    "key_fingerprint_sha256": pa.string(), "rsa_modulus": pa.binary(),
    "rsa_exponent": pa.int64(), "key_bits": pa.int32(), "product": pa.string(),
    "asn": pa.uint32(), "responder_group": pa.string(),
}
CHURN_COLUMNS = ("ip", "port", "key_fingerprint_sha256")
COMMON_EXPONENT = 65537


class KeyStatsInputError(ValueError):
    """The observation table lacks a column, has an uncastable type or a null ip/port."""


class KeyAlgorithm(str, enum.Enum):
    """Closed set of key types; SSH names map onto it (certificates by their key)."""

    RSA = "rsa"
    DSA = "dsa"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    ECDSA_P521 = "ecdsa-p521"
    ED25519 = "ed25519"
    ED448 = "ed448"
    OTHER = "other"      # a name outside this list
    UNKNOWN = "unknown"  # no algorithm recorded


class WeakKey(str, enum.Enum):
    RSA_LT_1024 = "rsa_lt_1024"
    RSA_LT_2048 = "rsa_lt_2048"            # includes rsa_lt_1024
    DSA = "dsa"                            # ssh-dss: 1024-bit by definition, deprecated
    RSA_EXPONENT_NOT_65537 = "rsa_exponent_not_65537"
    RSA_EXPONENT_LT_65537 = "rsa_exponent_lt_65537"  # e.g. e = 3
    RSA_EXPONENT_EVEN = "rsa_exponent_even"          # not a valid RSA exponent


_SSH_NAMES = {
    "ssh-rsa": KeyAlgorithm.RSA, "rsa-sha2-256": KeyAlgorithm.RSA, "rsa-sha2-512": KeyAlgorithm.RSA,
    "ssh-dss": KeyAlgorithm.DSA,
    "ecdsa-sha2-nistp256": KeyAlgorithm.ECDSA_P256, "ecdsa-sha2-nistp384": KeyAlgorithm.ECDSA_P384,
    "ecdsa-sha2-nistp521": KeyAlgorithm.ECDSA_P521,
    "ssh-ed25519": KeyAlgorithm.ED25519, "ssh-ed448": KeyAlgorithm.ED448,
}
_CERT_SUFFIX = "-cert-v01@openssh.com"


def key_algorithm(name: str | None) -> KeyAlgorithm:
    """``ssh-rsa`` -> RSA, ``ssh-ed25519-cert-v01@openssh.com`` -> ED25519, ..."""
    if name is None:
        return KeyAlgorithm.UNKNOWN
    if name.endswith(_CERT_SUFFIX):
        name = name[: -len(_CERT_SUFFIX)]
    return _SSH_NAMES.get(name, KeyAlgorithm.OTHER)


# A label must look like a product name; anything that could carry an address
# or key material (dotted/dashed quads, long hex or base64 runs) becomes
# "other" -- product strings come from what servers announce, i.e. attackers.
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9 ._+()/-]{0,63}\Z")
_LEAKY = re.compile(r"\d{1,3}(?:[.\-_ ]\d{1,3}){3}|[0-9A-Fa-f]{12,}|[A-Za-z0-9+/]{20,}")


def is_safe_label(s: str) -> bool:
    return bool(_LABEL.match(s)) and not _LEAKY.search(s)


def product_label(product: str | None) -> str:
    if product is None:
        return "unknown"
    return product if is_safe_label(product) else "other"


def asn_label(asn: int | None) -> str:
    return "unknown" if asn is None else f"AS{asn}"


def assert_counts_only(obj, path: str = "") -> None:
    """Raise ValueError unless ``obj`` is nested dicts of safe labels/ints -> ints >= 0."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, bool) or not (isinstance(k, int) or (isinstance(k, str) and is_safe_label(k))):
                raise ValueError(f"key stats: unsafe key at {path or '/'}")
            assert_counts_only(v, f"{path}/{k}")
    elif isinstance(obj, bool) or not isinstance(obj, int) or obj < 0:
        raise ValueError(f"key stats: non-count value at {path or '/'}")


# -- preparation ---------------------------------------------------------------

def _conform(table: pa.Table, columns) -> pa.Table:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise KeyStatsInputError(f"key stats: missing columns {', '.join(missing)}")
    try:
        t = pa.table({c: table[c].cast(INPUT_TYPES[c]) for c in columns})
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise KeyStatsInputError(f"key stats: column type mismatch: {e}") from None
    if t["ip"].null_count or t["port"].null_count:
        raise KeyStatsInputError("key stats: ip and port must not be null")
    return t


def _map_unique(arr: pa.ChunkedArray, fn, typ: pa.DataType) -> pa.Array:
    """fn applied per distinct value (labels, sizes): cheap on a week of rows."""
    uniq = pc.unique(arr)
    mapped = pa.array([fn(v) for v in uniq.to_pylist()], typ)
    return pc.take(mapped, pc.index_in(arr, value_set=uniq))


def _prepare(table: pa.Table) -> tuple[pa.Table, list[int], int, int]:
    """(keyed rows with derived columns, distinct moduli, rows without a key,
    distinct unusable moduli). ``mod_id`` indexes the distinct moduli."""
    t = _conform(table, INPUT_TYPES)
    without_key = t["key_fingerprint_sha256"].null_count
    t = t.filter(pc.is_valid(t["key_fingerprint_sha256"]))
    alg = _map_unique(t["key_algorithm"], lambda v: key_algorithm(v).value, pa.string())
    is_rsa = pc.equal(alg, KeyAlgorithm.RSA.value)
    modulus = pc.if_else(is_rsa, t["rsa_modulus"], pa.scalar(None, pa.binary()))
    # Distinct by value, not by bytes: a leading zero byte must not split a modulus.
    moduli: list[int] = []
    ids: dict[int, int] = {}
    unusable = set()

    def mod_id(b: bytes | None) -> int | None:
        if b is None:
            return None
        n = int.from_bytes(b, "big")
        if n < 2:
            unusable.add(n)
            return None
        if n not in ids:
            ids[n] = len(moduli)
            moduli.append(n)
        return ids[n]

    mid = _map_unique(modulus, mod_id, pa.int32())
    mod_bits = pc.take(pa.array([n.bit_length() for n in moduli], pa.int32()), mid)
    bits = pc.fill_null(pc.coalesce(mod_bits, t["key_bits"]), 0)
    rg, ip = t["responder_group"], t["ip"]
    unit = pc.if_else(pc.is_valid(rg), pc.binary_join_element_wise("group:", rg, ""),
                      pc.binary_join_element_wise("ip:", ip, ""))
    out = pa.table({
        "ip": ip, "port": t["port"], "fp": t["key_fingerprint_sha256"], "alg": alg,
        "bits": bits, "exponent": t["rsa_exponent"], "mod_id": mid, "unit": unit,
        "product": _map_unique(t["product"], product_label, pa.string()),
        "asn": _map_unique(t["asn"], asn_label, pa.string()),
    })
    return out, moduli, without_key, len(unusable)


# -- counting --------------------------------------------------------------------

def _distinct(t: pa.Table, col: str) -> int:
    return pc.count_distinct(t[col]).as_py()


def _cell(t: pa.Table) -> dict[str, int]:
    return {"keys": _distinct(t, "fp"), "hosts": _distinct(t, "ip"), "hosts_adjusted": _distinct(t, "unit")}


def _cells_by(t: pa.Table, cols: list[str]) -> list[tuple[tuple, dict[str, int]]]:
    if t.num_rows == 0:
        return []
    g = t.group_by(cols).aggregate([("fp", "count_distinct"), ("ip", "count_distinct"),
                                    ("unit", "count_distinct")])
    rows = [(tuple(r[c] for c in cols), {"keys": r["fp_count_distinct"], "hosts": r["ip_count_distinct"],
                                         "hosts_adjusted": r["unit_count_distinct"]}) for r in g.to_pylist()]
    return sorted(rows, key=lambda kv: kv[0])


def _rows_with(t: pa.Table, col: str, values: pa.ChunkedArray) -> pa.Table:
    return t.filter(pc.is_in(t[col], value_set=values.combine_chunks()))


def _shared(keyed: pa.Table) -> dict:
    """Keys seen on >= 2 hosts (raw) / >= 2 adjusted hosts (adjusted), and their
    hosts, overall and per product and ASN. A key spanning two ASNs counts in both."""
    per_key = keyed.group_by("fp").aggregate([("ip", "count_distinct"), ("unit", "count_distinct")])
    raw = _rows_with(keyed, "fp", per_key.filter(pc.greater_equal(per_key["ip_count_distinct"], 2))["fp"])
    adj = _rows_with(keyed, "fp", per_key.filter(pc.greater_equal(per_key["unit_count_distinct"], 2))["fp"])
    out = {"keys": _distinct(raw, "fp"), "hosts": _distinct(raw, "ip"),
           "keys_adjusted": _distinct(adj, "fp"), "hosts_adjusted": _distinct(adj, "unit")}
    for col in ("product", "asn"):
        groups: dict[str, dict[str, int]] = {}
        zero = {"keys": 0, "hosts": 0, "keys_adjusted": 0, "hosts_adjusted": 0}
        for (label,), c in _cells_by(raw, [col]):
            groups.setdefault(label, dict(zero)).update(keys=c["keys"], hosts=c["hosts"])
        for (label,), c in _cells_by(adj, [col]):
            groups.setdefault(label, dict(zero)).update(keys_adjusted=c["keys"],
                                                        hosts_adjusted=c["hosts_adjusted"])
        out[f"by_{col}"] = dict(sorted(groups.items()))
    return out


def _weak(keyed: pa.Table) -> dict:
    alg, bits, e = keyed["alg"], keyed["bits"], keyed["exponent"]
    rsa = pc.equal(alg, KeyAlgorithm.RSA.value)
    known = pc.and_(rsa, pc.greater(bits, 0))  # size 0 = unknown, never "weak"
    masks = {
        WeakKey.RSA_LT_1024: pc.and_(known, pc.less(bits, 1024)),
        WeakKey.RSA_LT_2048: pc.and_(known, pc.less(bits, 2048)),
        WeakKey.DSA: pc.equal(alg, KeyAlgorithm.DSA.value),
        WeakKey.RSA_EXPONENT_NOT_65537: pc.and_(rsa, pc.not_equal(e, COMMON_EXPONENT)),
        WeakKey.RSA_EXPONENT_LT_65537: pc.and_(rsa, pc.less(e, COMMON_EXPONENT)),
        WeakKey.RSA_EXPONENT_EVEN: pc.and_(rsa, pc.equal(pc.bit_wise_and(e, 1), 0)),
    }
    # Null exponents give null masks, which filter() drops: unknown is not weak.
    return {w.value: _cell(keyed.filter(m)) for w, m in masks.items()}


def _gcd_section(keyed: pa.Table, moduli: list[int], unusable: int, chunk_size: int, processes: int) -> dict:
    rsa = keyed.filter(pc.is_valid(keyed["mod_id"]))
    per_mod = rsa.group_by("mod_id").aggregate([("fp", "count_distinct"), ("ip", "count_distinct")])
    section = {
        "moduli": len(moduli), "moduli_unusable": unusable,
        # the same modulus under two fingerprints (e.g. another exponent, or a certificate)
        "moduli_in_several_keys": pc.sum(pc.greater_equal(per_mod["fp_count_distinct"], 2)).as_py() or 0,
        "moduli_on_several_hosts": pc.sum(pc.greater_equal(per_mod["ip_count_distinct"], 2)).as_py() or 0,
        "moduli_sharing_prime": 0, "moduli_both_primes_shared": 0,
    }
    flagged: list[int] = []
    if moduli:
        res = batch_gcd(moduli, chunk_size=chunk_size, processes=processes)
        for i, n in enumerate(moduli):
            g = res.gcd_at(i)
            if g > 1:
                flagged.append(i)
                section["moduli_both_primes_shared"] += int(g == n)
        section["moduli_sharing_prime"] = len(flagged)
    section.update(_cell(_rows_with(rsa, "mod_id", pa.chunked_array([flagged], pa.int32()))))
    return section


def week_key_stats(table: pa.Table, *, gcd_chunk_size: int = DEFAULT_CHUNK_SIZE,
                   gcd_processes: int = 1) -> dict:
    """Counts for one week of SSH observations (see the module docstring)."""
    keyed, moduli, without_key, unusable = _prepare(table)
    by_alg_bits: dict[str, dict[int, dict[str, int]]] = {}
    for (alg, bits), cell in _cells_by(keyed, ["alg", "bits"]):
        by_alg_bits.setdefault(alg, {})[bits] = cell
    out = {
        "observations": keyed.num_rows, "observations_without_key": without_key,
        **_cell(keyed),
        "algorithms": {alg: cell for (alg,), cell in _cells_by(keyed, ["alg"])},
        "key_bits": by_alg_bits,
        "shared_keys": _shared(keyed),
        "weak_keys": _weak(keyed),
        "batch_gcd": _gcd_section(keyed, moduli, unusable, gcd_chunk_size, gcd_processes),
    }
    assert_counts_only(out)
    return out


def _port_keys(table: pa.Table) -> dict[tuple[str, int], frozenset]:
    t = _conform(table, CHURN_COLUMNS)
    g = t.group_by(["ip", "port"]).aggregate([("key_fingerprint_sha256", "distinct")])
    return {(r["ip"], r["port"]): frozenset(r["key_fingerprint_sha256_distinct"])
            for r in g.to_pylist() if r["key_fingerprint_sha256_distinct"]}


def key_churn(current: pa.Table, previous: pa.Table) -> dict[str, int]:
    """How many ip:port that showed a host key in both weeks changed keys.

    Needs only ip, port and key_fingerprint_sha256. A port showing several keys
    (several host key algorithms) counts as changed when its key set differs.
    """
    cur, prev = _port_keys(current), _port_keys(previous)
    both = cur.keys() & prev.keys()
    changed = sum(1 for k in both if cur[k] != prev[k])
    out = {"ports_this_week": len(cur), "ports_previous_week": len(prev), "ports_in_both": len(both),
           "changed": changed, "unchanged": len(both) - changed,
           "new": len(cur.keys() - prev.keys()), "gone": len(prev.keys() - cur.keys())}
    assert_counts_only(out)
    return out


# -- the k rule: what may be published ------------------------------------------
# A count of fewer than k hosts is too close to naming them, the same rule as
# every aggregate cell. Labelled groups (algorithms, shared keys by product
# and AS) fold their small labels into "other"; key sizes of an algorithm
# seen on fewer than k hosts fold into ``key_bits_other[alg]``; and any cell
# still under k -- a finding, a weak-key class, a batch-GCD result, "other"
# itself -- is published as ``{"fewer_than_k": 1}`` with no count at all.
FEWER_THAN_K = "fewer_than_k"
_FOLDED = ("algorithms",)
_SHARED_GROUPS = ("by_product", "by_asn")


def _add(acc: dict, cell: dict) -> None:
    for f, n in cell.items():
        if f != FEWER_THAN_K:
            acc[f] = acc.get(f, 0) + n


def _is_small(cell: dict, k: int) -> bool:
    return FEWER_THAN_K in cell or 0 < cell.get("hosts", 0) < k


def _masked(cell: dict, k: int) -> dict:
    return {FEWER_THAN_K: 1} if _is_small(cell, k) else dict(cell)


def _fold(groups: dict, k: int) -> dict:
    kept, other, small_other = {}, {}, False
    for label, cell in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if label != "other" and not _is_small(cell, k):
            kept[label] = dict(cell)
        else:
            small_other |= FEWER_THAN_K in cell
            _add(other, cell)
    if other or small_other:
        kept["other"] = {FEWER_THAN_K: 1} if small_other else _masked(other, k)
    return kept


def apply_k(stats: dict, k: int) -> dict:
    """``week_key_stats`` output with the k rule applied (see above); pure,
    idempotent, and a larger k folds further. Still counts only."""
    out = dict(stats)
    for name in _FOLDED:
        if isinstance(out.get(name), dict):
            out[name] = _fold(out[name], k)
    sizes, other_sizes = {}, {alg: dict(c) for alg, c in (out.get("key_bits_other") or {}).items()}
    for alg, by_bits in (out.get("key_bits") or {}).items():
        for bits, cell in by_bits.items():
            if _is_small(cell, k):
                acc = other_sizes.setdefault(alg, {})
                if FEWER_THAN_K in cell:
                    acc[FEWER_THAN_K] = 1
                _add(acc, cell)
            else:
                sizes.setdefault(alg, {})[bits] = dict(cell)
    if "key_bits" in out:
        out["key_bits"] = sizes
    if other_sizes:
        out["key_bits_other"] = {alg: {FEWER_THAN_K: 1} if FEWER_THAN_K in c else _masked(c, k)
                                 for alg, c in sorted(other_sizes.items())}
    if isinstance(out.get("shared_keys"), dict):
        shared = dict(out["shared_keys"])
        for name in _SHARED_GROUPS:
            if isinstance(shared.get(name), dict):
                shared[name] = _fold(shared[name], k)
        totals = {f: shared[f] for f in ("keys", "hosts", "keys_adjusted", "hosts_adjusted") if f in shared}
        if _is_small(shared, k) or (totals and 0 < totals.get("hosts", 0) < k):
            for f in totals:
                shared.pop(f)
            shared[FEWER_THAN_K] = 1
        out["shared_keys"] = shared
    if isinstance(out.get("weak_keys"), dict):
        out["weak_keys"] = {w: _masked(c, k) for w, c in out["weak_keys"].items()}
    if isinstance(out.get("batch_gcd"), dict):
        gcd = dict(out["batch_gcd"])
        if _is_small(gcd, k):
            # the moduli totals stay (they count every RSA key of the week);
            # which few share a prime, and on how many hosts, does not
            for f in ("moduli_sharing_prime", "moduli_both_primes_shared", "keys", "hosts", "hosts_adjusted"):
                gcd.pop(f, None)
            gcd[FEWER_THAN_K] = 1
        out["batch_gcd"] = gcd
    assert_counts_only(out)
    return out


def churn_k(churn: dict | None, k: int) -> dict | None:
    """Key churn with counts of 1..k-1 addresses:ports withheld: their names
    move to ``fewer_than_k`` (0 stays: none is no one)."""
    if not churn:
        return churn
    out, small = {}, dict(churn.get(FEWER_THAN_K) or {})
    for name, n in churn.items():
        if name == FEWER_THAN_K:
            continue
        if 0 < n < k:
            small[name] = 1
        else:
            out[name] = n
    if small:
        out[FEWER_THAN_K] = dict(sorted(small.items()))
    assert_counts_only(out)
    return out
