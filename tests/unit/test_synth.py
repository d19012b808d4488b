"""The synthetic data generator writes the real tools' formats, exactly.

Writers are checked against lines the real masscan 1.3.2, zmap 2.1.1 and
zgrab2 wrote (tests/fixtures/real, tests/fixtures/zgrab2); the demo week is
checked for determinism and against its own truth by small independent
parsers defined here (not the project's readers).
"""
from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import io
import ipaddress
import itertools
import json
import math
import re
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanners.synth import content, keys
from scanners.synth import writers as w
from scanners.synth.bulk import write_bulk
from scanners.synth.demo import write_demo_week

FIX = Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIX / "real"
ZGRAB = FIX / "zgrab2"
# The page title nginx served on 198.18.0.1 (tests/fixtures/real/README.md).
TITLE = b'Fixture A &amp; "quoted" caf\xc3\xa9'


def _line(path: Path, *needles: bytes) -> bytes:
    lines = [ln for ln in path.read_bytes().splitlines(keepends=True) if all(n in ln for n in needles)]
    assert len(lines) == 1, (path, needles)
    return lines[0]


# -- masscan: byte-for-byte against the real tool ----------------------------------------

def test_title_banner_record_is_byte_identical_in_every_format():
    rec = w.MasscanRecord("198.18.0.1", 80, "tcp", 1795567041, service="title", banner=TITLE, ttl=64)
    assert w.masscan_ndjson_line(rec) == _line(REAL / "masscan_readscan.ndjson", b'"title"', b"198.18.0.1")
    assert w.masscan_oj_record(rec) == _line(REAL / "masscan_readscan.json", b'"title"', b"198.18.0.1")
    assert w.masscan_ol_line(rec) == _line(REAL / "masscan_readscan.list", b" title ", b"198.18.0.1")
    assert w.masscan_ox_record(rec) == _line(REAL / "masscan_readscan.xml", b'"title"', b"198.18.0.1")


def test_udp_status_record_is_byte_identical():
    rec = w.MasscanRecord("198.18.0.3", 11211, "udp", 1795567083, status="open", reason="none", ttl=0)
    body = w.masscan_oj_record(rec)
    assert body in (REAL / "masscan_udp11211.json").read_bytes()


def _fixture_records() -> list[w.MasscanRecord]:
    """masscan_readscan.ndjson decoded here: \\u00NN code points are bytes."""
    out = []
    for line in (REAL / "masscan_readscan.ndjson").read_bytes().splitlines():
        d = json.loads(line)
        common = (d["ip"], d["port"], d["proto"], int(d["timestamp"]))
        if d["rec_type"] == "status":
            out.append(w.MasscanRecord(*common, status=d["data"]["status"], reason=d["data"]["reason"],
                                       ttl=d["data"]["ttl"]))
        else:   # banner records carry the port's TTL (64 here) only in -oX
            out.append(w.MasscanRecord(*common, service=d["data"]["service_name"],
                                       banner=d["data"]["banner"].encode("latin-1"), ttl=64))
    return out


def test_whole_readscan_files_are_reproduced():
    # masscan --readscan wrote these five files from one scan: same records, four writers.
    recs = _fixture_records()
    assert w.masscan_ndjson(recs) == (REAL / "masscan_readscan.ndjson").read_bytes()
    assert w.masscan_oj(recs) == (REAL / "masscan_readscan.json").read_bytes()
    assert w.masscan_ol(recs) == (REAL / "masscan_readscan.list").read_bytes()
    xml = (REAL / "masscan_readscan.xml").read_bytes()
    start = int(re.search(rb'start="(\d+)"', xml)[1])
    finished = int(re.search(rb'finished time="(\d+)"', xml)[1])
    assert w.masscan_ox(recs, start, finished) == xml


def test_footerless_files_end_after_the_last_record():
    recs = _fixture_records()[:3]
    assert w.masscan_oj(recs, footer=False).endswith(b"} ] }\n")
    assert w.masscan_ol(recs, footer=False) == w.masscan_ol(recs)[: -len(b"# end\n")]


