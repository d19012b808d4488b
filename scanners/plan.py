"""The weekly scan plan as data, rendered into exact scanner command lines.

Pure: ``parse_plan(toml_text)`` validates a plan (``scanners/scanplan.toml``)
and ``render(plan, week)`` returns, per shard, the commands to run. Nothing is
executed or sent here; the CLI (``portcensus plan``) prints them.

A rendered masscan command (shard 3 of 10, written with ``shlex.join``)::

    masscan 0.0.0.0/0 -p21,25,80,88,443,11211 --banners --rate 50000 \\
      --seed 2734... --shard 3/10 --excludefile /etc/portcensus/exclude.conf \\
      --wait 10 -oD - | gzip -c > /var/spool/portcensus/2026-W48/masscan-tcp-shard03of10.ndjson.gz

Flag syntax is checked against the real tools (masscan 1.3.2 ``--echo`` and
``-sL``, zmap 2.1.1 ``--dryrun``) by ``tests/unit/test_plan.py``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
import tomllib

TOOLS = ("masscan", "zmap", "zgrab2")
TRANSPORTS = ("tcp", "udp")
COMPRESS = {"gzip": (".gz", ["gzip", "-c"]), "zstd": (".zst", ["zstd", "-q", "-c"]), "none": ("", None)}
WEEK_RE = re.compile(r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
SHARD_RE = re.compile(r"-shard(\d+)of(\d+)\.")
MAX_SHARDS = 1000

# zmap 2.1.1 spells these with hyphens (3.x: underscores); the pipeline's zmap
# reader knows both. saddr first: ztee passes the first column to zgrab2.
ZMAP_FIELDS = {
    "tcp": "saddr,daddr,sport,dport,seqnum,acknum,window,ttl,classification,success,"
           "repeat,cooldown,timestamp-str,timestamp-ts,timestamp-us",
    "udp": "saddr,daddr,sport,dport,ttl,classification,success,repeat,cooldown,"
           "timestamp-str,timestamp-ts,timestamp-us,udp_pkt_size,data",
}
# Any explicit -O turns zmap's default filter off (RSTs and retransmissions
# would be written); this restores it: open ports, first answer only. The
# sport test matters for udp: zmap 2.1.1's udp module records ANY datagram
# that reaches the scanner's address as a success (seen in the netns test).
ZMAP_FILTER = "success = 1 && repeat = 0 && sport = {port}"


class PlanError(Exception):
    """The plan cannot be used; the message names the setting to fix."""


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    tool: str                 # masscan | zmap | zgrab2 (zgrab2 is fed by zmap)
    transport: str
    ports: tuple[int, ...]    # masscan: several; zmap/zgrab2: exactly one
    module: str | None = None           # zgrab2 module
    probe_module: str | None = None     # zmap -M
    probe_args: str | None = None       # zmap --probe-args
    banners: bool = True                # masscan --banners


@dataclasses.dataclass(frozen=True)
class Plan:
    targets: tuple[str, ...]
    exclude_file: str
    shards: int
    seed: int
    seed_per_week: bool
    rate: int
    masscan_wait: int
    zmap_cooldown: int
    compress: str
    spool: str
    network: dict
    jobs: tuple[Job, ...]


@dataclasses.dataclass(frozen=True)
class Output:
    """One file a command leaves in the spool, with what landing records."""
    name: str
    tool: str
    port_hint: int | None
    transport_hint: str


@dataclasses.dataclass(frozen=True)
class Command:
    job: str
    tool: str
    shard: int                # 1-based (masscan's numbering, and file names')
    shards: int
    seed: int
    argv: tuple[str, ...]     # the scanner (masscan/zmap), writing to stdout
    grab_argv: tuple[str, ...] | None   # zgrab2, reading IPs on stdin
    shell: str                # the full pipeline to run (bash, pipefail)
    census_shell: str         # zgrab2 jobs: the zmap part alone (no zgrab2)
    outputs: tuple[Output, ...]


# -- loading -------------------------------------------------------------------

def parse_plan(text: str) -> Plan:
    """Validate a TOML plan; raises PlanError with the offending key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"plan is not valid TOML: {exc}") from None
    scan = _table(raw, "scan")
    paths = raw.get("paths", {})
    net = raw.get("network", {})
    targets = scan.get("targets")
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise PlanError("scan.targets must be a non-empty list of ranges")
    exclude = scan.get("exclude_file")
    if not isinstance(exclude, str) or not exclude:
        # The opt-out list is not optional: scanning without it breaks promises.
        raise PlanError("scan.exclude_file is required (opt-outs + reserved ranges)")
    compress = scan.get("compress", "gzip")
    if compress not in COMPRESS:
        raise PlanError(f"scan.compress must be one of {sorted(COMPRESS)}, not {compress!r}")
    jobs = tuple(_job(j, i) for i, j in enumerate(raw.get("job", [])))
    if not jobs:
        raise PlanError("the plan has no [[job]]")
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise PlanError("job names must be unique")
    for key in ("interface", "source_ip", "masscan_source_ip", "router_mac"):
        if not isinstance(net.get(key, ""), str):
            raise PlanError(f"network.{key} must be a string")
    return Plan(
        targets=tuple(targets), exclude_file=exclude,
        shards=_int(scan, "shards", 1, MAX_SHARDS),
        seed=_int(scan, "seed", 0, 2**32 - 1),
        seed_per_week=bool(scan.get("seed_per_week", False)),
        rate=_int(scan, "rate", 1, 100_000_000),
        masscan_wait=_int(scan, "masscan_wait", 0, 3600, default=10),
        zmap_cooldown=_int(scan, "zmap_cooldown", 0, 3600, default=8),
        compress=compress, spool=str(paths.get("spool", "spool")),
        network={k: v for k, v in net.items() if v}, jobs=jobs)


