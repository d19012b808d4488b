"""The k rule on host-key statistics: what of ``week_key_stats`` (stats.py)
may be published.

A count of fewer than k hosts is too close to naming them -- the same rule
as every aggregate cell. Labelled groups (algorithms, shared keys by product
and AS) fold their small labels into "other"; key sizes of an algorithm seen
on fewer than k hosts fold into ``key_bits_other[alg]``; and any cell still
under k -- a finding, a weak-key class, a batch-GCD result, "other" itself --
is published as ``{"fewer_than_k": 1}`` with no count at all::

    >>> apply_k({"weak_keys": {"dsa": {"keys": 2, "hosts": 2, "hosts_adjusted": 2}}}, 10)
    {'weak_keys': {'dsa': {'fewer_than_k': 1}}}

Pure; the output is still counts only (``assert_counts_only``).
"""
from __future__ import annotations

from pipelines.keys.stats import assert_counts_only

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
