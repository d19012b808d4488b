"""Batch GCD on real RSA keys from ssh-keygen, with primes deliberately shared."""
from __future__ import annotations

import base64
import math
import shutil
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from pipelines.keys import batchgcd
from pipelines.keys.batchgcd import batch_gcd
from pipelines.keys import bench_gcd
from tests.helpers import ssh_wire_fields


def rsa_keys(tmp_path, count: int, bits: int = 1024) -> list[dict]:
    """``count`` RSA keys from ssh-keygen (all started at once: keygen is the slow
    part): modulus and exponent read from the .pub blob as a scanner sees
    them, the primes from the private key."""
    from cryptography.hazmat.primitives import serialization
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    paths = [tmp_path / f"k{i}" for i in range(count)]
    procs = [subprocess.Popen(["ssh-keygen", "-q", "-t", "rsa", "-b", str(bits), "-N", "", "-f", str(p)])
             for p in paths]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    keys = []
    for p in paths:
        blob = base64.b64decode((p.with_suffix(".pub")).read_text().split()[1])
        name, e, n = ssh_wire_fields(blob)
        priv = serialization.load_ssh_private_key(p.read_bytes(), password=None).private_numbers()
        keys.append({"n": int.from_bytes(n, "big"), "e": int.from_bytes(e, "big"),
                     "p": priv.p, "q": priv.q, "blob": blob, "name": name})
    return keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return rsa_keys(tmp_path_factory.mktemp("keys"), 10)


def _scenario(keys):
    """Moduli with a hand-made answer. K0..K3 are untouched ssh-keygen keys;
    primes r* from K4..K7 and s* from K8, K9 are recombined:
      A=r1*r2, B=r1*r3          share r1
      C=r4*r5, D=r4*r6, E=r4*r7 share r4
      H=s1*s2, I=s1*s3, J=s2*s4 H shares both primes, I and J one each
    K0 is listed 3 times and A twice (duplicates, not weak primes)."""
    r = [None] + [k[x] for k in keys[4:8] for x in ("p", "q")]
    s = [None] + [k[x] for k in keys[8:10] for x in ("p", "q")]
    named = {
        "K0": keys[0]["n"], "K1": keys[1]["n"], "K2": keys[2]["n"], "K3": keys[3]["n"],
        "A": r[1] * r[2], "B": r[1] * r[3], "C": r[4] * r[5], "D": r[4] * r[6], "E": r[4] * r[7],
        "H": s[1] * s[2], "I": s[1] * s[3], "J": s[2] * s[4],
    }
    expected = {"K0": 1, "K1": 1, "K2": 1, "K3": 1, "A": r[1], "B": r[1], "C": r[4], "D": r[4],
                "E": r[4], "H": named["H"], "I": s[1], "J": s[2]}
    order = ["K0", "A", "K1", "B", "K0", "C", "D", "K2", "E", "H", "A", "I", "J", "K3", "K0"]
    return named, expected, order


def test_ssh_keygen_keys_are_what_we_think(keys):
    for k in keys:
        assert k["name"] == b"ssh-rsa" and k["e"] == 65537
        assert k["p"] * k["q"] == k["n"] and k["n"].bit_length() == 1024


@pytest.mark.parametrize("chunk_size,processes", [(batchgcd.DEFAULT_CHUNK_SIZE, 1), (1, 1), (4, 1), (3, 2)])
def test_shared_primes_and_duplicates_exact(keys, chunk_size, processes):
    named, expected, order = _scenario(keys)
    res = batch_gcd([named[x] for x in order], chunk_size=chunk_size, processes=processes)
    assert len(res.moduli) == len(named) == 12
    assert [int(m) for m in res.moduli] == sorted(named.values())
    for pos, name in enumerate(order):
        assert res.moduli[res.index[pos]] == named[name]
        assert res.gcd_at(pos) == expected[name], name
    assert res.sharing_prime == 8            # A B C D E H I J
    assert res.both_primes_shared == 1       # H
    assert res.duplicated == 2               # K0, A
    assert res.duplicate_occurrences == 3    # K0 twice more, A once more
    mult = {int(m): c for m, c in zip(res.moduli, res.multiplicity, strict=True)}
    assert mult[named["K0"]] == 3 and mult[named["A"]] == 2 and mult[named["K1"]] == 1


def test_factors_recovered_from_single_shared_prime(keys):
    named, _, _ = _scenario(keys)
    res = batch_gcd(list(named.values()))
    for n, g in zip(res.moduli, res.gcds, strict=True):
        if 1 < g < n:
            assert n % g == 0 and g.bit_length() == 512   # g is the shared prime


def test_bytes_and_ints_agree(keys):
    ns = [k["n"] for k in keys[:4]] + [keys[4]["p"] * keys[5]["q"], keys[4]["p"] * keys[6]["q"]]
    as_bytes = [n.to_bytes(128, "big") for n in ns]
    as_bytes[0] = b"\x00" + as_bytes[0]     # a leading zero byte is the same modulus
    want = [1, 1, 1, 1, keys[4]["p"], keys[4]["p"]]
    for res in (batch_gcd(ns), batch_gcd(as_bytes), batch_gcd(as_bytes[:3] + ns[3:])):
        assert [res.gcd_at(i) for i in range(6)] == want


def test_python_int_fallback_same_result(keys, monkeypatch):
    named, expected, order = _scenario(keys)
    with_gmp = batch_gcd([named[x] for x in order], chunk_size=5)
    monkeypatch.setattr(batchgcd, "_mpz", int)
    monkeypatch.setattr(batchgcd, "_gcd", math.gcd)
    without = batch_gcd([named[x] for x in order], chunk_size=5)
    assert all(type(m) is int for m in without.moduli)
    assert without.gcds == with_gmp.gcds and without.index == with_gmp.index


@pytest.mark.parametrize("bad,exc", [([15, 1], ValueError), ([0], ValueError), ([-35], ValueError),
                                     ([b""], ValueError), ([b"\x00\x01"], ValueError),
                                     ([True], ValueError), ([1.5], TypeError), (["15"], TypeError)])
def test_invalid_moduli_raise(bad, exc):
    with pytest.raises(exc):
        batch_gcd(bad)


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        batch_gcd([15], chunk_size=0)
    with pytest.raises(ValueError):
        batch_gcd([15], processes=0)


def test_empty_and_single():
    assert batch_gcd([]).gcds == ()
    one = batch_gcd([77, 77])
    assert one.gcds == (1,) and one.multiplicity == (2,) and one.index == (0, 0)


def _naive(xs: list[int]) -> tuple[int, ...]:
    d = sorted(set(xs))
    return tuple(math.gcd(n, math.prod(d[:i] + d[i + 1:])) for i, n in enumerate(d))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(2, 10**9), max_size=40), st.integers(1, 6))
def test_matches_naive_gcd(xs, chunk_size):
    res = batch_gcd(xs, chunk_size=chunk_size)
    assert res.gcds == _naive(xs)
    assert sum(res.multiplicity) == len(xs)
    assert all(res.moduli[res.index[i]] == x for i, x in enumerate(xs))


def test_bench_plants_what_it_says():
    moduli = bench_gcd.make_moduli(12, shared=3, duplicates=2, seed=7, processes=1)
    assert len(moduli) == 14 and all(len(m) == 128 and m[0] >= 0x80 for m in moduli)
    res = batch_gcd(moduli)
    assert res.sharing_prime == 6 and res.duplicated == 2 and res.both_primes_shared == 0
    assert bench_gcd.main(["--moduli", "8", "--shared", "2", "--duplicates", "1", "--processes", "1"]) == 0