def _table(raw: dict, key: str) -> dict:
    t = raw.get(key)
    if not isinstance(t, dict):
        raise PlanError(f"the plan needs a [{key}] table")
    return t


def _int(t: dict, key: str, lo: int, hi: int, default: int | None = None) -> int:
    v = t.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise PlanError(f"scan.{key} must be an integer in {lo}..{hi}, not {v!r}")
    return v


def _job(j: dict, i: int) -> Job:
    where = f"job #{i + 1} ({j.get('name', '?')})"
    name, tool, transport = j.get("name"), j.get("tool"), j.get("transport", "tcp")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PlanError(f"{where}: name must match {NAME_RE.pattern}")
    if tool not in TOOLS:
        raise PlanError(f"{where}: tool must be one of {TOOLS}")
    if transport not in TRANSPORTS:
        raise PlanError(f"{where}: transport must be tcp or udp")
    ports = j.get("ports") if tool == "masscan" else [j.get("port")]
    if not ports or not all(isinstance(p, int) and 1 <= p <= 65535 for p in ports):
        key = "ports (a list)" if tool == "masscan" else "port (one; zmap scans one port per run)"
        raise PlanError(f"{where}: {key} must be in 1..65535")
    module = j.get("module")
    if tool == "zgrab2" and not (isinstance(module, str) and NAME_RE.match(module)):
        raise PlanError(f"{where}: a zgrab2 job needs its module (e.g. ssh)")
    probe = j.get("probe_module")
    if tool != "masscan" and transport == "udp" and probe != "udp":
        raise PlanError(f"{where}: a udp zmap job needs probe_module = \"udp\" and probe_args")
    return Job(name=name, tool=tool, transport=transport, ports=tuple(ports), module=module,
               probe_module=probe, probe_args=j.get("probe_args"),
               banners=bool(j.get("banners", True)))


# -- rendering -----------------------------------------------------------------

