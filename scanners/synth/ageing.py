"""One synthetic population, aged week by week, so the demo's trends move
the way a real census's do: hosts churn, software is upgraded, and a new
release is adopted after it ships.

``age_services(services, pool, seed, weeks, draw_host)`` changes the
population of the first demo week (``build_population``'s services, before
single responders, tarpits and host keys are added) in place, one week at a
time, each week with its own seeded ``random.Random``; ``weeks == 0`` changes
nothing, so the first demo week stays byte-identical. Per week:

* churn: about 2.5% of hosts leave (every service of the address), and about
  as many new ones arrive (fresh addresses, drawn like the first week's);
* upgrades: 6% of the hosts on an SSH version in ``SSH_UPGRADES`` move to its
  successor (the patched package or the next release);
* a new release: OpenSSH 6.3 (released 13 Sep 2013) is adopted by 10% of the
  remaining OpenSSH 6.x / 5.9 hosts each week from the week after it ships,
  and by new hosts in proportion;
* TLS: 4% of TLS 1.0 servers move to TLS 1.2 with an ECDHE-GCM suite.
"""
from __future__ import annotations

import random

NEW_RELEASE = "SSH-2.0-OpenSSH_6.3"
# The week a host can first run it (OpenSSH 6.3: 2013-09-13, the Friday of 2013-W37).
NEW_RELEASE_AGE = 1
SSH_UPGRADES = {
    "SSH-2.0-OpenSSH_4.3": "SSH-2.0-OpenSSH_5.3",
    "SSH-2.0-OpenSSH_5.1p1 Debian-5": "SSH-2.0-OpenSSH_5.5p1 Debian-6+squeeze3",
    "SSH-2.0-OpenSSH_5.5p1 Debian-6+squeeze2": "SSH-2.0-OpenSSH_5.5p1 Debian-6+squeeze3",
    "SSH-2.0-OpenSSH_5.9p1 Debian-5ubuntu1": "SSH-2.0-OpenSSH_5.9p1 Debian-5ubuntu1.1",
    "SSH-2.0-OpenSSH_5.3p1 Debian-3ubuntu7": "SSH-2.0-OpenSSH_5.9p1 Debian-5ubuntu1.1",
    "SSH-2.0-OpenSSH_6.1p1 Debian-4": "SSH-2.0-OpenSSH_6.2p2 Ubuntu-6",
    "SSH-2.0-dropbear_0.46": "SSH-2.0-dropbear_2012.55",
}
ADOPTERS = ("SSH-2.0-OpenSSH_6.0", "SSH-2.0-OpenSSH_6.1", "SSH-2.0-OpenSSH_6.2", "SSH-2.0-OpenSSH_5.9")
CHURN = 0.025
UPGRADE = 0.06
ADOPT = 0.10
TLS_UPGRADE = 0.04


def _week(services: dict, pool, rng: random.Random, age: int, draw_host) -> None:
    # Churn: the same share of hosts leaves and arrives.
    hosts = sorted({s.ip for lst in services.values() for s in lst})
    leaving = set(rng.sample(hosts, int(len(hosts) * CHURN)))
    for key in list(services):
        services[key] = [s for s in services[key] if s.ip not in leaving]
    old_rng, pool.rng = pool.rng, rng       # new addresses from this week's draws
    try:
        for _ in range(len(leaving)):
            draw_host(rng, pool, services)
    finally:
        pool.rng = old_rng
    # Upgrades and adoption of the new release, in draw order (deterministic).
    for svc in services.get((22, "tcp"), []):
        ident = svc.params.get("ident", "")
        if age >= NEW_RELEASE_AGE and ident.startswith(ADOPTERS) and rng.random() < ADOPT:
            svc.params = dict(svc.params, ident=NEW_RELEASE)
        elif ident in SSH_UPGRADES and rng.random() < UPGRADE:
            svc.params = dict(svc.params, ident=SSH_UPGRADES[ident])
    for svc in services.get((443, "tcp"), []):
        if svc.params.get("version") == "TLS/1.0" and rng.random() < TLS_UPGRADE:
            svc.params = dict(svc.params, version="TLS/1.2", cipher=0xc02f)


def age_services(services: dict, pool, seed: int, weeks: int, draw_host) -> None:
    """Age the population ``weeks`` weeks (see the module docstring)."""
    for age in range(1, weeks + 1):
        _week(services, pool, random.Random(f"portcensus-synth/{seed}/age/{age}"), age, draw_host)
