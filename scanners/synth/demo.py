"""The demo week: the raw files an operator would have after one week of
scanning, in the tools' real formats, plus the truth about them.

``write_demo_week(raw_dir, week, seed)`` writes ``<raw_dir>/<week>/`` and
returns (and writes to ``<raw_dir>/<week>.truth.json``, outside the week
folder) what a correct pipeline must make of it: distinct observations per
port and status, records per file, records lost to the truncated file,
duplicates and overlaps it must merge, and every host name, e-mail address
and IP literal that appears inside a banner. About 28k observations, so a
pipeline run takes seconds.

The week's damage is deliberate: one gzip file cut mid-stream (its tail and
one half record are lost), one ``-oL`` file without ``# end`` (all records
intact), retransmitted duplicate lines, shards that overlap, and a zgrab2
scan that timed out on hosts masscan had seen open (open wins).
"""
from __future__ import annotations

import bisect
import dataclasses
import datetime
import gzip
import ipaddress
import json
import os
import random
import re
import zlib

from scanners.synth import content as c
from scanners.synth import population as P
from scanners.synth import writers as w

HOUR = 3600


@dataclasses.dataclass
class RawFile:
    name: str
    tool: str
    fmt: str
    data: bytes                # decompressed content
    effects: list              # per record, file order: (ip, port, transport, open|closed|no_response)
    compress: bool = False
    footer: bool = True
    duplicates: int = 0
    line_ends: list | None = None   # one-record-per-line formats: end offset of each record
    truncate: bool = False


def _week_start(week: str) -> int:
    year, num = week.split("-W")
    day = datetime.date.fromisocalendar(int(year), int(num), 1)
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp())


def _silent(ip: str, port: int, ttl: int = 57) -> P.Service:
    return P.Service(ip, port, "tcp", "silent", ttl, {})