def test_smtp_and_ftp_dialogues_match_masscan():
    smtp = _line(REAL / "masscan_readscan.ndjson", b'"smtp"')
    want = json.loads(smtp)["data"]["banner"].encode("latin-1")
    got = w.masscan_dialogue([b"220 localhost Python SMTP 1.4.3", b"250-localhost", b"250-8BITMIME",
                              b"250 HELP"], b"454 TLS not available")
    assert got == want
    # masscan closes the connection at a non-printable byte and keeps what came before.
    assert w.masscan_dialogue([b"220 Pe\xf1a FTP"], b"530 x") == b"220 Pe"


# -- zmap and zgrab2 --------------------------------------------------------------

@pytest.mark.parametrize("name", ["zmap_p22.csv", "zmap_p80_all_responses.csv"])
def test_zmap_csv_is_reproduced(name):
    raw = (REAL / name).read_bytes()
    rows = []
    for row in csv.DictReader(io.StringIO(raw.decode())):
        stamps = w.zmap_timestamps(int(row["timestamp-ts"]) * 1_000_000 + int(row["timestamp-us"]))
        rows.append({**row, **stamps})
    assert w.zmap_csv(w.ZMAP_TCP_FIELDS, rows) == raw


@pytest.mark.parametrize("path", sorted(ZGRAB.glob("*.json")), ids=lambda p: p.name)
def test_go_json_reencodes_zgrab2_output_exactly(path):
    raw = path.read_bytes().rstrip(b"\n")
    assert w.go_json(json.loads(raw)).encode("utf-8") == raw


def test_zgrab2_module_results_match_fixtures():
    ssh = json.loads((ZGRAB / "ssh-ssh.json").read_bytes())["data"]["ssh"]["result"]
    assert w.ssh_server_id(ssh["server_id"]["raw"]) == ssh["server_id"]
    hk = ssh["key_exchange"]["server_host_key"]
    assert hashlib.sha256(base64.b64decode(hk["raw"])).hexdigest() == hk["fingerprint_sha256"]
    mysql = json.loads((ZGRAB / "mysql-5.5.json").read_bytes())["data"]["mysql"]["result"]
    scramble = base64.b64decode(mysql["auth_plugin_data"])[:20]
    mine = w.zgrab2_mysql_result(mysql["server_version"], mysql["connection_id"], scramble)
    assert w.go_json(mine) == w.go_json(mysql)          # same keys, same order, same packet bytes
    pg = json.loads((ZGRAB / "postgres-9.3-nossl.json").read_bytes())["data"]["postgres"]["result"]
    assert w.go_json(w.zgrab2_postgres_result(1995, 2090)) == w.go_json(pg)
    ms = json.loads((ZGRAB / "mssql-2017-linux.json").read_bytes())["data"]["mssql"]["result"]
    ms.pop("tls")
    assert w.go_json(w.zgrab2_mssql_result(14, 0, 3015, "ENCRYPT_ON")) == w.go_json(ms)


