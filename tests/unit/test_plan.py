"""scanners/plan.py: the shipped plan renders well-formed, complete, consistently
sharded commands; and the real masscan 1.3.2 / zmap 2.1.1 accept them
(``--echo``, ``-sL`` list scan, zmap ``--dryrun``: nothing is sent)."""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import shlex
import shutil
import subprocess

import pytest

from scanners.plan import (PlanError, match_output, parse_plan, render,
                           render_script, week_seed)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "scanners", "scanplan.toml")) as _fh:
    SHIPPED = _fh.read()
WEEK = "2026-W48"

# The ports the census must cover (issue 9), as (port, transport).
REQUIRED = {(22, "tcp"), (80, "tcp"), (443, "tcp"), (21, "tcp"), (25, "tcp"), (1723, "tcp"),
            (500, "udp"), (88, "tcp"), (389, "tcp"), (636, "tcp"), (3306, "tcp"),
            (5432, "tcp"), (1433, "tcp"), (11211, "tcp"), (11211, "udp")}

SMALL = """
[scan]
targets = ["198.18.0.0/28"]
exclude_file = "EXCLUDE"
shards = 3
seed = 4242
rate = 1000
masscan_wait = 1
zmap_cooldown = 0
[paths]
spool = "/tmp/spool"
[[job]]
name = "tcp"
tool = "masscan"
transport = "tcp"
ports = [21, 22, 80]
[[job]]
name = "udp"
tool = "masscan"
transport = "udp"
ports = [11211]
[[job]]
name = "ssh22"
tool = "zgrab2"
module = "ssh"
port = 22
"""


@pytest.fixture(scope="module")
def plan():
    return parse_plan(SHIPPED)


def _flag(argv, flag):
    """Value of ``flag X`` or ``flag=X`` in argv (None if absent)."""
    for i, a in enumerate(argv):
        if a == flag:
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def test_ten_shards_cover_masscan_1_to_10_and_zmap_0_to_9_with_one_seed(plan):
    per_shard = render(plan, WEEK, shards=10)
    assert len(per_shard) == 10
    masscan_shards, zmap_shards, seeds = set(), set(), set()
    for i, cmds in enumerate(per_shard, start=1):
        assert len(cmds) == len(plan.jobs)
        for c in cmds:
            assert c.shard == i and c.shards == 10
            if c.tool == "masscan":
                masscan_shards.add(_flag(c.argv, "--shard"))
                seeds.add(_flag(c.argv, "--seed"))
            else:
                assert _flag(c.argv, "--shards") == "10"
                zmap_shards.add(int(_flag(c.argv, "--shard")))
                seeds.add(_flag(c.argv, "-e"))
    assert masscan_shards == {f"{i}/10" for i in range(1, 11)}
    assert zmap_shards == set(range(10))
    assert seeds == {str(week_seed(plan, WEEK))}


def test_every_command_passes_the_exclude_file_and_its_own_output(plan):
    names = []
    for cmds in render(plan, WEEK, shards=10):
        for c in cmds:
            flag = "--excludefile" if c.tool == "masscan" else "-b"
            assert _flag(c.argv, flag) == plan.exclude_file
            assert shlex.split(c.shell)[:len(c.argv)] == list(c.argv)  # shell starts with argv, quoted right
            for out in c.outputs:
                assert f"/{WEEK}/" + out.name.removesuffix(".gz") in c.shell
                names.append(out.name)
    assert len(names) == len(set(names)), "two commands write the same file"
    assert any(n == "masscan-tcp-shard03of10.ndjson.gz" for n in names)


def test_plan_covers_the_census_ports_and_tools(plan):
    covered = set()
    for job in plan.jobs:
        covered |= {(p, job.transport) for p in job.ports}
    assert REQUIRED <= covered
    ssh = [j for j in plan.jobs if 22 in j.ports]
    assert [j.tool for j in ssh] == ["zgrab2"] and ssh[0].module == "ssh"  # host keys


