"""Identification speed figures of ``make bench`` (docs/BENCHMARKS.md):

* ``zipf_rate`` -- distinct banners/s of ``identify_table`` on a Zipf mix of
  rows over several protocols. The mix is generated here from fixed banner
  shapes with random versions (not from the rule files), so the same seed
  gives the same rows whatever rules are installed: the figure compares
  engines and rule sets, before and after.
* ``rule_scaling`` -- the time per distinct subject with the packaged rules
  and with five times as many (each rule cloned four times with its literal
  renamed, so the clones never match): how the cost grows with the rules,
  through the literal prefilter (``first_match``) and, as the "before" figure,
  through the linear scan every rule in order (``first_match_linear``).

Run alone: ``python -m pipelines.bench_identify`` (prints one JSON line).
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import time

import numpy as np
import pyarrow as pa

# (port, banner type, shape): {v} is a random dotted version, {n} a random number.
SHAPES: tuple[tuple[int, str, str], ...] = (
    (80, "http.server", "nginx/{v}"),
    (80, "http.server", "Apache/{v} (Ubuntu)"),
    (80, "http.server", "Apache/{v} (CentOS) OpenSSL/{v}-fips PHP/{v}"),
    (80, "http.server", "Microsoft-IIS/{v}"),
    (80, "http.server", "Linux/{v} UPnP/1.0 MiniUPnPd/{v}"),
    (80, "http.server", "lighttpd/{v}"),
    (80, "http.server", "Jetty({v}.v20210629)"),
    (80, "http.server", "Unknown-Server/{v} (build {n})"),
    (80, "http.server", "Stronghold/{v} Apache/{v} (Unix) mod_ssl/{v}"),
    (80, "http.server", "GoAhead-Webs/{v}"),
    (22, "ssh", "SSH-2.0-OpenSSH_{v}p1 Debian-{n}+deb12u{n}"),
    (22, "ssh", "SSH-2.0-OpenSSH_{v}"),
    (22, "ssh", "SSH-2.0-dropbear_{n}.{n}"),
    (22, "ssh", "SSH-2.0-Custom_{v} host{n}"),
    (25, "smtp", "220 mail{n}.example.org ESMTP Postfix (Debian/GNU)"),
    (25, "smtp", "220 mx{n}.example.com ESMTP Exim {v} Mon, 01 Jan 2024 10:00:{n} +0000"),
    (21, "ftp", "220 ProFTPD {v} Server (Debian) [::ffff:10.0.{n}.1]"),
    (21, "ftp", "220 (vsFTPd {v})"),
    (3306, "mysql", "5.7.{n}-log"),
    (3306, "mysql", "5.5.5-10.{n}.{n}-MariaDB-0+deb10u1"),
)


def zipf_rows(n_rows: int, n_distinct: int, seed: int = 7, a: float = 1.3):
    """(port, transport, banners) Arrow arrays: n_rows rows drawn by Zipf(a)
    rank from n_distinct generated banners."""
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(n_distinct):
        port, btype, shape = SHAPES[i % len(SHAPES)]
        text = shape
        while "{v}" in text:
            text = text.replace("{v}", ".".join(str(x) for x in rng.integers(0, 30, 3)), 1)
        while "{n}" in text:
            text = text.replace("{n}", str(int(rng.integers(0, 100))), 1)
        pool.append((port, btype, text))
    ranks = np.minimum(rng.zipf(a, n_rows), n_distinct) - 1
    ports = pa.array([pool[r][0] for r in ranks.tolist()], pa.uint16())
    transport = pa.array(["tcp"] * n_rows, pa.string())
    banners = pa.array([[(pool[r][1], pool[r][2])] for r in ranks.tolist()],
                       pa.map_(pa.string(), pa.string()))
    return ports, transport, banners


def zipf_rate(n_rows: int = 200_000, n_distinct: int = 20_000, seed: int = 7) -> dict:
    from scanners.protocols.identify import identify_table

    port, transport, banners = zipf_rows(n_rows, n_distinct, seed)
    best = None
    for _ in range(3):                       # best of three: a shared machine
        start = time.perf_counter()
        out = identify_table(port, transport, banners)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    texts = pa.array([m[0][1] for m in banners.to_pylist()])
    distinct = len(set(zip(port.to_pylist(), texts.to_pylist())))
    named = out.num_rows - out.column("product").null_count
    return {"rows": n_rows, "distinct_banners": distinct, "seconds": round(best, 3),
            "distinct_per_s": round(distinct / best), "rows_per_s": round(n_rows / best),
            "rows_identified": named}


_LITERAL_START = re.compile(r"^((?:\(\?[aiLmsux]+\))?\^?)")


def _clones(rule, k: int):
    """k copies of a rule whose pattern can never match what the original
    matches (a literal 'Zq<k>' is put in front), under new ids."""
    for i in range(k):
        prefix = _LITERAL_START.match(rule.pattern.pattern).group(1)
        source = prefix + f"Zq{i}" + rule.pattern.pattern[len(prefix):]
        yield dataclasses.replace(rule, id=f"{rule.id}~{i}", pattern=re.compile(source))


def rule_scaling(protocols_: tuple[str, ...] = ("http", "ssh"), n_distinct: int = 4000,
                 factor: int = 5) -> dict:
    """Seconds per distinct subject with the packaged rules and with
    ``factor`` times as many (clones interleaved after each original)."""
    from scanners import protocols
    from scanners.protocols.rules import RuleSet, load_rules

    port, _t, banners = zipf_rows(n_distinct, n_distinct, seed=11, a=1.01)
    out = {}
    for name in protocols_:
        btype = protocols.info(name).banner_types[0]
        mod = protocols.module(name)
        subjects = sorted({mod.parse(m[0][1], m[0][0]).subject
                           for m in banners.to_pylist() if m[0][0] == btype})
        base = load_rules(name)
        rules = []
        for r in base.rules:
            rules.append(r)
            rules.extend(_clones(r, factor - 1))
        big = _ruleset(RuleSet, name, tuple(rules))
        def best_of_3(fn) -> float:
            best = None
            for _ in range(3):
                start = time.perf_counter()
                for s in subjects:
                    fn(s)
                took = time.perf_counter() - start
                best = took if best is None else min(best, took)
            return best / max(len(subjects), 1)

        # first_match goes through the prefilter; first_match_linear is the
        # engine before it (every rule in order): the "before" figure.
        indexed = [best_of_3(rs.first_match) for rs in (base, big)]
        linear = [best_of_3(rs.first_match_linear) for rs in (base, big)]
        out[name] = {"rules": len(base.rules), "rules_x": len(rules), "subjects": len(subjects),
                     "us_per_subject": round(indexed[0] * 1e6, 2),
                     "us_per_subject_x": round(indexed[1] * 1e6, 2),
                     "ratio": round(indexed[1] / indexed[0], 2),
                     "linear_us_per_subject": round(linear[0] * 1e6, 2),
                     "linear_us_per_subject_x": round(linear[1] * 1e6, 2),
                     "linear_ratio": round(linear[1] / linear[0], 2)}
    return out


def _ruleset(cls, name, rules):
    try:
        return cls(name, rules)
    except TypeError:                        # an engine whose RuleSet takes more
        return cls.build(name, rules)


def main() -> int:
    print(json.dumps({"zipf": zipf_rate(), "scaling": rule_scaling()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