def _masscan_records(rng: random.Random, items, start: int, duration: int, banners: bool = True,
                     dup_rate: float = 0.0) -> tuple[list, int]:
    """Time-ordered masscan records: a status record when the SYN-ACK came,
    banner records 5-8 s later; ``dup_rate`` of status records appear twice
    (a retransmitted SYN-ACK that masscan's dedup table missed)."""
    events, dups = [], 0
    for svc in items:
        t = start + rng.randrange(duration)
        status = w.MasscanRecord(svc.ip, svc.port, svc.transport, t, status="open",
                                 reason="syn-ack", ttl=svc.ttl)
        events.append((t, len(events), status))
        if rng.random() < dup_rate:
            events.append((t, len(events), status))
            dups += 1
        if banners:
            bt = t + rng.randrange(5, 9)
            for name, data in c.masscan_banners(svc.kind, svc.params, bt):
                events.append((bt, len(events), w.MasscanRecord(svc.ip, svc.port, svc.transport, bt,
                                                                service=name, banner=data, ttl=svc.ttl)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events], dups


def _effects(records) -> list:
    return [(r.ip, r.port, r.proto, "open" if r.is_banner or r.status == "open" else "closed") for r in records]


def _ndjson_file(name: str, records, dups: int, truncate: bool = False) -> RawFile:
    lines = [w.masscan_ndjson_line(r) for r in records]
    ends, pos = [], 0
    for line in lines:
        pos += len(line)
        ends.append(pos)
    return RawFile(name, "masscan", "masscan-ndjson", b"".join(lines), _effects(records), True,
                   duplicates=dups, line_ends=ends, truncate=truncate)


def _shards(rng: random.Random, items, n: int) -> list[list]:
    out = [[] for _ in range(n)]
    for it in items:
        out[rng.randrange(n)].append(it)
    return out


def _masscan_files(rng: random.Random, pop: P.Population, t0: int) -> list[RawFile]:
    s = pop.services
    files = []
    # Port 22, three shards. masscan lost a few hosts (zgrab2 still saw them);
    # shard 3 was restarted over part of shard 1's range (overlap); shard 2's
    # gzip was cut mid-stream when its disk filled up.
    zgrab_only = set(sorted(pop.ssh_keys)[:12]) - {ip for g in pop.key_facts["shared_key_groups"] for ip in g}
    p22 = [x for x in s[(22, "tcp")] if x.ip not in zgrab_only] + [_silent(ip, 22) for ip in pop.tarpits]
    shards = _shards(rng, p22, 3)
    shards[2] += rng.sample(shards[0], 120)
    for i, items in enumerate(shards, 1):
        recs, dups = _masscan_records(rng, items, t0 + 2 * HOUR, HOUR, dup_rate=0.01)
        files.append(_ndjson_file(f"masscan-p22-shard{i}of3.ndjson.gz", recs, dups, truncate=i == 2))
    # Ports 80 and 443 in one run, two shards.
    web = s[(80, "tcp")] + s[(443, "tcp")] + [_silent(ip, p) for ip in pop.tarpits for p in (80, 443)]
    for i, items in enumerate(_shards(rng, web, 2), 1):
        recs, dups = _masscan_records(rng, items, t0 + 14 * HOUR, 2 * HOUR, dup_rate=0.01)
        files.append(_ndjson_file(f"masscan-p80-p443-shard{i}of2.ndjson.gz", recs, dups))
    # FTP as -oL; masscan was killed (kill -9), so no "# end".
    recs, _ = _masscan_records(rng, s[(21, "tcp")], t0 + 27 * HOUR, HOUR)
    files.append(RawFile("masscan-p21.list", "masscan", "masscan-list", w.masscan_ol(recs, footer=False),
                         _effects(recs), footer=False))
    # SMTP as -oJ.
    recs, _ = _masscan_records(rng, s[(25, "tcp")], t0 + 33 * HOUR, HOUR)
    files.append(RawFile("masscan-p25.json", "masscan", "masscan-json", w.masscan_oj(recs), _effects(recs)))
    # Kerberos, LDAP (no banner grabber) and memcached as -oX.
    start = t0 + 49 * HOUR
    recs, _ = _masscan_records(rng, s[(88, "tcp")] + s[(389, "tcp")] + s[(11211, "tcp")], start, HOUR)
    files.append(RawFile("masscan-p88-p389-p11211.xml", "masscan", "masscan-xml",
                         w.masscan_ox(recs, start, start + HOUR + 10), _effects(recs)))
    # A full 1-1024 sweep of a sample: the tarpits answer on every port.
    sample_hosts = set(rng.sample(sorted({x.ip for x in s[(80, "tcp")]}), 120))
    items = [x for (port, proto), lst in s.items() if proto == "tcp" and port <= 1024
             for x in lst if x.ip in sample_hosts]
    items += [_silent(ip, port) for ip in pop.tarpits for port in range(1, 1025)]
    recs, dups = _masscan_records(rng, items, t0 + 123 * HOUR, 3 * HOUR, banners=False, dup_rate=0.005)
    files.append(_ndjson_file("masscan-p1-1024-sample.ndjson.gz", recs, dups))
    return files


def _zmap_file(rng: random.Random, pop: P.Population, name: str, port: int, proto: str,
               start: int, rst: int) -> RawFile:
    """zmap -O csv -f ... without --output-filter: SYN-ACKs, RSTs (tcp) and a
    few repeat=1 re-sent SYN-ACKs / second UDP replies."""
    udp = proto == "udp"
    opens = [x for x in pop.services[(port, proto)] if ":" not in x.ip]   # zmap 2.1.1 is IPv4-only
    rows, dup = [], 0
    for svc in opens + [None] * rst:
        ip = svc.ip if svc else pop.pool.v4()
        ts = (start + rng.randrange(45 * 60)) * 1_000_000 + rng.randrange(1_000_000)
        row = {"saddr": ip, "daddr": P.SCANNER_IP, "sport": port, "dport": rng.randrange(32768, 61001),
               "ttl": svc.ttl if svc else rng.randrange(40, 250), "repeat": 0, "cooldown": 0}
        if udp:
            row.update(udp_pkt_size=svc.params["size"], classification="udp", success=1)
        elif svc:
            row.update(seqnum=rng.getrandbits(32), acknum=rng.getrandbits(32), classification="synack",
                       success=1, window=rng.choice((5840, 14600, 65535, 8192, 16384, 4380)),
                       ipid=rng.choice((0, rng.getrandbits(16))))
        else:
            row.update(seqnum=0, acknum=rng.getrandbits(32), window=0, ipid=0, classification="rst", success=0)
        row.update(w.zmap_timestamps(ts))
        rows.append((ts, row, "open" if svc else "closed"))
        if svc and rng.random() < 0.03:
            again = dict(row, repeat=1, dport=row["dport"] + 1)
            again.update(w.zmap_timestamps(ts + rng.randrange(1000, 900_000)))
            rows.append((ts + 1, again, "open"))
            dup += 1
    rows.sort(key=lambda r: r[0])
    end = rows[-1][0] // 1_000_000 - 8     # the last 8 s are zmap's cooldown
    for ts, row, _ in rows:
        if ts // 1_000_000 > end:
            row["cooldown"] = 1
    fields = w.ZMAP_UDP_FIELDS if udp else w.ZMAP_TCP_FIELDS
    data = w.zmap_csv(fields, [r[1] for r in rows])
    return RawFile(name, "zmap", "zmap-csv", data,
                   [(r[1]["saddr"], port, proto, r[2]) for r in rows], duplicates=dup)


_OPENSSH_KEX = {"kex_algorithms": ["ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
                                   "diffie-hellman-group-exchange-sha256", "diffie-hellman-group-exchange-sha1",
                                   "diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1"],
                "client_to_server_ciphers": ["aes128-ctr", "aes192-ctr", "aes256-ctr", "arcfour256", "arcfour128",
                                             "aes128-cbc", "3des-cbc", "blowfish-cbc", "cast128-cbc", "aes192-cbc",
                                             "aes256-cbc", "arcfour", "rijndael-cbc@lysator.liu.se"],
                "client_to_server_macs": ["hmac-md5", "hmac-sha1", "umac-64@openssh.com", "hmac-sha2-256",
                                          "hmac-sha2-512", "hmac-ripemd160", "hmac-sha1-96", "hmac-md5-96"],
                "client_to_server_compression": ["none", "zlib@openssh.com"]}
_DROPBEAR_KEX = {"kex_algorithms": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1"],
                 "client_to_server_ciphers": ["aes128-ctr", "3des-ctr", "aes256-ctr", "aes128-cbc", "3des-cbc",
                                              "aes256-cbc", "twofish256-cbc", "twofish-cbc", "twofish128-cbc"],
                 "client_to_server_macs": ["hmac-sha1-96", "hmac-sha1", "hmac-md5"],
                 "client_to_server_compression": ["zlib@openssh.com", "zlib", "none"]}


def _ssh_result(rng: random.Random, ident: str, key) -> dict:
    """zgrab2's ssh result for a server; OpenSSH before 5.7 offers no ECDH,
    before 5.9 no SHA-2 MACs."""
    prof = dict(_OPENSSH_KEX if "OpenSSH" in ident else _DROPBEAR_KEX)
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", ident)
    if m and (int(m[1]), int(m[2])) < (5, 7):
        prof["kex_algorithms"] = [k for k in prof["kex_algorithms"] if not k.startswith("ecdh")]
    if m and (int(m[1]), int(m[2])) < (5, 9):
        prof["client_to_server_macs"] = [k for k in prof["client_to_server_macs"] if "sha2" not in k]
    kexinit = {"kex_algorithms": prof["kex_algorithms"],
               "host_key_algorithms": ["ssh-rsa", "ssh-dss"] if key.algorithm == "ssh-rsa" else ["ssh-ed25519", "ssh-rsa"]}
    for name in ("ciphers", "macs", "compression"):
        kexinit[f"client_to_server_{name}"] = prof[f"client_to_server_{name}"]
        kexinit[f"server_to_client_{name}"] = list(prof[f"client_to_server_{name}"])
    selection = {"kex": prof["kex_algorithms"][0], "cipher": "aes128-ctr",
                 "mac": "hmac-sha2-256" if "hmac-sha2-256" in prof["client_to_server_macs"] else "hmac-sha1"}
    return w.zgrab2_ssh_result(ident, rng.getrandbits(128).to_bytes(16, "big"), kexinit, selection, key.json)


def _zgrab2_file(rng: random.Random, name: str, module: str, port: int, targets, start: int,
                 fail_rate: float, compress: bool = False) -> RawFile:
    """zgrab2 output in completion order. A target whose result is None, and
    ``fail_rate`` of the others, failed: mostly ``connection-timeout`` (the
    dial timed out: no response), sometimes ``io-timeout`` (connected, then
    the read timed out: the port is open). IPv6 targets only dial-fail here."""
    lines = []
    for svc, result in targets:
        ts = start + rng.randrange(2 * HOUR)
        if result is not None and rng.random() >= fail_rate:
            line = w.zgrab2_line(svc.ip, module, "success", ts, result=result)
            lines.append((ts, line, (svc.ip, port, "tcp", "open")))
        elif result is not None and ":" not in svc.ip and rng.random() < 0.3:
            err = f"read tcp {P.SCANNER_IP}:{rng.randrange(32768, 61001)}->{svc.ip}:{port}: i/o timeout"
            line = w.zgrab2_line(svc.ip, module, "io-timeout", ts, error=err)
            lines.append((ts, line, (svc.ip, port, "tcp", "open")))
        else:
            host = f"[{svc.ip}]" if ":" in svc.ip else svc.ip
            line = w.zgrab2_line(svc.ip, module, "connection-timeout", ts,
                                 error=f"dial tcp {host}:{port}: i/o timeout")
            lines.append((ts, line, (svc.ip, port, "tcp", "no_response")))
    lines.sort(key=lambda x: x[0])
    return RawFile(name, "zgrab2", "zgrab2-jsonl", b"".join(x[1] for x in lines), [x[2] for x in lines], compress)


def _zgrab2_files(rng: random.Random, pop: P.Population, t0: int) -> list[RawFile]:
    s = pop.services
    by_ip = {x.ip: x for x in s[(22, "tcp")]}
    ssh = [(by_ip[ip], _ssh_result(rng, by_ip[ip].params["ident"], key)) for ip, key in pop.ssh_keys.items()]
    # zgrab2 timed out on some hosts masscan had seen open on 22: open must win.
    ssh += [(x, None) for x in rng.sample([x for x in s[(22, "tcp")] if x.ip not in pop.ssh_keys
                                           and not x.params.get("single_responder")], 10)]
    files = [_zgrab2_file(rng, "zgrab2-ssh-p22.jsonl", "ssh", 22, ssh, t0 + 87 * HOUR, 0.0)]
    db = (("mysql", 3306, lambda p: w.zgrab2_mysql_result(p["version"], p["connection_id"], p["scramble"])),
          ("mssql", 1433, lambda p: w.zgrab2_mssql_result(*p["version"], p["encrypt"])),
          ("postgres", 5432, lambda p: w.zgrab2_postgres_result(*p["lines"])))
    for i, (module, port, make) in enumerate(db):
        gz = module == "postgres"
        files.append(_zgrab2_file(rng, f"zgrab2-{module}-p{port}.jsonl" + (".gz" if gz else ""), module, port,
                                  [(x, make(x.params)) for x in s[(port, "tcp")]],
                                  t0 + (98 + 4 * i) * HOUR, 0.05, compress=gz))
    return files


def _gzip(data: bytes) -> bytes:
    # mtime=0 and no file name in the header: same input, same bytes.
    return gzip.compress(data, compresslevel=6, mtime=0)


def _cut_gzip(blob: bytes, line_ends: list) -> tuple[bytes, int, int]:
    """Cut a gzip stream so that what still decompresses ends inside a record,
    never on a record boundary. Returns (cut bytes, recoverable decompressed
    bytes, complete records); zlib yields the same prefix the pipeline's
    decompressor will see."""
    cut = len(blob) * 3 // 5
    while True:
        got = len(zlib.decompressobj(wbits=31).decompress(blob[:cut]))
        done = bisect.bisect_right(line_ends, got)
        prev = line_ends[done - 1] if done else 0
        if done < len(line_ends) and got - prev >= 2 and line_ends[done] - got >= 3:
            return blob[:cut], got, done
        cut += 1


def next_weeks(week: str, n: int) -> list[str]:
    """``week`` and the n-1 ISO weeks after it: next_weeks("2013-W52", 2) == ["2013-W52", "2014-W01"]."""
    year, num = week.split("-W")
    monday = datetime.date.fromisocalendar(int(year), int(num), 1)
    out = []
    for i in range(n):
        y, w, _ = (monday + datetime.timedelta(weeks=i)).isocalendar()
        out.append(f"{y}-W{w:02d}")
    return out


def write_demo_weeks(raw_dir: str, first: str = "2013-W37", weeks: int = 4, seed: int = 2013) -> list[dict]:
    """``weeks`` consecutive demo weeks of ONE population, aged a week at a
    time (scanners/synth/ageing.py): churn, upgrades, a new release adopted.
    The first equals ``write_demo_week(raw_dir, first, seed)``."""
    return [write_demo_week(raw_dir, week, seed, age) for age, week in enumerate(next_weeks(first, weeks))]


def write_demo_week(raw_dir: str, week: str = "2013-W37", seed: int = 2013, age: int = 0) -> dict:
    """Write the demo week's raw files to ``<raw_dir>/<week>/`` and its truth
    to ``<raw_dir>/<week>.truth.json``; return the truth dict. Deterministic:
    the same ``week``, ``seed`` and ``age`` (weeks the population has aged
    since the first demo week) give byte-identical files."""
    t0 = _week_start(week)
    pop = P.build_population(seed, age=age)
    rng = random.Random(f"portcensus-synth/{seed}/{week}/demo")
    files = _masscan_files(rng, pop, t0)
    files.append(_zmap_file(rng, pop, "zmap-p1723.csv", 1723, "tcp", t0 + 60 * HOUR, rst=1500))
    files.append(_zmap_file(rng, pop, "zmap-udp500-ike.csv", 500, "udp", t0 + 76 * HOUR, rst=0))
    files += _zgrab2_files(rng, pop, t0)

    week_dir = os.path.join(raw_dir, week)
    os.makedirs(week_dir, exist_ok=True)
    per_file, seen, where = {}, {}, {}
    for f in files:
        blob = _gzip(f.data) if f.compress else f.data
        complete, info = len(f.effects), {}
        if f.truncate:
            blob, recoverable, complete = _cut_gzip(blob, f.line_ends)
            info = {"recoverable_bytes": recoverable, "expected_damage": ["compression_truncated"]}
        elif not f.footer:
            info = {"expected_damage": ["missing_footer"]}
        with open(os.path.join(week_dir, f.name), "wb") as fh:
            fh.write(blob)
        for ip, port, proto, effect in f.effects[:complete]:
            seen.setdefault((ip, port, proto), set()).add(effect)
            where.setdefault((ip, port, proto), set()).add(f.name)
        per_file[f.name] = {
            "tool": f.tool, "format": f.fmt, "compression": "gzip" if f.compress else "none",
            "bytes": len(blob), "decompressed_bytes": len(f.data), "footer": f.footer,
            "records_written": len(f.effects), "records_complete": complete,
            "partial_records": int(f.truncate), "records_lost_to_truncation": len(f.effects) - complete,
            "duplicates_injected": f.duplicates,
            "expected_damage": [], **info}
    truth = dict(_truth(week, seed, pop, per_file, seen, where), age=age)
    with open(os.path.join(raw_dir, f"{week}.truth.json"), "w", encoding="utf-8") as fh:
        json.dump(truth, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return truth


def _in_network(seen: dict, cidr: str) -> dict:
    net = ipaddress.ip_network(cidr)
    out: dict = {}
    for (ip, port, proto), effects in seen.items():
        if "open" in effects and ":" not in ip and ipaddress.ip_address(ip) in net:
            out[f"{port}/{proto}"] = out.get(f"{port}/{proto}", 0) + 1
    return dict(sorted(out.items()))


def _truth(week: str, seed: int, pop: P.Population, per_file: dict, seen: dict, where: dict) -> dict:
    by_port: dict = {}
    for (ip, port, proto), effects in seen.items():
        status = "open" if "open" in effects else "closed" if "closed" in effects else "no_response"
        counts = by_port.setdefault((port, proto), {"open": 0, "closed": 0, "no_response": 0})
        counts[status] += 1
    observations = {f"{p}/{t}": by_port[(p, t)] for p, t in sorted(by_port)}
    names, emails, ips = set(), set(), set()
    for lst in pop.services.values():
        for svc in lst:
            names.update(svc.params.get("names", ()))
            emails.update(svc.params.get("emails", ()))
            ips.update(svc.params.get("ips", ()))
    keys = pop.ssh_keys
    groups = [{"hosts": g, "fingerprint": keys[g[0]].fingerprint} for g in pop.key_facts["shared_key_groups"]]
    algos: dict = {}
    for k in keys.values():
        algos[f"{k.algorithm}-{k.bits}"] = algos.get(f"{k.algorithm}-{k.bits}", 0) + 1
    return {
        "week": week, "seed": seed, "scanner_ip": P.SCANNER_IP,
        "files": per_file,
        "observations": observations,
        "open_observations": {k: v["open"] for k, v in observations.items()},
        "total_observations": len(seen),
        "total_open_observations": sum(v["open"] for v in observations.values()),
        "ipv6_observations": sum(1 for k in seen if ":" in k[0]),
        "records_written": sum(f["records_written"] for f in per_file.values()),
        "records_lost_to_truncation": sum(f["records_lost_to_truncation"] for f in per_file.values()),
        "duplicates_injected": sum(f["duplicates_injected"] for f in per_file.values()),
        "observations_in_several_files": sum(1 for v in where.values() if len(v) > 1),
        "banner_hostnames": sorted(names), "banner_emails": sorted(emails), "banner_ips": sorted(ips),
        "single_responder": {"network": pop.single_responder, "ports": [22, 80], "addresses": 256,
                             "open_observations": _in_network(seen, pop.single_responder)},
        "many_port_hosts": sorted(pop.tarpits),
        "ssh_keys": {"hosts_with_keys": len(keys),
                     "distinct_keys": len({k.fingerprint for k in keys.values()}),
                     "by_algorithm": dict(sorted(algos.items())),
                     "shared_key_groups": groups,
                     "shared_key_hosts": sum(len(g["hosts"]) for g in groups),
                     "shared_prime_hosts": pop.key_facts["shared_prime_hosts"],
                     "shared_prime_host_count": len(pop.key_facts["shared_prime_hosts"])},
    }