def test_zmap_commands_keep_only_first_successes_with_a_header(plan):
    for c in render(plan, WEEK, shards=2)[0]:
        if c.tool == "masscan":
            assert c.argv[-2:] == ("-oD", "-") and "--banners" in c.argv
            continue
        assert _flag(c.argv, "-O") == "csv"
        assert _flag(c.argv, "--output-filter") == f"success = 1 && repeat = 0 && sport = {c.argv[2]}"
        assert _flag(c.argv, "-f").startswith("saddr,")  # ztee hands column 1 to zgrab2
        if c.tool == "zgrab2":
            assert " | ztee " in c.shell and c.grab_argv[0] == "zgrab2"
            assert "zgrab2" not in c.census_shell


def test_week_seed_is_shared_within_a_week_and_changes_between_weeks(plan):
    assert week_seed(plan, "2026-W48") == week_seed(plan, "2026-W48")
    assert week_seed(plan, "2026-W48") != week_seed(plan, "2026-W49")
    fixed = dataclasses.replace(plan, seed_per_week=False)
    assert week_seed(fixed, "2026-W48") == week_seed(fixed, "2026-W01") == plan.seed


def test_ike_probe_is_a_consistent_isakmp_main_mode_packet(plan):
    (job,) = [j for j in plan.jobs if j.ports == (500,)]
    pkt = bytes.fromhex(job.probe_args.removeprefix("hex:"))
    assert pkt[:8] == b"portcens" and pkt[8:16] == bytes(8)
    assert pkt[16] == 1 and pkt[17] == 0x10 and pkt[18] == 2           # SA, v1.0, Main Mode
    assert int.from_bytes(pkt[24:28], "big") == len(pkt) == 84
    sa_len = int.from_bytes(pkt[30:32], "big")
    prop_len = int.from_bytes(pkt[42:44], "big")
    tr_len = int.from_bytes(pkt[50:52], "big")
    assert (sa_len, prop_len, tr_len) == (len(pkt) - 28, sa_len - 12, prop_len - 8)


def test_match_output_finds_every_output_and_nothing_else(plan):
    for c in render(plan, WEEK, shards=4)[3]:
        for out in c.outputs:
            cmd, found = match_output(plan, WEEK, f"/spool/{WEEK}/{out.name}")
            assert found == out and cmd.shell == c.shell
    assert match_output(plan, WEEK, "masscan-tcp-shard05of04.ndjson.gz") is None
    assert match_output(plan, WEEK, "notes.txt") is None


def test_render_script_prints_one_shard_on_request(plan):
    text = render_script(plan, WEEK, shards=10, only_shard=3)
    assert "set -euo pipefail" in text and "--shard 3/10" in text and "--shard=2" in text
    assert "--shard 4/10" not in text


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('exclude_file = "/etc/portcensus/exclude.conf"', ""), "exclude_file"),
    (lambda t: t.replace("port = 22\n", "port = [22, 2222]\n"), "one"),
    (lambda t: t.replace("shards = 10", "shards = 0"), "shards"),
    (lambda t: t.replace('name = "udp"', 'name = "tcp"'), "unique"),
    (lambda t: t.replace('module = "ssh"', ""), "module"),
    (lambda t: t + "\n[scan", "TOML"),
])
def test_bad_plans_are_refused_with_the_key(edit, message):
    with pytest.raises(PlanError, match=message):
        parse_plan(edit(SHIPPED))


def test_bad_week_is_refused(plan):
    with pytest.raises(PlanError, match="ISO week"):
        render(plan, "2026-48")


# -- the real tools --------------------------------------------------------------

needs_masscan = pytest.mark.skipif(shutil.which("masscan") is None,
                                   reason="masscan not installed (tests/e2e/netns_setup.sh)")


