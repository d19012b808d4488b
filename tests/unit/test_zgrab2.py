"""zgrab2 JSON Lines reader against zgrab2's captured outputs in
tests/fixtures/zgrab2/ (each compacted to one line, as zgrab2 writes them)."""
from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipelines.schema import DamageKind
from scanners import registry
from scanners.base import ReadContext
from scanners.formats import zgrab2, zmap
from tests.helpers import quarantine_reasons, read_in_chunks

ZG = Path(__file__).parents[1] / "fixtures" / "zgrab2"
REAL = Path(__file__).parents[1] / "fixtures" / "real"
NAMES = sorted(p.name for p in ZG.glob("*.json"))
UTC = dt.timezone.utc


def obj(name: str) -> dict:
    return json.loads((ZG / name).read_text())


def line(o) -> bytes:
    return json.dumps(o, separators=(",", ":")).encode()


def jsonl(*objs) -> bytes:
    return b"".join(line(o) + b"\n" for o in objs)


def run(data: bytes, chunk: int | None = None):
    ctx = ReadContext(source="scan.jsonl")
    return ctx, read_in_chunks(zgrab2.read, data, ctx, chunk).to_pylist()


def module(status="success", protocol="ftp", result=None, **extra):
    return {"status": status, "protocol": protocol, "result": result or {},
            "timestamp": "2018-04-06T19:37:52Z", **extra}


def target(ip="192.0.2.1", **modules):
    return {"ip": ip, "data": modules}


# service -> banner the fixture's README documents; postgres has none.
EXPECTED = {
    "ssh-ssh.json": (22, "ssh", b"SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.4"),
    "ftp-default.json": (21, "ftp", b"220 (vsFTPd 3.0.3)\r\n"),
    "ftp-authtls.json": (21, "ftp", b"220 (vsFTPd 3.0.3)\r\n"),
    "http-http.json": (80, "http.server", b"lighttpd/1.4.35"),
    "http-https.json": (443, "http.server", b"lighttpd/1.4.35"),
    "memcached-1.6.0.json": (11211, "memcached", b"1.6.0\r"),
    "memcached-1.6.38.json": (11211, "memcached", b"1.6.38\r"),
    "mssql-2017-linux.json": (1433, "mssql", b"14.0.3015"),
    "mysql-5.5.json": (3306, "mysql", b"5.5.58"),
    "mysql-5.6.json": (3306, "mysql", b"5.6.38"),
    "mysql-5.7.json": (3306, "mysql", b"5.7.20"),
    "mysql-8.0.json": (3306, "mysql", b"8.0.3-rc-log"),
    "pop3-banner.json": (110, "pop3", b"+OK\r\n"),
    "telnet-telnet.json": (23, "telnet", b"Ubuntu 16.04.3 LTS\r\n5a3511f30de7 login: "),
    "smtp-00.json": (25, "smtp", b"220 ba06a6536f7e ESMTP qpsmtpd 0.94 ready; send us your mail, but not your spam.\r\n"),
}


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_reads_cleanly(name):
    data = line(obj(name)) + b"\n"
    assert zgrab2.sniff(data) and not any(f.sniff(data) for f in zmap.FORMATS)
    assert registry.sniff_format(data).name == "zgrab2-jsonl"
    ctx, rows = run(data)
    assert ctx.quarantined == 0 and not ctx.damages
    status = [r for r in rows if r["status"] is not None]
    assert len(status) == 1 and status[0]["status"] == "open" and status[0]["reason"] == "success"
    assert status[0]["ip"] == obj(name)["ip"] and status[0]["transport"] == "tcp"
    if name in EXPECTED:
        port, service, banner = EXPECTED[name]
        assert [(r["port"], r["service"], r["banner"]) for r in rows] == [(port, None, None), (port, service, banner)]
    elif name.startswith("postgres"):
        assert [r["port"] for r in rows] == [5432]


def test_all_fixtures_in_one_file():
    data = jsonl(*(obj(n) for n in NAMES))
    ctx, rows = run(data, chunk=997)
    assert ctx.quarantined == 0
    assert sum(r["status"] is not None for r in rows) == len(NAMES)
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 10][:-1]
    assert sorted({r["source_offset"] for r in rows}) == starts
    assert {r["banner"] for r in rows if r["service"] == "mysql"} == {b"5.5.58", b"5.6.38", b"5.7.20", b"8.0.3-rc-log"}