@pytest.mark.parametrize("name", ["ftp-default.json", "smtp-ehlo.04.json"])
def test_zgrab2_banner_lines_are_byte_identical(name):
    raw = (ZGRAB / name).read_bytes().rstrip(b"\n")
    d = json.loads(raw)
    (module, resp), = d["data"].items()
    ts = int(datetime.datetime.strptime(resp["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
             .replace(tzinfo=datetime.UTC).timestamp())
    line = w.zgrab2_line(d["ip"], module, resp["status"], ts, domain=d["domain"],
                         result=w.zgrab2_banner_result(**resp["result"]))
    assert line == raw + b"\n"


def test_ssh_keys():
    # RFC 8032 section 7.1, test 1: secret key -> public key.
    k = keys.ed25519_key(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert base64.b64decode(k.json["ed25519_public_key"]["public_bytes"]).hex() == \
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    # mpint: 0x80 needs a leading zero byte (RFC 4251 section 5).
    assert w.ssh_rsa_wire(65537, 0x80) == b"\0\0\0\x07ssh-rsa" + b"\0\0\0\x03\x01\x00\x01" + b"\0\0\0\x02\x00\x80"
    import random
    p1 = keys.random_prime(160, random.Random(5), avoid=(5, 7))
    assert p1 == keys.random_prime(160, random.Random(5), avoid=(5, 7)) and p1.bit_length() == 160
    assert all(pow(a, p1 - 1, p1) == 1 for a in (2, 3, 5, 7, 11, 13)) and p1 % 5 != 1 and p1 % 7 != 1


# -- properties over arbitrary bytes ------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_escapes_round_trip_and_stay_inert(data):
    j = w.masscan_json_escape(data)
    assert json.loads('"' + j + '"').encode("latin-1") == data
    t = w.masscan_text_escape(data)
    assert re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m[1], 16)), t).encode("latin-1") == data
    for out in (j, t):
        assert out.isascii() and out.isprintable() and not set(out) & set("<>&\"'")
    line = w.masscan_ndjson_line(w.MasscanRecord("192.0.2.1", 1, "tcp", 0, service="x", banner=data))
    assert line.count(b"\n") == 1 and json.loads(line)["data"]["banner"].encode("latin-1") == data


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=4), st.binary(max_size=40))
def test_dialogue_keeps_printable_ascii_only(lines, reply):
    out = w.masscan_dialogue(lines, reply)
    assert all(0x20 <= b < 0x7F or b == 0x0A for b in out)


@given(st.text(max_size=100))
def test_go_json_is_html_safe_json(text):
    out = w.go_json({"banner": text})
    assert json.loads(out) == {"banner": text} and not set(out) & set("<>&")


# -- the demo week ---------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    return root, write_demo_week(str(root))


def test_demo_week_is_deterministic(demo, tmp_path):
    root, truth = demo
    again = write_demo_week(str(tmp_path))
    assert again == truth
    names = sorted(p.name for p in (root / "2013-W37").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "2013-W37").iterdir()) and len(names) >= 12
    for name in names:
        assert (root / "2013-W37" / name).read_bytes() == (tmp_path / "2013-W37" / name).read_bytes(), name
    assert (root / "2013-W37.truth.json").read_bytes() == (tmp_path / "2013-W37.truth.json").read_bytes()


_ZGRAB_PORTS = {"ssh": 22, "mysql": 3306, "mssql": 1433, "postgres": 5432}


