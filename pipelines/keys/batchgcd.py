"""Batch GCD over RSA moduli: which moduli share a prime with another one.

Method: Heninger, Durumeric, Wustrow, Halderman, "Mining Your Ps and Qs"
(USENIX Security 2012), after Bernstein's product and remainder trees. For
every *distinct* modulus n it computes g = gcd(n, product of all OTHER
distinct moduli):

* ``g == 1``      -- n shares no prime with any other modulus (normal);
* ``1 < g < n``   -- n shares one prime with another modulus (g is it);
* ``g == n``      -- both primes of n occur in other moduli.

Identical moduli would trivially give ``g == n`` (the same key served twice
is not a weak prime), so the input is deduplicated first and how often each
modulus occurred is reported separately as ``multiplicity``.

Bounded memory. A single product tree over N moduli of L bits holds
``log2(N)+1`` levels of N*L bits each (1M 1024-bit moduli: ~2.6 GB, twice
that while descending the squared remainder tree). Instead the sorted distinct
moduli are cut into k = ceil(N/m) chunks of ``chunk_size`` m; only the k
chunk products P_i stay in memory (N*L bits in total). For chunk j:

1. ``Q = prod(P_i for i != j) mod P_j`` -- k-1 multiply-and-reduce steps;
2. ``R = Q * P_j``; R agrees with (product of all distinct moduli) modulo n**2
   for every n in chunk j, because n divides P_j;
3. descend chunk j's own product tree with ``r = r_parent mod node**2``; at a
   leaf ``gcd(r // n, n)`` is gcd(n, product of all others).

Peak memory, with N distinct L-bit moduli, chunk size m and w processes::

    N*(L/8 + ~70)                the distinct moduli (gmpy2 mpz objects)
  + N*L/8                        the chunk products
  + w * m*L/8 * (log2(m) + ~12)  per worker: one chunk's product tree, its
                                 remainder level and GMP's multiplication
                                 scratch (the +12 is measured, not derived)

plus the caller's own copy of the input. Measured peak RSS with N = 100k,
L = 1024, one process: 310 MB at m = 65536, 136 MB at m = 16384. For
N = 1M, m = 65536 the bound is ~0.2 + 0.13 + w * 0.24 GB; measured with
w = 1: 830 MB peak (incl. a 200 MB input list), 520 s; w = 2: 398 s
(2-core VM shared with other jobs; ``python -m pipelines.keys.bench_gcd``).
Time is k chunk trees (~M(m) log m each) plus k**2 multiply-and-reduce steps
of chunk-product size, so the k**2 term grows with N/m: for N in the
millions keep k in the tens by raising m (memory grows linearly with m);
m >= N is the classic one-tree algorithm.

Arithmetic uses gmpy2 (GMP) when installed; without it plain Python ints give
identical results, only much slower on the large products.
"""
from __future__ import annotations

import dataclasses
import math
import multiprocessing
import operator
from typing import Iterable, Sequence

try:
    import gmpy2
except ImportError:  # the results are identical; only speed differs
    gmpy2 = None

_mpz = gmpy2.mpz if gmpy2 is not None else int
_gcd = gmpy2.gcd if gmpy2 is not None else math.gcd
HAVE_GMPY2 = gmpy2 is not None

DEFAULT_CHUNK_SIZE = 1 << 16


@dataclasses.dataclass(frozen=True)
class BatchGcdResult:
    """Outcome of ``batch_gcd``; position i of the first three fields is
    distinct modulus i (ascending), ``index`` maps input positions to them."""

    moduli: tuple          # distinct moduli, ascending (int, or gmpy2.mpz)
    gcds: tuple[int, ...]  # gcd(moduli[i], product of all other distinct moduli)
    multiplicity: tuple[int, ...]  # how many input positions held moduli[i]
    index: tuple[int, ...]  # input position -> position in ``moduli``

    @property
    def sharing_prime(self) -> int:
        """Distinct moduli sharing at least one prime with another modulus."""
        return sum(1 for g in self.gcds if g > 1)

    @property
    def both_primes_shared(self) -> int:
        """Distinct moduli whose two primes both occur in other moduli."""
        return sum(1 for g, n in zip(self.gcds, self.moduli, strict=True) if g == n)

    @property
    def duplicated(self) -> int:
        """Distinct moduli that occurred more than once in the input."""
        return sum(1 for c in self.multiplicity if c > 1)

    @property
    def duplicate_occurrences(self) -> int:
        """Input positions that repeat an earlier modulus (len(input) - len(moduli))."""
        return sum(c - 1 for c in self.multiplicity)

    def gcd_at(self, position: int) -> int:
        """The gcd for the modulus at input ``position``."""
        return self.gcds[self.index[position]]