def test_timestamps_are_utc_microseconds():
    _, rows = run(jsonl(obj("ssh-ssh.json")))
    assert rows[0]["timestamp"] == dt.datetime(2018, 4, 6, 19, 42, 32, tzinfo=UTC)
    t = target(ftp=module(result={"banner": "220 hi"}) | {"timestamp": "2018-04-06T21:42:32.123456789+02:00"})
    _, rows = run(jsonl(t))
    assert rows[0]["timestamp"] == dt.datetime(2018, 4, 6, 19, 42, 32, 123456, tzinfo=UTC)


def test_multi_module_line_gives_rows_per_module():
    ssh = obj("ssh-ssh.json")["data"]["ssh"]
    http = obj("http-http.json")["data"]["http"]
    _, rows = run(jsonl(target(ssh=ssh, web8080=http | {"port": 8080})))
    assert [(r["port"], r["service"]) for r in rows] == [(22, None), (22, "ssh"), (8080, None), (8080, "http.server")]


@pytest.mark.parametrize("status,expected", [
    ("success", "open"), ("application-error", "open"), ("protocol-error", "open"),
    ("handshake-error", "open"), ("post-tls-application-error", "open"), ("io-timeout", "open"),
    ("connection-closed", "open"), ("connection-refused", "closed"), ("connection-timeout", "no_response"),
    ("unknown-error", "no_response"), ("blocklisted-target", "no_response"), ("invalid-inputs", "no_response"),
])
def test_status_mapping(status, expected):
    _, rows = run(jsonl(target(ftp=module(status, error="x"))))
    assert [(r["status"], r["reason"], r["port"]) for r in rows] == [(expected, status, 21)]


def test_redirect_to_https_keeps_scanned_port():
    https = obj("http-https.json")["data"]["http"]
    plain = copy.deepcopy(obj("http-http.json")["data"]["http"]["result"]["response"])
    https = copy.deepcopy(https)
    https["result"]["redirect_response_chain"] = [plain]
    _, rows = run(jsonl(target(http=https)))
    assert {r["port"] for r in rows} == {80}


def test_udp_module_and_generic_banner_and_unknown_module():
    ok = target(ntp=module(protocol="ntp"), banner=module(protocol="banner", result={"banner": "hello"}, port=7))
    _, rows = run(jsonl(ok))
    assert [(r["port"], r["transport"], r["service"], r["banner"]) for r in rows] == [
        (123, "udp", None, None), (7, "tcp", None, None), (7, "tcp", "banner", b"hello")]
    ctx, rows = run(jsonl(target(weird=module(protocol="weird"))))
    assert rows == [] and quarantine_reasons(ctx) == ["missing_field"]


def test_hostile_lines_are_quarantined_and_neighbours_kept():
    good = line(obj("ftp-default.json"))
    bad = [b'{"ip": "1.2.3.4", "data": {"ftp": {"status"', b"[" * 100_000, b"\xff\xfe{}",
           line(target(ftp=module("made-up"))), line(target(ftp=module() | {"timestamp": "2018-04-06 19:37"})),
           line(target(ftp=module(port=70000))), line({"domain": "x", "data": {"ftp": module()}}),
           line({"ip": "1.2.3.4", "data": {}}), line(target(ftp="nope")), b"42"]
    data = b"\n".join([good] + bad + [good]) + b"\n"
    ctx, rows = run(data)
    assert len(rows) == 4 and {r["source_offset"] for r in rows} == {0, data.rindex(good)}
    assert quarantine_reasons(ctx) == ["malformed_record", "malformed_record", "malformed_record", "malformed_record",
                                       "invalid_timestamp", "invalid_port", "missing_field", "missing_field",
                                       "malformed_record", "malformed_record"]


def test_truncated_last_line():
    data = jsonl(obj("ftp-default.json"), obj("ssh-ssh.json"))[:-40]
    ctx, rows = run(data)
    assert len(rows) == 2 and quarantine_reasons(ctx) == ["truncated_record"]
    assert [d.kind for d in ctx.damages] == [DamageKind.PARTIAL_LAST_RECORD]
    ctx, rows = run(jsonl(obj("ftp-default.json")).rstrip(b"\n"))   # complete object, no newline
    assert len(rows) == 2 and not ctx.damages