def _echo(argv) -> dict:
    r = subprocess.run(list(argv) + ["--echo"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    conf: dict = {}
    for line in r.stdout.splitlines():
        if " = " in line and not line.startswith("#"):
            k, v = line.split(" = ", 1)
            conf.setdefault(k.strip(), []).append(v.strip())
    return conf


@needs_masscan
def test_real_masscan_echo_accepts_every_shard_command(plan, tmp_path):
    exclude = tmp_path / "exclude.conf"
    exclude.write_text("# opt-outs + reserved\n10.0.0.0/8\n198.18.0.3\n")
    p = dataclasses.replace(plan, exclude_file=str(exclude))
    seed = str(week_seed(p, WEEK))
    for i, cmds in enumerate(render(p, WEEK, shards=10), start=1):
        for c in (c for c in cmds if c.tool == "masscan"):
            conf = _echo(c.argv)
            job = next(j for j in p.jobs if j.name == c.job)
            prefix = "U:" if job.transport == "udp" else ""
            assert conf["ports"] == [",".join(f"{prefix}{x}" for x in job.ports)]
            assert conf["shard"] == [f"{i}/10"] and conf["seed"] == [seed]
            assert float(conf["rate"][0]) == p.rate and conf["banners"] == ["true"]
            assert conf["output-format"] == ["ndjson"] and conf["output-filename"] == ["-"]
            # the exclude file was read: its ranges are cut out of 0.0.0.0/0
            assert conf["range"] == ["0.0.0.0-9.255.255.255", "11.0.0.0-198.18.0.2",
                                     "198.18.0.4-255.255.255.255"]


def _small(tmp_path, exclude="198.18.0.3\n"):
    ex = tmp_path / "exclude.conf"
    ex.write_text(exclude)
    return parse_plan(SMALL.replace("EXCLUDE", str(ex)))


def _no_net(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run in a new, empty network namespace: even a bug cannot send a packet."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for an empty network namespace")
    script = "ip link set lo up && exec " + shlex.join(cmd)
    return subprocess.run(["unshare", "--net", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)


@needs_masscan
def test_real_masscan_list_scan_shards_partition_the_targets(tmp_path):
    p = _small(tmp_path)
    expected = {(f"198.18.0.{h}", port) for h in range(16) if h != 3
                for port in (21, 22, 80, 65536 + 11211)}
    seen: list = []
    for cmds in render(p, WEEK):
        for c in (c for c in cmds if c.tool == "masscan"):
            r = _no_net(list(c.argv) + ["-sL"])
            assert r.returncode == 0, r.stderr
            job = next(j for j in p.jobs if j.name == c.job)
            for line in r.stdout.split():
                if ":" not in line:  # masscan omits the port when a job has one
                    assert len(job.ports) == 1
                    line += f":{job.ports[0] + (65536 if job.transport == 'udp' else 0)}"
                ip, port = line.rsplit(":", 1)
                seen.append((ip, int(port)))
    assert len(seen) == len(set(seen)), "shards overlap"
    assert set(seen) == expected


@pytest.mark.skipif(shutil.which("zmap") is None, reason="zmap not installed (tests/e2e/netns_setup.sh)")
def test_real_zmap_dryrun_shards_partition_the_targets(tmp_path):
    p = _small(tmp_path)
    p = dataclasses.replace(p, network={"interface": "lo", "source_ip": "198.18.0.200",
                                        "router_mac": "02:00:00:00:00:01"})
    seen: list = []
    for cmds in render(p, WEEK):
        (c,) = [c for c in cmds if c.tool == "zgrab2"]
        r = _no_net(list(c.argv) + ["--dryrun"])
        assert r.returncode == 0, r.stderr
        seen += re.findall(r"daddr: ([0-9.]+)", r.stdout)
    assert len(seen) == len(set(seen)), "shards overlap"
    net = ipaddress.ip_network("198.18.0.0/28")
    assert set(seen) == {str(a) for a in net} - {"198.18.0.3"}
