"""Public Internet only: the IANA special-purpose address blocks, as data.

``pipelines/data/special_purpose.toml`` holds both IANA special-purpose
registries (IPv4 and IPv6; each block with its RFC, allocation date and the
registry's "Globally Reachable" column) plus the multicast ranges. An address
is decided by the *most specific* block containing it, so the globally
reachable blocks inside a non-reachable one (192.0.0.9/32 in 192.0.0.0/24,
AMT 2001:3::/32 in 2001::/23) stay in. Records from excluded space are
counted as ``excluded`` with reason ``special_purpose``: a scan of a lab
network or a spoofed reply must not be published as the Internet.

The lookup is vectorised: the blocks become sorted, disjoint intervals once,
and whole ``ip16`` columns are answered with ``numpy.searchsorted`` (the
opt-out list's machinery, pipelines/optout.py).
"""
from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import tomllib

import numpy as np
import pyarrow as pa

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "special_purpose.toml")


@dataclasses.dataclass(frozen=True)
class Block:
    cidr: str
    name: str
    rfc: str
    allocated: str
    globally_reachable: str      # "true", "false" or "n/a", as the registry says
    exclude: bool                # our decision (the registry's column inverted; see `why` for n/a)
    why: str = ""
    terminated: str = ""

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)


@functools.lru_cache(maxsize=None)
def registry(path: str = DATA) -> tuple[dict, tuple[Block, ...]]:
    """(registry facts, blocks) from the data file."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return data["registry"], tuple(Block(**b) for b in data["block"])


def excluded_ranges(blocks: tuple[Block, ...], version: int) -> list[tuple[int, int]]:
    """Sorted, disjoint inclusive integer ranges of the excluded addresses of
    one IP version: the blocks painted from least to most specific."""
    painted: list[tuple[int, int, bool]] = []
    nets = sorted(((b.network, b.exclude) for b in blocks if b.network.version == version),
                  key=lambda x: x[0].prefixlen)
    for net, excl in nets:
        a, z = int(net.network_address), int(net.broadcast_address)
        keep = []
        for s, e, x in painted:      # cut the new block out of what is painted already
            if e < a or s > z:
                keep.append((s, e, x))
                continue
            if s < a:
                keep.append((s, a - 1, x))
            if e > z:
                keep.append((z + 1, e, x))
        painted = sorted(keep + [(a, z, excl)])
    out: list[tuple[int, int]] = []
    for s, e, x in painted:
        if not x:
            continue
        if out and s <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


class SpecialPurpose:
    """``contains(ip16, ip_version)`` -> bool per row: inside excluded
    special-purpose space. Picklable (only the data path travels)."""

    def __init__(self, path: str = DATA):
        self.path = path
        self._set = None

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(**state)

    def _intervals(self):
        if self._set is None:
            from pipelines.optout import OptOutList
            _, blocks = registry(self.path)
            text = []
            for version in (4, 6):
                for s, e in excluded_ranges(blocks, version):
                    ip = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
                    text.append(f"{ip(s)}-{ip(e)}")
            self._set = OptOutList.from_bytes("\n".join(text).encode(), "special-purpose registry")
        return self._set

    def contains(self, ip16: pa.FixedSizeBinaryArray, ip_version) -> np.ndarray:
        return np.asarray(self._intervals().contains(ip16, ip_version), dtype=bool)

    def summary(self) -> dict:
        """Manifest facts: which registry transcription was applied."""
        facts, blocks = registry(self.path)
        return {**facts, "blocks": len(blocks), "excluded_blocks": sum(b.exclude for b in blocks)}


@functools.lru_cache(maxsize=None)
def default() -> SpecialPurpose:
    return SpecialPurpose()