def _parse(path: Path):
    """(ip, port, transport, effect, banner, raw line) per complete record."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = zlib.decompressobj(wbits=31).decompress(raw)
    out, name = [], path.name
    if ".ndjson" in name:
        for line in raw.split(b"\n")[:-1]:          # the tail is "" or a cut record
            d = json.loads(line)
            banner = d["data"]["banner"].encode("latin-1") if d["rec_type"] == "banner" else None
            out.append((d["ip"], d["port"], d["proto"], d["data"].get("status", "open"), banner, line))
    elif name.endswith(".json"):
        for d in json.loads(raw):
            p = d["ports"][0]
            banner = p["service"]["banner"].encode("latin-1") if "service" in p else None
            out.append((d["ip"], p["port"], p["proto"], p.get("status", "open"), banner, None))
    elif name.endswith(".list"):
        for line in raw.decode("ascii").splitlines():
            if not line.startswith("#"):
                f = line.split(" ", 6)
                banner = re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m[1], 16)), f[6]).encode("latin-1") \
                    if f[0] == "banner" else None
                out.append((f[3], int(f[2]), f[1], "open", banner, None))
    elif name.endswith(".xml"):
        for m in re.finditer(r'addr="([^"]+)" addrtype="ipv4"/><ports><port protocol="(\w+)" portid="(\d+)">'
                             r'<state state="(\w+)"', raw.decode("ascii")):
            out.append((m[1], int(m[3]), m[2], m[4], None, None))
    elif name.endswith(".csv"):
        for row in csv.DictReader(io.StringIO(raw.decode("ascii"))):
            proto = "udp" if "udp_pkt_size" in row else "tcp"
            out.append((row["saddr"], int(row["sport"]), proto, "open" if row["success"] == "1" else "closed",
                        None, row["repeat"]))
    else:
        for line in raw.splitlines():
            (module, resp), = json.loads(line)["data"].items()
            effect = "open" if resp["status"] in ("success", "io-timeout") else "no_response"
            out.append((json.loads(line)["ip"], _ZGRAB_PORTS[module], "tcp", effect, None, line))
    return out


@pytest.fixture(scope="module")
def parsed(demo):
    root, _ = demo
    return {p.name: _parse(p) for p in sorted((root / "2013-W37").iterdir())}


def test_truth_matches_the_files(demo, parsed):
    root, truth = demo
    assert not list((root / "2013-W37").glob("*truth*"))
    seen: dict = {}
    for name, recs in parsed.items():
        f = truth["files"][name]
        assert len(recs) == f["records_complete"], name
        assert f["records_written"] == f["records_complete"] + f["records_lost_to_truncation"]
        for ip, port, proto, effect, *_ in recs:
            seen.setdefault((ip, port, proto), set()).add(effect)
    counts: dict = {}
    for (_, port, proto), effects in seen.items():
        status = "open" if "open" in effects else "closed" if "closed" in effects else "no_response"
        counts.setdefault(f"{port}/{proto}", {"open": 0, "closed": 0, "no_response": 0})[status] += 1
    assert counts == truth["observations"]
    assert 20_000 <= truth["total_open_observations"] <= 40_000
    assert 0.01 < truth["ipv6_observations"] / truth["total_observations"] < 0.04
    assert all(ipaddress.ip_address(ip).is_global for ip, _, _ in seen)
    assert truth["observations"]["22/tcp"]["no_response"] < 10   # zgrab2 timeouts where masscan saw open


def test_damage_is_where_the_truth_says(demo, parsed):
    root, truth = demo
    cut = [n for n, f in truth["files"].items() if f["records_lost_to_truncation"]]
    assert len(cut) == 1 and cut[0].endswith(".ndjson.gz")
    data = zlib.decompressobj(wbits=31).decompress((root / "2013-W37" / cut[0]).read_bytes())
    assert len(data) == truth["files"][cut[0]]["recoverable_bytes"] and not data.endswith(b"\n")
    open_ended = [n for n, f in truth["files"].items() if not f["footer"]]
    assert open_ended == ["masscan-p21.list"]
    assert not (root / "2013-W37" / open_ended[0]).read_bytes().endswith(b"# end\n")
    for name, recs in parsed.items():
        f = truth["files"][name]
        if ".ndjson" in name and not f["records_lost_to_truncation"]:
            dups = sum(1 for a, b in itertools.pairwise(recs) if a[5] == b[5])
        elif name.endswith(".csv"):
            dups = sum(1 for r in recs if r[5] == "1")
        else:
            continue
        assert dups == f["duplicates_injected"] > 0, name
    assert truth["observations_in_several_files"] > 100


def test_single_responder_and_many_port_hosts(demo, parsed):
    _, truth = demo
    net = ipaddress.ip_network(truth["single_responder"]["network"])
    banners: dict = {}
    for recs in parsed.values():
        for ip, port, _, _, banner, _ in recs:
            if ipaddress.ip_address(ip) in net and banner is not None:
                banners.setdefault(port, {}).setdefault(ip, set()).add(banner)
    # Every address answers 80; on 22 the truncated shard cost a few of them.
    assert truth["single_responder"]["open_observations"]["80/tcp"] == len(banners[80]) == 256
    assert 200 < truth["single_responder"]["open_observations"]["22/tcp"] <= 256
    for port in (22, 80):
        assert len({frozenset(b) for b in banners[port].values()}) == 1   # byte-identical everywhere
    ports: dict = {}
    for recs in parsed.values():
        for ip, port, *_ in recs:
            ports.setdefault(ip, set()).add(port)
    assert sorted(ip for ip, p in ports.items() if len(p) > 100) == truth["many_port_hosts"]


def test_ssh_host_keys_share_keys_and_one_prime(demo, parsed):
    _, truth = demo
    by_fp, moduli = {}, {}
    for *_, line in parsed["zgrab2-ssh-p22.jsonl"]:
        d = json.loads(line)
        resp = d["data"]["ssh"]
        if resp["status"] != "success":
            continue
        hk = resp["result"]["key_exchange"]["server_host_key"]
        wire = base64.b64decode(hk["raw"])
        assert hashlib.sha256(wire).hexdigest() == hk["fingerprint_sha256"]
        by_fp.setdefault(hk["fingerprint_sha256"], []).append(d["ip"])
        if hk["algorithm"] == "ssh-rsa":
            rsa = hk["rsa_public_key"]
            n = int.from_bytes(base64.b64decode(rsa["modulus"]), "big")
            assert wire.endswith(n.to_bytes(n.bit_length() // 8 + 1, "big")) and rsa["length"] == n.bit_length()
            moduli.setdefault(n, []).append(d["ip"])
        else:
            assert wire.endswith(base64.b64decode(hk["ed25519_public_key"]["public_bytes"]))
    assert sorted(sorted(ips) for ips in by_fp.values() if len(ips) > 1) == \
        sorted(g["hosts"] for g in truth["ssh_keys"]["shared_key_groups"])
    pairs = [(a, b) for a in moduli for b in moduli if a < b and math.gcd(a, b) > 1]
    assert len(pairs) == 1
    assert sorted(moduli[pairs[0][0]] + moduli[pairs[0][1]]) == truth["ssh_keys"]["shared_prime_hosts"]
    assert truth["ssh_keys"]["by_algorithm"].get("ssh-ed25519-256", 0) > 0


def test_every_private_string_in_banners_is_in_the_truth(demo, parsed):
    _, truth = demo
    text = b"\n".join(r[4] for recs in parsed.values() for r in recs if r[4]).decode("latin-1")
    assert set(re.findall(r"[\w.+-]+@[\w.-]+\w", text)) == set(truth["banner_emails"]) != set()
    assert set(re.findall(r"\[([0-9a-f:.]{7,})\]", text)) == set(truth["banner_ips"])
    assert all(name in text for name in truth["banner_hostnames"]) and len(truth["banner_hostnames"]) > 100
    hostile = [b"<script>alert(1)</script>", b"P\xe1gina", "Café".encode()]
    assert all(h.decode("latin-1") in text for h in hostile)


# -- bulk -------------------------------------------------------------------------

def test_bulk_is_exact_deterministic_and_masscan_shaped(tmp_path):
    a = write_bulk(str(tmp_path / "a"), 30_000, shards=3, seed=7)
    b = write_bulk(str(tmp_path / "b"), 30_000, shards=3, seed=7)
    assert a == b and a["records"] == 30_000
    idents = {s.encode() for s in content.SSH_IDENTS}
    skeleton = re.sub(rb'"(ip|timestamp)":"[^"]*"|"(port|ttl)":\d+', b"",
                      _line(REAL / "masscan_readscan.ndjson", b"198.18.0.2", b'"port":22', b"status"))
    for name, info in a["files"].items():
        blob = (tmp_path / "a" / name).read_bytes()
        assert blob == (tmp_path / "b" / name).read_bytes()
        lines = zlib.decompress(blob, wbits=31).splitlines()
        assert len(lines) == info["records"]
        assert sum(1 for x, y in itertools.pairwise(lines) if x == y) == info["duplicates"] > 0
        stamps = [int(json.loads(x)["timestamp"]) for x in lines]
        assert stamps == sorted(stamps)
        for line in lines:
            d = json.loads(line)
            if d["rec_type"] == "banner":
                assert d["data"]["banner"].encode() in idents and d["port"] == 22
            else:
                assert re.sub(rb'"(ip|timestamp)":"[^"]*"|"(port|ttl)":\d+', b"", line) == skeleton.rstrip(b"\n")
