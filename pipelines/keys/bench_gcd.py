"""Time batch GCD on synthetic RSA moduli and report its peak memory.

    python -m pipelines.keys.bench_gcd --moduli 100000 [--processes 2]
        [--chunk-size 65536] [--cache /tmp/moduli-100k.bin]

Moduli are real 1024-bit RSA-shaped numbers: p*q of two random 512-bit
primes (``gmpy2.next_prime`` from a random start with the top two bits set,
so every product has exactly 1024 bits). Random odd numbers would be cheaper
but share small factors all the time, so the bench could not check its own
answer; a small pool of primes reused across moduli would make nearly every
modulus "weak". Generating 2N primes costs ~1.5 ms each per core, so it runs
in a process pool and ``--cache`` keeps the moduli for later runs.

Planted, so the output is checked, not just timed: ``--shared K`` pairs of
moduli sharing one prime (2K moduli must come out with 1 < gcd < n) and
``--duplicates D`` repeated moduli (must come out as D duplicated moduli).

Memory: ``peak_rss_mb`` is this process's peak (input moduli, chunk products,
and the chunk trees when --processes 1); ``children_peak_rss_mb`` is the
largest single worker (prime generation or a batch GCD chunk worker).
Exit codes: 0 ok, 1 the planted counts were not found, 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import time

from pipelines.keys import batchgcd

PRIME_BITS = 512
_BLOCK = 1000  # primes per generation task; fixed so output does not depend on --processes


def _prime_block(args: tuple[int, int, int]) -> list[bytes]:
    """``count`` 512-bit primes from a random state fixed by (seed, block)."""
    import gmpy2
    seed, block, count = args
    state = gmpy2.random_state(seed * 1_000_003 + block)
    top = gmpy2.mpz(3) << (PRIME_BITS - 2)
    return [int(gmpy2.next_prime(gmpy2.mpz_urandomb(state, PRIME_BITS) | top)).to_bytes(PRIME_BITS // 8, "big")
            for _ in range(count)]


def make_moduli(n: int, shared: int, duplicates: int, seed: int, processes: int) -> list[bytes]:
    """n distinct 1024-bit moduli (pairs 2i, 2i+1 for i < shared share their
    first prime) followed by copies of the last ``duplicates`` of them."""
    if not 0 <= 2 * shared <= n or not 0 <= duplicates <= n:
        raise ValueError("need 2*shared <= moduli and duplicates <= moduli")
    need = 2 * n - shared
    tasks = [(seed, b, min(_BLOCK, need - b * _BLOCK)) for b in range((need + _BLOCK - 1) // _BLOCK)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        primes = [int.from_bytes(p, "big") for block in pool.map(_prime_block, tasks) for p in block]
    it = iter(primes)
    out: list[bytes] = []
    p = 0
    for i in range(n):
        # An odd member of a planted pair keeps the previous modulus's first prime.
        p = p if i < 2 * shared and i % 2 == 1 else next(it)
        out.append((p * next(it)).to_bytes(2 * PRIME_BITS // 8, "big"))
    return out + out[n - duplicates:]


def _load_or_make(args) -> tuple[list[bytes], float, bool]:
    size = 2 * PRIME_BITS // 8
    total = args.moduli + args.duplicates
    if args.cache and os.path.exists(args.cache) and os.path.getsize(args.cache) == total * size:
        with open(args.cache, "rb") as f:
            data = f.read()
        return [data[i:i + size] for i in range(0, len(data), size)], 0.0, True
    t0 = time.perf_counter()
    moduli = make_moduli(args.moduli, args.shared, args.duplicates, args.seed, args.processes)
    gen_s = time.perf_counter() - t0
    if args.cache:
        with open(args.cache, "wb") as f:
            f.write(b"".join(moduli))
    return moduli, gen_s, False


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.keys.bench_gcd", description=__doc__.split("\n")[0])
    ap.add_argument("--moduli", type=int, default=100_000, help="distinct moduli (default 100000)")
    ap.add_argument("--shared", type=int, default=10, help="planted pairs sharing a prime (default 10)")
    ap.add_argument("--duplicates", type=int, default=5, help="planted repeated moduli (default 5)")
    ap.add_argument("--chunk-size", type=int, default=batchgcd.DEFAULT_CHUNK_SIZE)
    ap.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", help="file to keep/reuse the generated moduli")
    args = ap.parse_args(argv)
    if not batchgcd.HAVE_GMPY2:
        print("bench_gcd: gmpy2 is not installed (pip install gmpy2)", file=sys.stderr)
        return 2
    try:
        moduli, gen_s, cached = _load_or_make(args)
    except ValueError as e:
        print(f"bench_gcd: {e}", file=sys.stderr)
        return 2
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    res = batchgcd.batch_gcd(moduli, chunk_size=args.chunk_size, processes=args.processes)
    gcd_s = time.perf_counter() - t0
    report = {
        "moduli": args.moduli, "duplicates": args.duplicates, "shared_pairs": args.shared,
        "chunk_size": args.chunk_size, "processes": args.processes,
        "generate_s": round(gen_s, 1), "cached": cached, "batch_gcd_s": round(gcd_s, 1),
        "rss_before_gcd_mb": rss_before,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "found_sharing_prime": res.sharing_prime, "found_duplicated": res.duplicated,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}",
    }
    print(json.dumps(report))
    ok = res.sharing_prime == 2 * args.shared and res.duplicated == args.duplicates
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
