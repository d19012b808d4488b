"""The whole scan side for real: the shipped scan plan's commands, run by the
real masscan and zmap against real daemons, landed, and processed by the
pipeline; the clean Parquet must list exactly the open ports.

Isolation: two network namespaces made here, joined by one veth pair and
nothing else; neither has a default route, and every scanner runs inside the
scanner namespace with targets inside 198.18.0.0/29 only (RFC 2544 test
range, layout as tests/fixtures/real/make_real_fixtures.sh):

    scanner ns  scan0 198.18.0.200/24 (zmap); masscan uses .201, configured
                nowhere (its own TCP stack; the targets have a neighbour entry)
    target ns   tgt0  .1 sshd:22 nginx:80,443  .2 vsftpd:21 sshd:22
                      .3 nginx:80 memcached:11211 tcp+udp
                      .4 udp:500 answers only the plan's exact IKE probe
                      .5 sshd:22 nginx:80, but in the plan's exclude file
                      .0 .6 .7 absent

Needs root, iproute2 and the packages of tests/e2e/netns_setup.sh; skips with
the reason otherwise. Run: ``pytest -m net tests/e2e/test_netns_scan.py``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from pipelines.config import RunConfig
from pipelines.land import land
from pipelines.summary import clean_dataset
from pipelines.week import process_week
from scanners.plan import match_output, parse_plan, render

pytestmark = pytest.mark.net

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NET = "198.18.0"
SCAN_IP, MASSCAN_IP = f"{NET}.200", f"{NET}.201"
SCAN_MAC, TGT_MAC = "02:00:00:00:00:c8", "02:00:00:00:00:01"
TARGETS = f"{NET}.0/29"
EXCLUDED = f"{NET}.5"
TRUTH = {(f"{NET}.1", 22, "tcp"), (f"{NET}.1", 80, "tcp"), (f"{NET}.1", 443, "tcp"),
         (f"{NET}.2", 21, "tcp"), (f"{NET}.2", 22, "tcp"),
         (f"{NET}.3", 80, "tcp"), (f"{NET}.3", 11211, "tcp"), (f"{NET}.3", 11211, "udp"),
         (f"{NET}.4", 500, "udp")}
LISTEN = {(f"{NET}.{h}", p) for h, p in ((1, 22), (1, 80), (1, 443), (2, 21), (2, 22), (3, 80),
                                         (3, 11211), (4, 500), (5, 22), (5, 80))}
NEEDED = ("masscan", "zmap", "ztee", "sshd", "ssh-keygen", "nginx", "vsftpd", "memcached",
          "openssl", "gzip", "ip", "ss", "bash")
SCAN_TIMEOUT = 60


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _skip_unless_ready() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, raw sockets)")
    missing = [n for n in NEEDED if _which(n) is None]
    if missing:
        pytest.skip(f"not installed: {' '.join(missing)} (run tests/e2e/netns_setup.sh)")
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"`ip netns` unusable: {r.stderr.strip()[:100]}")


def _run(*cmd: str, timeout: float = 20) -> str:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)[:120]} failed ({r.returncode}): {r.stderr.strip()[:300]}")
    return r.stdout


@dataclasses.dataclass
class Lab:
    scan_ns: str
    tgt_ns: str
    work: str
    procs: list

    def in_scan(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.scan_ns, *cmd]

    def in_tgt(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.tgt_ns, *cmd]

    def start(self, name: str, *cmd: str) -> None:
        log = open(os.path.join(self.work, f"{name}.log"), "wb")
        # own session: the whole group (bash loop, nginx workers) ends with it
        p = subprocess.Popen(self.in_tgt(*cmd), stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        log.close()
        self.procs.append((name, p))


def _cleanup(net: Lab) -> None:
    for _name, p in reversed(net.procs):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for _name, p in net.procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    # Anything left inside OUR namespaces was started by this test (forks).
    for ns in (net.tgt_ns, net.scan_ns):
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    shutil.rmtree(net.work, ignore_errors=True)


@pytest.fixture(scope="module")
def testnet():
    _skip_unless_ready()
    tag = f"{os.getpid()}"
    work = tempfile.mkdtemp(prefix="portcensus-netns-")
    os.chmod(work, 0o755)   # nginx workers (www-data) read the web root
    net = Lab(scan_ns=f"pcscan{tag}", tgt_ns=f"pctgt{tag}", work=work, procs=[])
    try:
        _make_network(net)
        (ike,) = [j for j in _shipped().jobs if j.ports == (500,)]
        _start_daemons(net, bytes.fromhex(ike.probe_args.removeprefix("hex:")))
        yield net
    finally:
        _cleanup(net)


def _make_network(net: Lab) -> None:
    _run("ip", "netns", "add", net.scan_ns)
    _run("ip", "netns", "add", net.tgt_ns)
    _run("ip", "link", "add", "scan0", "address", SCAN_MAC, "netns", net.scan_ns, "type", "veth",
         "peer", "name", "tgt0", "address", TGT_MAC, "netns", net.tgt_ns)
    _run(*net.in_scan("ip", "link", "set", "lo", "up"))
    _run(*net.in_tgt("ip", "link", "set", "lo", "up"))
    _run(*net.in_scan("ip", "addr", "add", f"{SCAN_IP}/24", "dev", "scan0"))
    for h in range(1, 6):
        _run(*net.in_tgt("ip", "addr", "add", f"{NET}.{h}/24", "dev", "tgt0"))
    _run(*net.in_scan("ip", "link", "set", "scan0", "up"))
    _run(*net.in_tgt("ip", "link", "set", "tgt0", "up"))
    if _which("ethtool"):  # pcap scanners would see partial checksums from veth offload
        subprocess.run(net.in_scan("ethtool", "-K", "scan0", "tx", "off", "rx", "off"), capture_output=True)
        subprocess.run(net.in_tgt("ethtool", "-K", "tgt0", "tx", "off", "rx", "off"), capture_output=True)
    _run(*net.in_tgt("ip", "neigh", "replace", MASSCAN_IP, "lladdr", SCAN_MAC, "dev", "tgt0",
                     "nud", "permanent"))
    for ns in (net.scan_ns, net.tgt_ns):
        routes = _run("ip", "netns", "exec", ns, "ip", "route")
        assert "default" not in routes, f"{ns} has a default route: refusing to scan"
        assert all(line.startswith(f"{NET}.0/24") for line in routes.splitlines()), routes


# Not an IKE daemon: it proves the plan's hex probe arrives byte for byte
# (it answers nothing else) and that a udp zmap job lands and counts.
IKE_RESPONDER = """
import socket, sys
want = bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 500))
while True:
    data, peer = s.recvfrom(2048)
    if data == want:   # reply: same cookies, an empty ISAKMP header
        s.sendto(data[:16] + bytes([0, 0x10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 28]), peer)
