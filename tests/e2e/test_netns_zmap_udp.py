"""Real zmap UDP output, made here: zmap's udp module (the plan's own zmap
command line, scanners/plan.py ``zmap_argv``) against UDP responders for the
four UDP protocols the project knows, then read and processed by the
pipeline. Each reply's ``data`` must come back as its protocol's banner
(issue 15, item 4; docs/PROTOCOLS.md).

Isolation as tests/e2e/test_netns_scan.py: two network namespaces made here,
joined by one veth pair, no default route, targets inside 198.18.2.0/29 only
(a range of its own, so both tests can run at once):

    scanner ns  zu0  198.18.2.200/24 (zmap)
    target ns   zt0  .3 memcached 11211  .4 IKE 500  .5 Kerberos 88  .6 CLDAP 389

The responders are small Python UDP servers answering the shapes those
daemons send (a memcached ``stats`` reply, an IKEv1 NO-PROPOSAL-CHOSEN notify,
a KRB-ERROR, an LDAP searchResDone); the component under test is zmap's output.
Needs root, ``ip`` and zmap (tests/e2e/netns_setup.sh); skips otherwise.
Run: ``pytest -m net tests/e2e/test_netns_zmap_udp.py``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pytest

from pipelines.config import RunConfig
from pipelines.summary import clean_dataset
from pipelines.week import process_week
from scanners.escapes import banner_text_column
from scanners.plan import parse_plan, zmap_argv
from scanners.protocols import by_port

pytestmark = pytest.mark.net

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NET = "198.18.2"
SCAN_IP = f"{NET}.200"
SCAN_MAC, TGT_MAC = "02:00:00:00:02:c8", "02:00:00:00:02:01"
MEMCACHED_STATS = b"STAT pid 1\r\nSTAT uptime 5\r\nSTAT time 1796203153\r\nSTAT version 1.6.18\r\nEND\r\n"
# A rootDSE search (RFC 4511 over UDP, as CLDAP clients send it) and an AS-REQ-like probe.
CLDAP_PROBE = "3025020101632004000a01000a0100020100020100010100870b6f626a656374636c6173733000"
KRB_PROBE = "6a0a3008a103020105a2030201" + "0a"


def _krb_error() -> bytes:
    def tlv(tag, body):
        return bytes([tag, len(body)]) + body

    def ctx(n, body):
        return tlv(0xA0 + n, body)

    return tlv(0x7E, tlv(0x30, ctx(0, tlv(0x02, b"\x05")) + ctx(1, tlv(0x02, b"\x1e"))
                     + ctx(4, tlv(0x18, b"20261202091913Z")) + ctx(5, tlv(0x02, b"\x01"))
                     + ctx(6, tlv(0x02, bytes([25]))) + ctx(9, tlv(0x1B, b"NETNS.TEST"))))


# Each "addr,port,kind,hex" argument: answer every datagram on addr:port.
RESPONDER = r"""
import select, socket, sys
specs = [s.split(",") for s in sys.argv[1:]]
socks = {}
for addr, port, kind, extra in specs:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    socks[s] = (kind, bytes.fromhex(extra))
while True:
    ready, _, _ = select.select(list(socks), [], [])
    for s in ready:
        data, peer = s.recvfrom(2048)
        kind, extra = socks[s]
        if kind == "memcached":   # echo the request id of the 8-byte UDP frame header
            reply = data[:2] + b"\x00\x00\x00\x01\x00\x00" + extra
        elif kind == "ike":       # initiator cookie echoed, responder cookie, Informational notify 14
            reply = data[:8] + b"respcook" + extra
        else:
            reply = extra
        s.sendto(reply, peer)
