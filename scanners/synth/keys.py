"""Deterministic SSH host keys for the demo's zgrab2 ssh scan.

RSA keys are built from primes found with our own seeded sieve + Miller-Rabin
search (OpenSSL's generator cannot be seeded); Ed25519 keys come from seeded
32-byte private keys via ``cryptography``. The scan deliberately contains

* hosts that share one key (a vendor's default key baked into firmware, and
  the single-responder /24, which is one box behind NAT), and
* two RSA moduli that share a prime factor (a weak-RNG pair that a GCD
  sweep across all moduli exposes).

Pure Python modular exponentiation is slow, so the key set is small (about
fifty hosts) and mostly 1024-bit, which is also what much of 2013 ran.
"""
from __future__ import annotations

import dataclasses
import functools
import ipaddress
import random

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from scanners.synth import writers as w

ZGRAB_SSH_HOSTS = 40        # ordinary port-22 hosts that zgrab2 also grabs
SHARED_KEY_HOSTS = 6        # of those, hosts with the same firmware key
SINGLE_RESPONDER_HOSTS = 8  # addresses of the NAT /24 in the zgrab2 input
ED25519_SHARE = 0.2


@dataclasses.dataclass(frozen=True)
class HostKey:
    algorithm: str          # ssh-rsa / ssh-ed25519
    json: dict              # zgrab2 key_exchange.server_host_key
    bits: int
    primes: tuple = ()      # RSA only: (p, q), kept for the shared-prime truth

    @property
    def fingerprint(self) -> str:
        return self.json["fingerprint_sha256"]


def _small_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, limit, i)))
    return [i for i in range(3, limit) if sieve[i]]


_SMALL_PRIMES = _small_primes(8192)
_WINDOW = 4096


def _miller_rabin(n: int, rng: random.Random, rounds: int) -> bool:
    d, s = n - 1, 0
    while not d & 1:
        d >>= 1
        s += 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def random_prime(bits: int, rng: random.Random, avoid: tuple = ()) -> int:
    """A ``bits``-bit probable prime (top two bits set, so p*q has 2*bits bits),
    from ``rng`` alone. ``avoid``: small primes r with p % r == 1 rejected, so
    that e = 35 = 5*7 stays invertible mod p-1."""
    while True:
        start = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        composite = bytearray(_WINDOW)   # offset k stands for start + 2k
        for p in _SMALL_PRIMES:
            k = (-(start % p) * ((p + 1) // 2)) % p
            composite[k::p] = b"\x01" * len(range(k, _WINDOW, p))
        for k in range(_WINDOW):
            cand = start + 2 * k
            if composite[k] or any(cand % r == 1 for r in avoid):
                continue
            if _miller_rabin(cand, rng, 1) and _miller_rabin(cand, rng, 15):
                return cand


def rsa_key(rng: random.Random, bits: int, e: int, p: int | None = None) -> HostKey:
    avoid = (5, 7) if e == 35 else ()
    p = p or random_prime(bits // 2, rng, avoid)
    q = random_prime(bits // 2, rng, avoid)
    n = p * q
    return HostKey("ssh-rsa", w.ssh_host_key_json("ssh-rsa", w.ssh_rsa_wire(e, n), "rsa_public_key",
                                                  w.ssh_rsa_key_json(e, n)), bits, (p, q))


def ed25519_key(seed32: bytes) -> HostKey:
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed32).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return HostKey("ssh-ed25519", w.ssh_host_key_json("ssh-ed25519", w.ssh_ed25519_wire(public),
                                                      "ed25519_public_key", w.ssh_ed25519_key_json(public)), 256)


@functools.lru_cache(maxsize=4)
def _key_material(seed: int, n_unique: int) -> tuple:
    """(firmware key, NAT-box key, shared-prime pair, unique keys): a pure
    function of the seed, cached because the prime search is the slow part."""
    rng = random.Random(f"portcensus-synth/{seed}/keys")
    firmware = rsa_key(rng, 1024, 65537)
    nat_box = rsa_key(rng, 1024, 35)
    first = rsa_key(rng, 1024, 65537)
    second = rsa_key(rng, 1024, 65537, p=first.primes[0])
    unique = []
    for i in range(n_unique):
        if rng.random() < ED25519_SHARE:
            unique.append(ed25519_key(rng.getrandbits(256).to_bytes(32, "big")))
        else:
            bits = 2048 if i % 12 == 5 else 1024
            unique.append(rsa_key(rng, bits, 65537 if bits == 2048 or rng.random() < .5 else 35))
    return firmware, nat_box, (first, second), tuple(unique)


def assign_host_keys(seed: int, rng: random.Random, services: dict,
                     nat_net: ipaddress.IPv4Network) -> tuple[dict, dict]:
    """Pick the hosts zgrab2 grabs on port 22 and give each a host key.

    Returns ``{ip: HostKey}`` and the facts the truth reports."""
    candidates = [s.ip for s in services[(22, "tcp")] if not s.params.get("single_responder")]
    chosen = rng.sample(candidates, ZGRAB_SSH_HOSTS)
    firmware, nat_box, pair, unique = _key_material(seed, ZGRAB_SSH_HOSTS - SHARED_KEY_HOSTS - 2)
    out: dict = {}
    for ip in chosen[:SHARED_KEY_HOSTS]:
        out[ip] = firmware
    shared_prime_ips = chosen[SHARED_KEY_HOSTS:SHARED_KEY_HOSTS + 2]
    out[shared_prime_ips[0]], out[shared_prime_ips[1]] = pair
    for ip, key in zip(chosen[SHARED_KEY_HOSTS + 2:], unique):
        out[ip] = key
    nat_ips = [nat_net[10 + i].compressed for i in range(SINGLE_RESPONDER_HOSTS)]
    for ip in nat_ips:
        out[ip] = nat_box
    facts = {"shared_key_groups": [sorted(chosen[:SHARED_KEY_HOSTS]), sorted(nat_ips)],
             "shared_prime_hosts": sorted(shared_prime_ips),
             "shared_prime_fingerprints": sorted(k.fingerprint for k in pair)}
    return out, facts