"""


def _start_daemons(net: Lab, ike_probe: bytes) -> None:
    w = net.work
    for d in ("www", "ftp", "empty", "ssh"):
        os.makedirs(os.path.join(w, d))
        os.chmod(os.path.join(w, d), 0o755)
    with open(os.path.join(w, "www", "index.html"), "w") as fh:
        fh.write("<html><head><title>netns test</title></head><body>hi</body></html>\n")
    os.chmod(os.path.join(w, "www", "index.html"), 0o644)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{w}/ssh/host_ed25519")
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=netns.test", "-keyout", f"{w}/key.pem", "-out", f"{w}/cert.pem")
    os.makedirs("/run/sshd", exist_ok=True)   # sshd's privilege-separation dir
    for host in (1, 2, 5):
        conf = os.path.join(w, f"sshd{host}.conf")
        with open(conf, "w") as fh:
            fh.write(f"Port 22\nListenAddress {NET}.{host}\nHostKey {w}/ssh/host_ed25519\n"
                     f"PidFile {w}/sshd{host}.pid\nUsePAM no\nPasswordAuthentication no\n"
                     "KbdInteractiveAuthentication no\nPermitRootLogin no\n")
        net.start(f"sshd{host}", _which("sshd"), "-D", "-e", "-f", conf)
    with open(os.path.join(w, "nginx.conf"), "w") as fh:
        fh.write(f"""worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/nginx_error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  server {{ listen {NET}.1:80; root {w}/www; }}
  server {{ listen {NET}.1:443 ssl; root {w}/www;
           ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_ciphers ALL:@SECLEVEL=0;
           ssl_certificate {w}/cert.pem; ssl_certificate_key {w}/key.pem; }}
  server {{ listen {NET}.3:80; root {w}/www; }}
  server {{ listen {NET}.5:80; root {w}/www; }}
}}
""")
    net.start("nginx", _which("nginx"), "-c", f"{w}/nginx.conf")
    with open(os.path.join(w, "vsftpd.conf"), "w") as fh:
        fh.write(f"listen=YES\nlisten_ipv6=NO\nlisten_address={NET}.2\nlisten_port=21\n"
                 f"background=NO\nanonymous_enable=YES\nno_anon_password=YES\nanon_root={w}/ftp\n"
                 f"local_enable=NO\npasv_enable=NO\nxferlog_enable=NO\nsecure_chroot_dir={w}/empty\n")
    net.start("vsftpd", _which("vsftpd"), f"{w}/vsftpd.conf")
    net.start("memcached", _which("memcached"), "-u", "nobody", "-l", f"{NET}.3", "-p", "11211",
              "-U", "11211", "-m", "8", "-c", "64")
    net.start("ike", sys.executable, "-c", IKE_RESPONDER, f"{NET}.4", ike_probe.hex())
    deadline = time.monotonic() + 15
    while True:
        out = _run(*net.in_tgt("ss", "-Hltnu"))
        listening = {tuple(m.groups()) for m in re.finditer(r"(\d+\.\d+\.\d+\.\d+):(\d+)", out)}
        missing = {(a, p) for a, p in LISTEN if (a, str(p)) not in listening}
        if not missing:
            break
        if time.monotonic() > deadline:
            logs = {n: open(os.path.join(w, f"{n}.log")).read()[-300:] for n, _ in net.procs}
            raise RuntimeError(f"daemons not listening on {sorted(missing)}: {logs}")
        time.sleep(0.3)
    # masscan's TCP timers only run when its receive loop wakes: a perfectly
    # silent link loses client-first banners (fixtures README). Some chatter:
    net.start("chatter", "bash", "-c", f"while :; do echo c > /dev/udp/{SCAN_IP}/9; sleep 0.2; done")


def _shipped():
    with open(os.path.join(ROOT, "scanners", "scanplan.toml")) as fh:
        return parse_plan(fh.read())


def _test_plan(work: str):
    """The shipped plan's jobs, aimed at the test network only."""
    shipped = _shipped()
    exclude = os.path.join(work, "exclude.conf")
    with open(exclude, "w") as fh:
        fh.write(f"# opt-out: this host asked not to be scanned\n{EXCLUDED}\n")
    return dataclasses.replace(
        shipped, targets=(TARGETS,), exclude_file=exclude, shards=2, rate=1000,
        masscan_wait=3, zmap_cooldown=1, spool=os.path.join(work, "spool"),
        network={"interface": "scan0", "source_ip": SCAN_IP, "masscan_source_ip": MASSCAN_IP,
                 "router_mac": TGT_MAC})