def week_seed(plan: Plan, week: str) -> int:
    """The seed every shard of ``week`` uses (32 bits: fits masscan and zmap)."""
    if not plan.seed_per_week:
        return plan.seed
    digest = hashlib.sha256(f"{plan.seed}/{week}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def output_name(tool: str, job: Job, shard: int, shards: int, ext: str) -> str:
    width = max(2, len(str(shards)))
    return f"{tool}-{job.name}-shard{shard:0{width}d}of{shards:0{width}d}{ext}"


def render(plan: Plan, week: str, shards: int | None = None, spool: str | None = None
           ) -> list[list[Command]]:
    """Commands per shard: ``result[i]`` is shard ``i + 1``'s list, one per job."""
    if not WEEK_RE.match(week):
        raise PlanError(f"week {week!r} is not an ISO week like 2026-W48")
    n = plan.shards if shards is None else shards
    if not 1 <= n <= MAX_SHARDS:
        raise PlanError(f"shards must be 1..{MAX_SHARDS}, not {n}")
    seed = week_seed(plan, week)
    folder = f"{(spool or plan.spool).rstrip('/')}/{week}"
    return [[_command(plan, job, s, n, seed, folder) for job in plan.jobs]
            for s in range(1, n + 1)]


def _command(plan: Plan, job: Job, shard: int, n: int, seed: int, folder: str) -> Command:
    ext, zipper = COMPRESS[plan.compress]
    port = job.ports[0] if len(job.ports) == 1 else None
    if job.tool == "masscan":
        argv = masscan_argv(plan, job, shard, n, seed)
        out = Output(output_name("masscan", job, shard, n, ".ndjson" + ext), "masscan", port, job.transport)
        shell = _pipe([argv], zipper, f"{folder}/{out.name}")
        return Command(job.name, "masscan", shard, n, seed, argv, None, shell, shell, (out,))
    argv = zmap_argv(plan, job, shard, n, seed)
    census = Output(output_name("zmap", job, shard, n, ".csv" + ext), "zmap", port, job.transport)
    census_shell = _pipe([argv], zipper, f"{folder}/{census.name}")
    if job.tool == "zmap":
        return Command(job.name, "zmap", shard, n, seed, argv, None, census_shell, census_shell, (census,))
    # zmap -> ztee (keeps the CSV, passes column 1 = the IPs on) -> zgrab2.
    plain_csv = f"{folder}/{output_name('zmap', job, shard, n, '.csv')}"
    grab = ("zgrab2", "--output-file=-", job.module, f"--port={port}")
    gout = Output(output_name("zgrab2", job, shard, n, ".jsonl" + ext), "zgrab2", port, job.transport)
    shell = _pipe([argv, ("ztee", plain_csv), grab], zipper, f"{folder}/{gout.name}")
    if zipper:  # ztee writes plain text; compress it once the pipeline is done
        shell += " && " + shlex.join([zipper[0], "-f", plain_csv])
    return Command(job.name, "zgrab2", shard, n, seed, argv, grab, shell, census_shell, (census, gout))


def _pipe(stages: list, zipper: list | None, target: str) -> str:
    parts = [shlex.join(s) for s in stages]
    if zipper:
        parts.append(shlex.join(zipper))
    return " | ".join(parts) + " > " + shlex.quote(target)


def masscan_argv(plan: Plan, job: Job, shard: int, n: int, seed: int) -> tuple[str, ...]:
    prefix = "U:" if job.transport == "udp" else ""
    argv = ["masscan", *plan.targets, "-p" + ",".join(f"{prefix}{p}" for p in job.ports)]
    if job.banners:
        argv.append("--banners")
    argv += ["--rate", str(plan.rate), "--seed", str(seed), "--shard", f"{shard}/{n}",
             "--excludefile", plan.exclude_file]
    net = plan.network
    for key, flag in (("interface", "--adapter"), ("masscan_source_ip", "--source-ip"),
                      ("router_mac", "--router-mac")):
        if key in net:
            argv += [flag, net[key]]
    # -oD is ndjson (undocumented alias in 1.3.2); "-" is stdout (src/output.c).
    return tuple(argv + ["--wait", str(plan.masscan_wait), "-oD", "-"])


def zmap_argv(plan: Plan, job: Job, shard: int, n: int, seed: int) -> tuple[str, ...]:
    argv = ["zmap", "-p", str(job.ports[0])]
    if job.probe_module:
        argv += ["-M", job.probe_module]
    if job.probe_args:
        argv += [f"--probe-args={job.probe_args}"]
    argv += ["-r", str(plan.rate), "-e", str(seed), f"--shards={n}", f"--shard={shard - 1}",
             "-b", plan.exclude_file, "-c", str(plan.zmap_cooldown)]
    net = plan.network
    for key, flag in (("interface", "-i"), ("source_ip", "-S"), ("router_mac", "-G")):
        if key in net:
            argv += [flag, net[key]]
    argv += ["-O", "csv", "-f", ZMAP_FIELDS[job.transport],
             "--output-filter=" + ZMAP_FILTER.format(port=job.ports[0]), "-o", "-", "-q"]
    return tuple(argv + list(plan.targets))


def render_script(plan: Plan, week: str, shards: int | None = None, spool: str | None = None,
                  only_shard: int | None = None) -> str:
    """The commands as a bash script, one section per shard."""
    per_shard = render(plan, week, shards, spool)
    n = len(per_shard)
    if only_shard is not None and not 1 <= only_shard <= n:
        raise PlanError(f"--shard must be 1..{n}, not {only_shard}")
    seed = week_seed(plan, week)
    lines = [f"# portcensus scan plan for {week}: {n} shard(s), seed {seed} (same on every shard)",
             "set -euo pipefail",
             f"mkdir -p {shlex.quote((spool or plan.spool).rstrip('/') + '/' + week)}"]
    for i, cmds in enumerate(per_shard, start=1):
        if only_shard is not None and i != only_shard:
            continue
        lines.append(f"\n# shard {i} of {n} (masscan --shard {i}/{n}, zmap --shard={i - 1})")
        lines += [c.shell for c in cmds]
    return "\n".join(lines) + "\n"


def match_output(plan: Plan, week: str, filename: str, spool: str | None = None
                 ) -> tuple[Command, Output] | None:
    """The plan command and output a spool file name belongs to, if any."""
    base = filename.rsplit("/", 1)[-1]
    m = SHARD_RE.search(base)
    if not m:
        return None
    shard, n = int(m.group(1)), int(m.group(2))
    if not 1 <= shard <= n <= MAX_SHARDS:
        return None
    for job in plan.jobs:
        if job.name in base:
            folder = f"{(spool or plan.spool).rstrip('/')}/{week}"
            cmd = _command(plan, job, shard, n, week_seed(plan, week), folder)
            for out in cmd.outputs:
                if out.name == base:
                    return cmd, out
    return None