def test_sniff_rejects_other_json():
    for name in ["zmap_p22.json", "zmap_p22.metadata.json", "masscan.ndjson", "masscan.json", "zmap_p22.csv"]:
        assert not zgrab2.sniff((REAL / name).read_bytes()[:registry.SNIFF_BYTES]), name


def test_sniff_first_line_longer_than_window():
    http = copy.deepcopy(obj("http-http.json"))
    http["data"]["http"]["result"]["response"]["body"] = "x" * (registry.SNIFF_BYTES * 2)
    head = jsonl(http)[:registry.SNIFF_BYTES]
    assert b"\n" not in head and zgrab2.sniff(head)


def test_ssh_host_key_ecdsa_fixture():
    result = obj("ssh-ssh.json")["data"]["ssh"]["result"]
    key = zgrab2.ssh_host_key(result)
    raw = base64.b64decode(result["key_exchange"]["server_host_key"]["raw"])
    assert key["algorithm"] == "ecdsa-sha2-nistp256"
    assert key["fingerprint_sha256"] == hashlib.sha256(raw).hexdigest() \
        == "691e8c65d86720d072fc5610f8976df184af64a91aea986a2de55a1abc0179dc"
    assert key["modulus"] is key["exponent"] is key["length"] is None


def _mpint(n: int) -> bytes:
    b = n.to_bytes(n.bit_length() // 8 + 1, "big")       # leading 0 keeps it positive
    return len(b).to_bytes(4, "big") + b


def test_ssh_host_key_rsa():
    n = (1 << 2047) | 0x1234567 | 1
    wire = len(b"ssh-rsa").to_bytes(4, "big") + b"ssh-rsa" + _mpint(65537) + _mpint(n)
    mod = n.to_bytes(256, "big")
    full = {"algorithm": "ssh-rsa", "raw": base64.b64encode(wire).decode(),
            "rsa_public_key": {"exponent": 65537, "modulus": base64.b64encode(mod).decode(), "length": 2048}}
    expect = {"algorithm": "ssh-rsa", "fingerprint_sha256": hashlib.sha256(wire).hexdigest(),
              "modulus": mod, "exponent": 65537, "length": 2048}
    assert zgrab2.ssh_host_key({"key_exchange": {"server_host_key": full}}) == expect
    wire_only = {k: v for k, v in full.items() if k != "rsa_public_key"}
    assert zgrab2.ssh_host_key({"key_exchange": {"server_host_key": wire_only}}) == expect
    assert zgrab2.ssh_host_key({"server_id": {}}) is None
    assert zgrab2.ssh_host_key({"key_exchange": {"server_host_key": {"raw": "!!"}}}) is None


HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=12)


@HOSTILE
@given(st.binary(max_size=600), st.integers(1, 64))
def test_arbitrary_bytes_never_raise(data, chunk):
    run(data, chunk)


@HOSTILE
@given(JSON, st.sampled_from(["ssh", "http", "ftp", "mysql", "memcached", "zz"]),
       st.sampled_from(["status", "protocol", "port", "timestamp", "result"]))
def test_random_json_in_module_fields(value, proto, field):
    mod = module(protocol=proto, result={"banner": "b"}) | {field: value}
    run(jsonl(target(**{proto: mod}), {"ip": value, "data": {proto: value}}))
    zgrab2.ssh_host_key({"key_exchange": {"server_host_key": value}})
    zgrab2.banners(proto, value)


def test_ssh_fixture_host_key_reaches_the_raw_columns():
    import json as _json
    import os as _os

    from scanners.base import ReadContext as _Ctx
    from scanners.formats import zgrab2 as _z
    path = _os.path.join(_os.path.dirname(__file__), "..", "fixtures", "zgrab2", "ssh-ssh.json")
    obj = _json.load(open(path))
    line = (_json.dumps(obj) + "\n").encode()
    ctx = _Ctx("ssh.jsonl")
    rows = [r for b in _z.read(iter([line]), ctx) for r in b.to_pylist()]
    status = [r for r in rows if r["status"] is not None]
    assert len(status) == 1
    hk = obj["data"]["ssh"]["result"]["key_exchange"]["server_host_key"]
    assert status[0]["key_algorithm"] == hk["algorithm"] == "ecdsa-sha2-nistp256"
    assert status[0]["key_fingerprint_sha256"] == hk["fingerprint_sha256"]
    assert status[0]["key_bits"] == 256 and status[0]["rsa_modulus"] is None
    # banner rows carry no key: the merge takes it from the status row
    assert all(r["key_fingerprint_sha256"] is None for r in rows if r["status"] is None)