def as_modulus(value, position: int = 0):
    """A modulus as an integer: big-endian bytes or an int. Raises ValueError
    for values below 2 (no RSA modulus; 0 would also break the tree)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        n = int.from_bytes(value, "big")
    else:
        try:
            n = operator.index(value)
        except TypeError:
            raise TypeError(f"modulus at position {position} is neither bytes nor int") from None
    if n < 2:
        raise ValueError(f"modulus at position {position} is {n}; moduli must be >= 2")
    return _mpz(n)


def product_tree(xs: Sequence) -> list[list]:
    """Levels bottom-up: ``levels[0] == xs``, ``levels[-1] == [prod(xs)]``.
    An odd last node is carried up unchanged."""
    levels = [list(xs)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [cur[i] * cur[i + 1] for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


def _product(xs: Sequence):
    """prod(xs) by a balanced tree (far faster than a left fold for big ints),
    keeping only one level alive."""
    level = list(xs) or [_mpz(1)]
    while len(level) > 1:
        nxt = [level[i] * level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _chunk_gcds(j: int, chunks: Sequence[Sequence], products: Sequence) -> list[int]:
    """gcd(n, product of all other distinct moduli) for each n of chunk j."""
    pj = products[j]
    q = _mpz(1) % pj
    for i, pi in enumerate(products):
        if i != j:
            q = q * (pi % pj) % pj
    levels = product_tree(chunks[j])
    rems = [q * pj]  # < pj**2 already, so the root needs no reduction
    levels.pop()
    while levels:
        # Pop as we descend: an upper level is dead once its children have
        # their remainders, which keeps one chunk's peak near tree + 1 level.
        level = levels.pop()
        rems = [rems[i >> 1] % (x * x) for i, x in enumerate(level)]
    return [int(_gcd(r // n, n)) for r, n in zip(rems, chunks[j], strict=True)]


# Handed to forked workers by inheritance instead of pickling the chunk
# products (N*L bits) to each task; set and cleared only by _parallel_gcds.
_FORK_STATE: tuple | None = None


def _fork_worker(j: int) -> list[int]:
    chunks, products = _FORK_STATE
    return _chunk_gcds(j, chunks, products)


def _parallel_gcds(chunks, products, processes: int) -> list[list[int]]:
    global _FORK_STATE
    _FORK_STATE = (chunks, products)
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(processes) as pool:
            # map keeps chunk order, so the result does not depend on scheduling.
            return pool.map(_fork_worker, range(len(chunks)), chunksize=1)
    finally:
        _FORK_STATE = None


def batch_gcd(moduli: Iterable, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
              processes: int = 1) -> BatchGcdResult:
    """Batch GCD of ``moduli`` (big-endian bytes or ints, each >= 2).

    >>> r = batch_gcd([3 * 5, 5 * 7, 11 * 13, 11 * 13])
    >>> [int(n) for n in r.moduli], r.gcds, r.multiplicity, r.index
    ([15, 35, 143], (5, 5, 1), (1, 1, 2), (0, 1, 2, 2))

    ``chunk_size`` bounds memory (see the module docstring); ``processes`` > 1
    runs chunks in forked worker processes (Linux), with identical results.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if processes < 1:
        raise ValueError("processes must be >= 1")
    values = [as_modulus(m, pos) for pos, m in enumerate(moduli)]
    order = sorted(range(len(values)), key=values.__getitem__)
    distinct: list = []
    multiplicity: list[int] = []
    index = [0] * len(values)
    for pos in order:
        v = values[pos]
        if distinct and distinct[-1] == v:
            multiplicity[-1] += 1
        else:
            distinct.append(v)
            multiplicity.append(1)
        index[pos] = len(distinct) - 1
    del values, order

    chunks = [distinct[i:i + chunk_size] for i in range(0, len(distinct), chunk_size)]
    products = [_product(c) for c in chunks]
    if processes > 1 and len(chunks) > 1 and "fork" in multiprocessing.get_all_start_methods():
        per_chunk = _parallel_gcds(chunks, products, min(processes, len(chunks)))
    else:
        per_chunk = [_chunk_gcds(j, chunks, products) for j in range(len(chunks))]
    gcds = tuple(g for part in per_chunk for g in part)
    return BatchGcdResult(tuple(distinct), gcds, tuple(multiplicity), tuple(index))
