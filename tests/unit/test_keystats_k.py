"""k everywhere on the host-key statistics (issue 14 item 5): apply_k and
churn_k in pipelines/keys/stats.py, and the port-22 tables built from them."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.keys.stats import FEWER_THAN_K, apply_k, assert_counts_only, churn_k, week_key_stats
from pipelines.report.hostkeys import host_key_tables

K = 10


def _table(n_hosts: int, *, shared_small: int = 3, dsa: int = 2, small_bits: int = 4) -> pa.Table:
    rows = []
    for i in range(n_hosts):
        if i < shared_small:
            fp, alg, bits, mod = "shared", "ssh-rsa", 2048, (1 << 2047) + 12345
        elif i < shared_small + dsa:
            fp, alg, bits, mod = f"dsa{i}", "ssh-dss", 1024, None
        elif i < shared_small + dsa + small_bits:
            fp, alg, bits, mod = f"r{i}", "ssh-rsa", 1536, (1 << 1535) + 2 * i + 1
        else:
            fp, alg, bits, mod = f"e{i}", "ssh-ed25519", 256, None
        rows.append({"ip": f"198.18.1.{i}", "port": 22, "key_algorithm": alg, "key_fingerprint_sha256": fp,
                     "rsa_modulus": mod.to_bytes((mod.bit_length() + 7) // 8, "big") if mod else None,
                     "rsa_exponent": 65537 if mod else None, "key_bits": bits, "product": "OpenSSH",
                     "asn": 64500 + (i % 3), "responder_group": None})
    return pa.Table.from_pylist(rows)


def _cells(obj, path=""):
    """Every counted cell (a dict with a hosts count) of the stats."""
    if isinstance(obj, dict):
        if "hosts" in obj and isinstance(obj["hosts"], int):
            yield path, obj
        for key, v in obj.items():
            yield from _cells(v, f"{path}/{key}")


def test_no_cell_under_k_survives():
    stats = week_key_stats(_table(40))
    assert any(0 < c["hosts"] < K for _, c in _cells(stats))      # the raw stats have small cells
    out = apply_k(stats, K)
    assert_counts_only(out)
    small = [(p, c) for p, c in _cells(out) if 0 < c["hosts"] < K and p != ""]
    assert small == []
    assert out["shared_keys"] == {**{k: v for k, v in out["shared_keys"].items() if k.startswith("by_")},
                                  FEWER_THAN_K: 1}
    assert out["weak_keys"]["dsa"] == {FEWER_THAN_K: 1}
    assert out["key_bits_other"]["rsa"] == {FEWER_THAN_K: 1} or out["key_bits_other"]["rsa"]["hosts"] >= K
    assert apply_k(out, K) == out                                   # idempotent


@settings(max_examples=40, deadline=None)
@given(st.integers(12, 60), st.integers(0, 11), st.integers(0, 11), st.integers(0, 11), st.integers(1, 30))
def test_k_rule_for_any_week(n, shared, dsa, small_bits, k):
    stats = week_key_stats(_table(n, shared_small=min(shared, n), dsa=dsa, small_bits=small_bits))
    out = apply_k(stats, k)
    assert [(p, c) for p, c in _cells(out) if p and 0 < c["hosts"] < k] == []
    # a larger k (a render with a stricter k than the writer's) folds further,
    # never back: a cell withheld at k stays withheld
    again = apply_k(out, k + 5)
    assert [(p, c) for p, c in _cells(again) if p and 0 < c["hosts"] < k + 5] == []


def test_tables_publish_no_cell_under_k():
    doc = {"week": "2026-W48", "k": K, "stats": apply_k(week_key_stats(_table(40)), K),
           "churn": {"ports_this_week": 40, "ports_previous_week": 38, "ports_in_both": 30, "changed": 3,
                     "unchanged": 27, "new": 10, "gone": 8}, "previous_week": "2026-W47"}
    for t in host_key_tables(doc, "2026-W48"):
        for row in t.rows:
            for col, v in zip(t.columns, row):
                if col.kind == "int" and isinstance(v, int) and col.key != "bits":
                    assert v == 0 or v >= K, (t.slug, row)
        assert "fewer than 10" in t.note


def test_churn_k():
    assert churn_k({"changed": 3, "new": 0, "gone": 12}, K) == {"new": 0, "gone": 12, FEWER_THAN_K: {"changed": 1}}
    assert churn_k(None, K) is None