# -- ports from evidence (issue 15) ---------------------------------------------

def _http(scheme: str, host: str) -> dict:
    h = copy.deepcopy(obj("http-http.json")["data"]["http"])
    h["result"]["response"]["request"]["url"] = {"scheme": scheme, "host": host, "path": "/"}
    return h


@pytest.mark.parametrize("scheme,host,port", [
    ("http", "192.0.2.1:8080", 8080), ("https", "192.0.2.1:8443", 8443), ("http", "192.0.2.1:443", 443),
    ("https", "192.0.2.1", 443), ("http", "192.0.2.1", 80), ("http", "[2001:db8::1]:8080", 8080),
    ("http", "[2001:db8::1]", 80), ("https", "target", 443),
])
def test_http_port_comes_from_the_request_url(scheme, host, port):
    ctx, rows = run(jsonl(target(http=_http(scheme, host))))
    assert {(r["port"], r["port_source"]) for r in rows} == {(port, None)}
    assert "ports_assumed" not in ctx.facts


def test_two_http_services_of_one_host_stay_apart():
    lines = jsonl(target(http=_http("https", "192.0.2.1")), target(http=_http("http", "192.0.2.1:8080")))
    _, rows = run(lines)
    assert sorted({r["port"] for r in rows}) == [443, 8080]


def test_port_from_the_network_error_of_a_failed_dial():
    t = target(smtp=module("connection-timeout", "smtp", error="dial tcp 192.0.2.1:587: i/o timeout"),
               imap=module("io-timeout", "imap", error="read tcp 198.51.100.7:40000->192.0.2.1:993: i/o timeout"),
               pop3=module("connection-refused", "pop3", error="dial tcp 203.0.113.9:995: refused"))
    ctx, rows = run(jsonl(t))
    # The pop3 error names another host: not evidence for this target.
    assert [(r["port"], r["port_source"]) for r in rows] == [(587, None), (993, None), (110, "assumed")]
    assert ctx.facts["ports_assumed"] == 1


def test_sidecar_port_beats_the_default_and_default_is_marked_assumed():
    data = jsonl(target(ftp=module(result={"banner": "220 hi"})))
    ctx = ReadContext(source="scan.jsonl", facts={"port_hint": 2121})
    rows = read_in_chunks(zgrab2.read, data, ctx).to_pylist()
    assert {(r["port"], r["port_source"]) for r in rows} == {(2121, "sidecar")}
    assert "ports_assumed" not in ctx.facts
    ctx, rows = run(data)
    assert {(r["port"], r["port_source"]) for r in rows} == {(21, "assumed")}
    assert ctx.facts["ports_assumed"] == 1     # one module record (its banner row is the same record)


def test_record_port_field_wins_over_the_sidecar():
    data = jsonl(target(ftp=module(result={"banner": "220 hi"}, port=2100)))
    ctx = ReadContext(source="scan.jsonl", facts={"port_hint": 2121})
    rows = read_in_chunks(zgrab2.read, data, ctx).to_pylist()
    assert {(r["port"], r["port_source"]) for r in rows} == {(2100, None)}


def test_missing_timestamp_takes_the_file_time_else_stays_null():
    m = module(result={"banner": "220 hi"})
    del m["timestamp"]
    ctx = ReadContext(source="scan.jsonl", facts={"scan_start_us": 1_700_000_000_000_000})
    rows = read_in_chunks(zgrab2.read, jsonl(target(ftp=m)), ctx).to_pylist()
    assert {r["timestamp"] for r in rows} == {dt.datetime.fromtimestamp(1_700_000_000, UTC)}
    ctx, rows = run(jsonl(target(ftp=dict(m, timestamp=None))))
    assert ctx.quarantined == 0 and {r["timestamp"] for r in rows} == {None}   # validation decides
    ctx, rows = run(jsonl(target(ftp=dict(m, timestamp="yesterday"))))
    assert rows == [] and quarantine_reasons(ctx) == ["invalid_timestamp"]