def _version(*cmd: str) -> str | None:
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    m = re.search(r"(\d+\.\d+\.\d+)", r.stdout + r.stderr)
    return m.group(1) if m else None


def test_real_scan_of_real_daemons_lands_and_processes_to_the_truth(testnet):
    t0 = time.monotonic()
    now = dt.datetime.now(dt.timezone.utc)
    week = "%d-W%02d" % now.isocalendar()[:2]
    plan = _test_plan(testnet.work)
    os.makedirs(os.path.join(plan.spool, week))
    have_zgrab2 = _which("zgrab2") is not None
    files = []
    for cmds in render(plan, week):
        for c in cmds:
            # Every argv is the scanner with our test range as its only target.
            assert TARGETS in c.argv and not any(a in c.argv for a in ("0.0.0.0/0", "0/0"))
            shell = c.shell if have_zgrab2 else c.census_shell
            r = subprocess.run(testnet.in_scan("timeout", str(SCAN_TIMEOUT), "bash", "-o",
                                               "pipefail", "-c", shell),
                               capture_output=True, text=True, timeout=SCAN_TIMEOUT + 10)
            assert r.returncode == 0, f"{c.job} shard {c.shard}: {r.stderr[-400:]}"
            outs = c.outputs if have_zgrab2 else c.outputs[:1]
            files += [os.path.join(plan.spool, week, o.name) for o in outs]
    versions = {"masscan": _version("masscan", "--version"), "zmap": _version("zmap", "--version")}
    per_file = {}
    for f in files:
        cmd, out = match_output(plan, week, f)
        per_file[f] = {"tool": out.tool, "tool_version": versions.get(out.tool),
                       "command": cmd.shell, "shard": cmd.shard, "seed": cmd.seed,
                       "port_hint": out.port_hint, "transport_hint": out.transport_hint}
    raw, out_dir = os.path.join(testnet.work, "raw"), os.path.join(testnet.work, "out")
    landed = land(raw, week, files, per_file=per_file, settle=0.5)
    assert len(landed) == len(files) and not os.listdir(os.path.join(plan.spool, week))
    seeds = {d.meta["seed"] for d in landed}
    assert len(seeds) == 1 and {d.meta["shard"] for d in landed} == {1, 2}

    # The namespaces are a test network (special-purpose space): kept explicitly.
    manifest = process_week(RunConfig(week=week, raw=raw, out=out_dir, allow_special_purpose=True).validate(),
                            ["--runner=FnApiRunner"])
    rows = clean_dataset(out_dir, week).to_table().to_pylist()
    found = {(r["ip"], r["port"], r["transport"]) for r in rows}
    assert found == TRUTH, f"missing {TRUTH - found}, unexpected {found - TRUTH}"
    assert all(r["status"] == "open" for r in rows)
    assert not any(r["ip"] == EXCLUDED for r in rows)   # the scanners honoured the opt-out
    t = manifest["totals"]
    assert t["identity_holds"] and t["quarantined"] == 0 and manifest["files_damaged"] == 0
    banners = {(r["ip"], r["port"]): dict(r["banners"] or {}) for r in rows}
    assert banners[(f"{NET}.2", 21)].get("ftp", "").startswith("220 (vsFTPd")
    assert time.monotonic() - t0 < 170
