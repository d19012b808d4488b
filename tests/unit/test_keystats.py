"""Weekly SSH key statistics on real ssh-keygen keys, with shared primes,
shared keys, single-responder groups and weak exponents planted."""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess

import gmpy2
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from pipelines.keys import stats
from pipelines.keys.stats import KeyStatsInputError, assert_counts_only, key_churn, week_key_stats
from tests.helpers import ssh_wire_fields


def _string(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _mpint(n: int) -> bytes:
    return _string(n.to_bytes(n.bit_length() // 8 + 1, "big"))  # room for the sign bit


def rsa_blob(e: int, n: int) -> bytes:
    """RFC 4253 ssh-rsa public key blob."""
    return _string(b"ssh-rsa") + _mpint(e) + _mpint(n)


def _key(blob: bytes, bits: int | None) -> dict:
    name = ssh_wire_fields(blob)[0].decode()
    k = {"alg": name, "blob": blob, "fp": hashlib.sha256(blob).hexdigest(), "bits": bits,
         "n": None, "e": None}
    if name == "ssh-rsa":
        _, e, n = ssh_wire_fields(blob)
        k["e"], k["n"] = int.from_bytes(e, "big"), int.from_bytes(n, "big")
    return k


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Real keys from ssh-keygen (started together), primes from the private keys."""
    from cryptography.hazmat.primitives import serialization
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    d = tmp_path_factory.mktemp("sshkeys")
    specs = {"R1": ("rsa", "2048"), "R2": ("rsa", "2048"), "R3": ("rsa", "1024"), "R4": ("rsa", "1024"),
             "R5": ("rsa", "1024"), "R6": ("rsa", "1024"), "ED": ("ed25519", None),
             "EC": ("ecdsa", "256"), "DS": ("dsa", None)}
    procs = [subprocess.Popen(["ssh-keygen", "-q", "-t", t, *(["-b", b] if b else []), "-N", "", "-f", str(d / k)])
             for k, (t, b) in specs.items()]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    bits = {"ED": 256, "EC": 256, "DS": 1024}
    out, primes = {}, {}
    for k in specs:
        blob = base64.b64decode((d / f"{k}.pub").read_text().split()[1])
        out[k] = _key(blob, bits.get(k))
        if k.startswith("R"):
            priv = serialization.load_ssh_private_key((d / k).read_bytes(), None).private_numbers()
            primes[k] = (priv.p, priv.q)
            out[k]["bits"] = out[k]["n"].bit_length()
    # Our fingerprint is zgrab2's (hex SHA-256 of the blob); ssh-keygen agrees.
    shown = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(d / "R1.pub")],
                           capture_output=True, text=True, check=True).stdout.split()[1]
    assert shown == "SHA256:" + base64.b64encode(bytes.fromhex(out["R1"]["fp"])).decode().rstrip("=")
    p4, q5, q6 = primes["R4"][0], primes["R5"][1], primes["R6"][1]
    out["S1"] = _key(rsa_blob(65537, p4 * q5), None)       # S1 and S2 share p4
    out["S2"] = _key(rsa_blob(65537, p4 * q6), None)
    n3 = out["R3"]["n"]
    out["E3"] = _key(rsa_blob(3, n3), 1024)                 # R3's modulus, e = 3
    # R3's modulus, even e; its reported size is wrong on purpose: the modulus wins
    out["EV"] = _key(rsa_blob(65538, n3), 4096)
    state = gmpy2.random_state(5)
    small = [int(gmpy2.next_prime(gmpy2.mpz_urandomb(state, 384) | (gmpy2.mpz(3) << 382))) for _ in range(2)]
    out["L"] = _key(rsa_blob(65537, small[0] * small[1]), 768)
    out["_primes"] = [*primes["R4"], *primes["R5"], *primes["R6"], *primes["R3"], *small]
    for k in ("S1", "S2", "R3"):
        assert out[k]["n"].bit_length() == 1024
    assert out["L"]["n"].bit_length() == 768
    return out


# ip, port, key, product, asn, responder_group
WEEK = [
    ("10.0.0.1", 22, "R1", "OpenSSH_9.2p1", 64500, "g1"),
    ("10.0.0.2", 22, "R1", "OpenSSH_9.2p1", 64500, "g1"),
    ("10.0.1.1", 22, "R1", "203.0.113.7", 64501, None),      # hostile product text
    ("10.0.2.1", 22, "R2", "dropbear_2022.83", 64502, "g2"),
    ("10.0.2.2", 22, "R2", "dropbear_2022.83", 64502, "g2"),
    ("10.0.3.1", 22, "ED", None, None, None),
    ("10.0.3.1", 2222, "ED", None, None, None),                # same host, second port
    ("10.0.4.1", 22, "S1", "OpenSSH_7.4", 64503, None),
    ("10.0.4.2", 22, "S2", "OpenSSH_7.4", 64503, None),
    ("10.0.5.1", 22, "R3", None, 64504, None),
    ("10.0.5.2", 22, "E3", None, 64504, None),
    ("10.0.5.3", 22, "EV", None, 64504, None),
    ("10.0.6.1", 22, "EC", None, None, None),
    ("10.0.6.2", 22, "DS", None, None, None),
    ("10.0.7.1", 22, None, None, None, None),                  # answered, no host key
    ("10.0.8.1", 22, "L", None, None, None),
]


def table(rows, keys) -> pa.Table:
    cols = {c: [] for c in stats.INPUT_TYPES}
    for ip, port, k, product, asn, group in rows:
        key = keys[k] if k else {"alg": None, "fp": None, "n": None, "e": None, "bits": None}
        cols["ip"].append(ip)
        cols["port"].append(port)
        cols["key_algorithm"].append(key["alg"])
        cols["key_fingerprint_sha256"].append(key["fp"])
        cols["rsa_modulus"].append(key["n"].to_bytes((key["n"].bit_length() + 7) // 8, "big") if key["n"] else None)
        cols["rsa_exponent"].append(key["e"])
        cols["key_bits"].append(key["bits"])
        cols["product"].append(product)
        cols["asn"].append(asn)
        cols["responder_group"].append(group)
    types = dict(stats.INPUT_TYPES, port=pa.uint16())  # as CLEAN_SCHEMA has it
    return pa.table({c: pa.array(v, types[c]) for c, v in cols.items()})


def _c(keys, hosts, adj):
    return {"keys": keys, "hosts": hosts, "hosts_adjusted": adj}


def test_week_counts_exact(keys):
    s = week_key_stats(table(WEEK, keys), gcd_chunk_size=2)
    assert (s["observations"], s["observations_without_key"]) == (15, 1)
    assert (s["keys"], s["hosts"], s["hosts_adjusted"]) == (11, 14, 12)
    assert s["algorithms"] == {"dsa": _c(1, 1, 1), "ecdsa-p256": _c(1, 1, 1), "ed25519": _c(1, 1, 1),
                               "rsa": _c(8, 11, 9)}
    assert s["key_bits"] == {"dsa": {1024: _c(1, 1, 1)}, "ecdsa-p256": {256: _c(1, 1, 1)},
                             "ed25519": {256: _c(1, 1, 1)},
                             "rsa": {768: _c(1, 1, 1), 1024: _c(5, 5, 5), 2048: _c(2, 5, 3)}}
    sh = s["shared_keys"]
    # R1 on 3 hosts = 2 adjusted (g1 + 10.0.1.1); R2 on 2 hosts that are one responder (g2)
    assert (sh["keys"], sh["hosts"], sh["keys_adjusted"], sh["hosts_adjusted"]) == (2, 5, 1, 2)
    assert sh["by_product"] == {
        "OpenSSH_9.2p1": {"keys": 1, "hosts": 2, "keys_adjusted": 1, "hosts_adjusted": 1},
        "dropbear_2022.83": {"keys": 1, "hosts": 2, "keys_adjusted": 0, "hosts_adjusted": 0},
        "other": {"keys": 1, "hosts": 1, "keys_adjusted": 1, "hosts_adjusted": 1}}
    assert sh["by_asn"] == {
        "AS64500": {"keys": 1, "hosts": 2, "keys_adjusted": 1, "hosts_adjusted": 1},
        "AS64501": {"keys": 1, "hosts": 1, "keys_adjusted": 1, "hosts_adjusted": 1},
        "AS64502": {"keys": 1, "hosts": 2, "keys_adjusted": 0, "hosts_adjusted": 0}}
    assert s["weak_keys"] == {
        "rsa_lt_1024": _c(1, 1, 1), "rsa_lt_2048": _c(6, 6, 6), "dsa": _c(1, 1, 1),
        "rsa_exponent_not_65537": _c(2, 2, 2), "rsa_exponent_lt_65537": _c(1, 1, 1),
        "rsa_exponent_even": _c(1, 1, 1)}
    assert s["batch_gcd"] == {
        "moduli": 6, "moduli_unusable": 0,
        "moduli_in_several_keys": 1,      # R3's modulus under R3, E3, EV
        "moduli_on_several_hosts": 3,     # R1, R2, R3's modulus
        "moduli_sharing_prime": 2, "moduli_both_primes_shared": 0,   # S1, S2
        "keys": 2, "hosts": 2, "hosts_adjusted": 2}


def test_parallel_and_chunking_do_not_change_result(keys):
    t = table(WEEK, keys)
    assert week_key_stats(t, gcd_chunk_size=1, gcd_processes=2) == week_key_stats(t)


def test_output_holds_no_key_material_or_address(keys):
    s = week_key_stats(table(WEEK, keys))
    text = json.dumps(s)
    forbidden = {ip for ip, *_ in WEEK} | {"203.0.113.7"}
    for k, key in keys.items():
        if k == "_primes":
            continue
        forbidden |= {key["fp"], key["fp"][:16], base64.b64encode(key["blob"]).decode()[:40],
                      base64.b64encode(hashlib.sha256(key["blob"]).digest()).decode()[:20]}
        if key["n"]:
            forbidden |= {str(key["n"])[:30], format(key["n"], "x")[:30]}
    for p in keys["_primes"]:
        forbidden |= {str(p)[:30], format(p, "x")[:30]}
    assert not [f for f in forbidden if f in text]
    assert_counts_only(s)


@pytest.mark.parametrize("bad", [{"keys": 1.5}, {"keys": "3"}, {"keys": True}, {"keys": -1},
                                 {"10.0.0.1": 1}, {"a" + "0f" * 16: 1}, {"x": [1]}, {"ok": {b"k": 1}},
                                 {"ok": {"host-10-1-2-3": 1}}, {"ok": None}])
def test_assert_counts_only_rejects(bad):
    with pytest.raises(ValueError):
        assert_counts_only(bad)


def test_labels():
    assert stats.product_label("OpenSSH_8.9p1 Ubuntu-3ubuntu0.1") == "OpenSSH_8.9p1 Ubuntu-3ubuntu0.1"
    for hostile in ("203.0.113.7", "srv 203.0.113.7", "SHA256:TQ8zWv95pKrp5XP5Vt6y7CqNqXeqLDLoamJWrGkxdZw",
                    "key " + "ab" * 8, "fe80::1", "x" * 80, "<script>"):
        assert stats.product_label(hostile) == "other", hostile
    assert stats.asn_label(None) == "unknown" and stats.asn_label(13335) == "AS13335"
    assert stats.key_algorithm("ssh-ed25519-cert-v01@openssh.com") is stats.KeyAlgorithm.ED25519
    assert stats.key_algorithm("ecdsa-sha2-nistp256") is stats.KeyAlgorithm.ECDSA_P256  # zgrab2 fixture's
    assert stats.key_algorithm("ssh-foo") is stats.KeyAlgorithm.OTHER


def test_churn(keys):
    previous = [
        ("10.0.0.1", 22, "R1", None, None, None),      # unchanged
        ("10.0.2.1", 22, "R1", None, None, None),      # now R2
        ("10.0.3.1", 22, "ED", None, None, None),      # unchanged
        ("10.0.3.1", 2222, "EC", None, None, None),    # now ED
        ("10.0.9.9", 22, "R3", None, None, None),      # gone
        ("10.0.7.1", 22, None, None, None, None),      # never a key
    ]
    assert key_churn(table(WEEK, keys), table(previous, keys)) == {
        "ports_this_week": 15, "ports_previous_week": 5, "ports_in_both": 4,
        "changed": 2, "unchanged": 2, "new": 11, "gone": 1}


def test_churn_port_with_several_keys(keys):
    two = [("10.0.0.1", 22, "ED", None, None, None), ("10.0.0.1", 22, "R1", None, None, None)]
    assert key_churn(table(two, keys), table(two[::-1], keys))["unchanged"] == 1
    assert key_churn(table(two[:1], keys), table(two, keys))["changed"] == 1


def test_input_errors(keys):
    t = table(WEEK, keys)
    with pytest.raises(KeyStatsInputError, match="responder_group"):
        week_key_stats(t.drop_columns(["responder_group"]))
    with pytest.raises(KeyStatsInputError, match="null"):
        week_key_stats(t.set_column(0, "ip", pa.array([None] * t.num_rows, pa.string())))
    with pytest.raises(KeyStatsInputError, match="type"):
        week_key_stats(t.set_column(4, "rsa_modulus", pa.array([[1]] * t.num_rows)))


def test_unusable_modulus_is_counted_not_fatal(keys):
    t = table(WEEK[:1], keys)
    t = t.set_column(4, "rsa_modulus", pa.array([b"\x00\x01"], pa.binary()))
    s = week_key_stats(t)
    assert s["batch_gcd"]["moduli"] == 0 and s["batch_gcd"]["moduli_unusable"] == 1
    assert s["key_bits"] == {"rsa": {2048: _c(1, 1, 1)}}   # falls back to key_bits


def test_empty_week():
    s = week_key_stats(table([], {}))
    assert s["observations"] == s["keys"] == s["batch_gcd"]["moduli"] == 0 and s["algorithms"] == {}


ROW = st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]), st.sampled_from([22, 2222]),
                st.sampled_from(["K1", "K2", "K3", None]), st.none(), st.none(),
                st.sampled_from([None, None, "g1", "g2"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(ROW, max_size=12), st.lists(ROW, max_size=12))
def test_shared_and_churn_match_naive_recount(cur, prev):
    ks = {k: {"alg": "ssh-ed25519", "fp": k.lower() + "00", "n": None, "e": None, "bits": 256}
          for k in ("K1", "K2", "K3")}
    s = week_key_stats(table(cur, ks))
    ips, units = {}, {}
    for ip, _, k, _, _, g in cur:
        if k:
            ips.setdefault(k, set()).add(ip)
            units.setdefault(k, set()).add(g or ip)
    raw = [k for k in ips if len(ips[k]) >= 2]
    adj = [k for k in units if len(units[k]) >= 2]
    sh = s["shared_keys"]
    assert sh["keys"] == len(raw) and sh["hosts"] == len(set().union(*[ips[k] for k in raw]))
    assert sh["keys_adjusted"] == len(adj) and sh["hosts_adjusted"] == len(set().union(*[units[k] for k in adj]))

    def ports(rows):
        d = {}
        for ip, port, k, *_ in rows:
            if k:
                d.setdefault((ip, port), set()).add(k)
        return d
    c, p = ports(cur), ports(prev)
    churn = key_churn(table(cur, ks), table(prev, ks))
    assert churn["changed"] == sum(1 for x in c.keys() & p.keys() if c[x] != p[x])
    assert churn["new"] == len(c.keys() - p.keys()) and churn["gone"] == len(p.keys() - c.keys())
