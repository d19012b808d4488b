"""``portcensus plan`` and ``portcensus land``: the scan side of the CLI.

Wired into ``pipelines/cli.py`` with ``add_parsers(sub)`` and ``dispatch(args)``.
The library (``scanners.plan``, ``pipelines.land``) raises; this module turns
that into one-line messages and exit codes: 0 ok, 1 failed (a file refused),
2 usage (bad week, plan or arguments).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_PLAN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "scanners", "scanplan.toml")

PLAN_EPILOG = """\
The output is a bash script (set -o pipefail), one section per shard: run
section K on scan machine K. Every shard of a week shares one seed; masscan
numbers shards 1..N, zmap 0..N-1. Nothing is sent by this command.
Example:  portcensus plan --week 2026-W48 --shards 10 --shard 3 > shard3.sh
"""
LAND_EPILOG = """\
A file is refused (exit 1, nothing moved) while it is open for writing, while
its size/mtime change, when its gzip/zstd stream or format footer is
incomplete, or when its name already exists in RAW/WEEK (see --replace).
Example:  portcensus land --week 2026-W48 --plan scanners/scanplan.toml \\
              /var/spool/portcensus/2026-W48/*.gz
"""


def add_parsers(sub) -> None:
    from pipelines.config import DEFAULT_RAW
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("plan", help="print the week's scanner command lines per shard (sends nothing)",
                       description="Render the scan plan (TOML) into exact masscan, zmap and "
                                   "zgrab2 command lines for one week.",
                       formatter_class=fmt, epilog=PLAN_EPILOG)
    p.add_argument("--week", required=True, help="ISO week the scan is for, e.g. 2026-W48")
    p.add_argument("--shards", type=int, help="number of shards (default: the plan's)")
    p.add_argument("--shard", type=int, metavar="K", help="print only shard K (1-based)")
    p.add_argument("--plan", default=DEFAULT_PLAN, metavar="FILE",
                   help="scan plan TOML (default: scanners/scanplan.toml)")
    p.add_argument("--spool", metavar="DIR", help="where scanners write (default: the plan's paths.spool)")
    p.add_argument("--raw", default=DEFAULT_RAW, metavar="DIR",
                   help=f"raw data root named in the land hint (default: {DEFAULT_RAW})")

    q = sub.add_parser("land", help="move finished scanner outputs into RAW/WEEK with a sidecar",
                       description="Check and move finished scanner output files into "
                                   "RAW/WEEK/, writing FILE.meta.json (tool, version, command, "
                                   "shard, seed, times, sha256, bytes) beside each.",
                       formatter_class=fmt, epilog=LAND_EPILOG)
    q.add_argument("files", nargs="+", metavar="FILE", help="scanner output files (any compression)")
    q.add_argument("--week", required=True, help="ISO week folder to land into, e.g. 2026-W48")
    q.add_argument("--raw", default=DEFAULT_RAW, metavar="DIR", help=f"raw data root (default: {DEFAULT_RAW})")
    q.add_argument("--plan", metavar="FILE",
                   help="take tool, command, shard, seed and port hints from this plan, matched "
                        "by file name (every file must belong to it)")
    q.add_argument("--spool", metavar="DIR", help="spool dir the plan's commands wrote to (for --plan)")
    q.add_argument("--tool", choices=("masscan", "zmap", "zgrab2"), help="expected tool (checked)")
    q.add_argument("--tool-version", metavar="V", help="scanner version, e.g. 1.3.2 (`masscan --version`)")
    # dest differs: the top-level parser keeps the subcommand name in args.command
    q.add_argument("--command", dest="scan_command", metavar="CMD", help="the exact command line that wrote the files")
    q.add_argument("--shard", type=int, metavar="K", help="shard number (1-based)")
    q.add_argument("--seed", type=int, metavar="N", help="the scan's --seed")
    q.add_argument("--start", metavar="TIME", help="scan start, ISO 8601 with zone (default: first record's time)")
    q.add_argument("--end", metavar="TIME", help="scan end, ISO 8601 with zone (default: last record's time)")
    q.add_argument("--port", type=int, dest="port_hint", metavar="PORT",
                   help="port of a file that does not say it (bare zmap IP list)")
    q.add_argument("--transport", choices=("tcp", "udp"), dest="transport_hint",
                   help="transport of a file that does not say it")
    q.add_argument("--replace", action="store_true",
                   help="replace a landed file of the same name; the old one is kept as "
                        ".NAME.replaced-N")
    q.add_argument("--settle", type=float, default=2.0, metavar="SECONDS",
                   help="how long size and mtime must stay unchanged (default: 2)")


def dispatch(args) -> int | None:
    """Run ``plan``/``land``; None if the command is not ours."""
    if args.command == "plan":
        return _plan(args)
    if args.command == "land":
        return _land(args)
    return None


def _load_plan(path: str):
    from scanners.plan import parse_plan
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_plan(fh.read())
    except OSError as exc:
        raise _Usage(f"cannot read plan {path}: {exc.strerror}") from None


class _Usage(Exception):
    pass


def _plan(args) -> int:
    from scanners.plan import PlanError, render, render_script
    try:
        plan = _load_plan(args.plan)
        script = render_script(plan, args.week, args.shards, args.spool, args.shard)
        per_shard = render(plan, args.week, args.shards, args.spool)
    except (PlanError, _Usage) as exc:
        return _fail(exc, EXIT_USAGE)
    sys.stdout.write(script)
    spool = (args.spool or plan.spool).rstrip("/") + "/" + args.week
    for i, cmds in enumerate(per_shard, start=1):
        if args.shard is not None and i != args.shard:
            continue
        outs = [f"{spool}/{o.name}" for c in cmds for o in c.outputs]
        hint = ["portcensus", "land", "--week", args.week, "--raw", args.raw, "--plan", args.plan]
        if args.spool:
            hint += ["--spool", args.spool]
        print(f"# shard {i}, when done: " + shlex.join(hint + outs))
    return EXIT_OK


def _land(args) -> int:
    from pipelines.discover import DiscoveryError
    from pipelines.land import LandError, land
    from scanners.plan import PlanError, match_output
    meta = {k: getattr(args, k) for k in ("tool", "tool_version", "shard", "seed",
                                          "start", "end", "port_hint", "transport_hint")
            if getattr(args, k) is not None}
    if args.scan_command is not None:
        meta["command"] = args.scan_command
    missing = [f for f in args.files if not os.path.isfile(f)]
    if missing:
        return _fail(_Usage(f"no such file: {missing[0]}"), EXIT_USAGE)
    try:
        per_file = {}
        if args.plan:
            plan = _load_plan(args.plan)
            for f in args.files:
                hit = match_output(plan, args.week, f, args.spool)
                if hit is None:
                    raise _Usage(f"{f}: not an output of the plan {args.plan} for {args.week}")
                cmd, out = hit
                found = {"tool": out.tool, "command": cmd.shell, "shard": cmd.shard,
                         "seed": cmd.seed, "port_hint": out.port_hint,
                         "transport_hint": out.transport_hint}
                per_file[f] = {**found, **meta}   # explicit flags win
        landed = land(args.raw, args.week, args.files, meta, per_file=per_file,
                      replace=args.replace, settle=args.settle)
    except (PlanError, DiscoveryError, _Usage) as exc:
        return _fail(exc, EXIT_USAGE)
    except LandError as exc:
        return _fail(exc, EXIT_FAILED)
    for d in landed:
        m = d.meta
        line = (f"landed {d.path} ({m['format']}, {m['bytes']:,} bytes, "
                f"sha256 {m['sha256'][:12]})")
        if d.replaced:
            line += f"; previous file kept as {d.replaced}"
        print(line)
    return EXIT_OK


def _fail(exc: BaseException, code: int) -> int:
    text = str(exc).strip().splitlines()
    print(f"portcensus: {text[0] if text else type(exc).__name__}", file=sys.stderr)
    return code