"""
TARGETS = {  # port -> (host, responder kind, reply extra, protocol, probe hex or None for the plan's)
    11211: (f"{NET}.3", "memcached", MEMCACHED_STATS, "memcached", "00010000000100007374617473" + "0d0a"),
    500: (f"{NET}.4", "ike", bytes.fromhex("0b10050000000000000000280000000c000000010100000e"), "ike", None),
    88: (f"{NET}.5", "raw", _krb_error(), "kerberos", KRB_PROBE),
    389: (f"{NET}.6", "raw", bytes.fromhex("300c02010165070a010004000400"), "ldap", CLDAP_PROBE),
}


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


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


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, raw sockets)")
    missing = [n for n in ("zmap", "ip", "ss") if _which(n) is None]
    if missing:
        pytest.skip(f"not installed: {' '.join(missing)} (run tests/e2e/netns_setup.sh)")
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        pytest.skip("`ip netns` unusable")
    tag = str(os.getpid())
    net = Lab(f"pczu{tag}", f"pczt{tag}", tempfile.mkdtemp(prefix="portcensus-zmapudp-"), [])
    try:
        _make_network(net)
        specs = [f"{host},{port},{kind},{extra.hex()}" for port, (host, kind, extra, _, _) in TARGETS.items()]
        log = open(os.path.join(net.work, "responder.log"), "wb")
        net.procs.append(subprocess.Popen(["ip", "netns", "exec", net.tgt_ns, sys.executable, "-c", RESPONDER,
                                           *specs], stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        log.close()
        _wait_listening(net)
        yield net
    finally:
        _cleanup(net)


def _make_network(net: Lab) -> None:
    _run("ip", "netns", "add", net.scan_ns)
    _run("ip", "netns", "add", net.tgt_ns)
    _run("ip", "link", "add", "zu0", "address", SCAN_MAC, "netns", net.scan_ns, "type", "veth",
         "peer", "name", "zt0", "address", TGT_MAC, "netns", net.tgt_ns)
    for ns, dev, addrs in ((net.scan_ns, "zu0", [SCAN_IP]), (net.tgt_ns, "zt0", [h for h, *_ in TARGETS.values()])):
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        for a in addrs:
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{a}/24", "dev", dev)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        if _which("ethtool"):   # zmap reads with pcap: no partial checksums from veth offload
            subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off"],
                           capture_output=True)
        routes = _run("ip", "netns", "exec", ns, "ip", "route")
        assert "default" not in routes and all(r.startswith(f"{NET}.0/24") for r in routes.splitlines()), routes


def _wait_listening(net: Lab) -> None:
    deadline = time.monotonic() + 10
    want = {f"{host}:{port}" for port, (host, *_) in TARGETS.items()}
    while not all(w in _run("ip", "netns", "exec", net.tgt_ns, "ss", "-Hlun") for w in want):
        if time.monotonic() > deadline:
            raise RuntimeError(f"responder not listening: {open(os.path.join(net.work, 'responder.log')).read()}")
        time.sleep(0.2)


def _cleanup(net: Lab) -> None:
    for p in net.procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    for ns in (net.tgt_ns, net.scan_ns):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    shutil.rmtree(net.work, ignore_errors=True)


def _scan(net: Lab, week_dir: str) -> tuple[list[str], str]:
    """One zmap udp run per port with the plan's own command line; the
    memcached run once more as ``-O json``."""
    with open(os.path.join(ROOT, "scanners", "scanplan.toml")) as fh:
        shipped = parse_plan(fh.read())
    (ike,) = [j for j in shipped.jobs if j.ports == (500,)]
    exclude = os.path.join(net.work, "exclude.conf")
    with open(exclude, "w") as fh:
        fh.write(f"{NET}.7/32\n")   # -b replaces zmap's own list (which blocks 198.18.0.0/15)
    plan = dataclasses.replace(shipped, targets=(f"{NET}.0/29",), exclude_file=exclude, rate=1000,
                               zmap_cooldown=2,
                               network={"interface": "zu0", "source_ip": SCAN_IP, "router_mac": TGT_MAC})
    files = []
    for port, (_host, _kind, _extra, _proto, probe) in TARGETS.items():
        job = dataclasses.replace(ike, name=f"udp{port}", ports=(port,),
                                  probe_args=f"hex:{probe}" if probe else ike.probe_args)
        argv = list(zmap_argv(plan, job, 1, 1, 20261202))
        outputs = [("csv", f"zmap-udp{port}.csv")] + ([("json", "zmap-udp11211.json")] if port == 11211 else [])
        for fmt, name in outputs:
            a = argv.copy()
            a[a.index("-O") + 1] = fmt
            path = os.path.join(week_dir, name)
            a[a.index("-o") + 1] = path
            r = subprocess.run(["ip", "netns", "exec", net.scan_ns, "timeout", "60", *a],
                               capture_output=True, text=True, timeout=70)
            assert r.returncode == 0, f"{name}: {r.stderr[-400:]}"
            files.append(path)
    return files, ike.probe_args.removeprefix("hex:")


def test_real_zmap_udp_replies_become_banners(lab):
    now = dt.datetime.now(dt.timezone.utc)
    week = "%d-W%02d" % now.isocalendar()[:2]
    raw, out = os.path.join(lab.work, "raw"), os.path.join(lab.work, "out")
    week_dir = os.path.join(raw, week)
    os.makedirs(week_dir)
    files, ike_probe = _scan(lab, week_dir)
    head = open(files[0], "rb").read()
    assert head.startswith(b"saddr,daddr,sport,dport,ttl,classification"), head[:200]

    manifest = process_week(RunConfig(week=week, raw=raw, out=out, allow_special_purpose=True).validate(),
                            ["--runner=FnApiRunner"])
    assert manifest["totals"]["identity_holds"] and manifest["files_damaged"] == 0
    formats = {os.path.basename(f["file"]): f.get("format") for f in manifest["files"]}
    assert formats["zmap-udp11211.json"] == "zmap-json" and formats["zmap-udp500.csv"] == "zmap-csv"
    rows = {(r["ip"], r["port"]): r for r in clean_dataset(out, week).to_table().to_pylist()}
    for port, (host, kind, extra, protocol, probe) in TARGETS.items():
        row = rows[(host, port)]
        assert (row["transport"], row["status"], row["protocol"]) == ("udp", "open", protocol), row
        sent = bytes.fromhex(probe or ike_probe)
        reply = {"memcached": sent[:2] + b"\x00\x00\x00\x01\x00\x00" + extra,
                 "ike": sent[:8] + b"respcook" + extra}.get(kind, extra)
        (text,) = banner_text_column(pa.array([reply], pa.binary()))[0].to_pylist()
        assert dict(row["banners"]) == {by_port(port, "udp").banner_types[0]: text}
    assert rows[(f"{NET}.3", 11211)]["banner_public"] == "version=1.6.18"
    assert rows[(f"{NET}.4", 500)]["banner_public"] == "IKEv1.0 exchange=5 notify=14"
    assert rows[(f"{NET}.5", 88)]["banner_public"] == "krb5 KRB-ERROR KDC_ERR_PREAUTH_REQUIRED"
    assert len(rows) == len(TARGETS)   # no other host answered on these ports
