"""zmap formats known by their own fields (issue 15, item 4): zmap JSON only
with zmap's field set, other JSON with an ``saddr`` is ``unknown_format``;
the udp module's ``data`` (hex) is the banner of the UDP protocols the
project knows. References: the real zmap 2.1.1 outputs in tests/fixtures/real/
(zmap_udp500.csv: the plan's IKE probe against a responder, see its README)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.schema import DamageKind
from scanners import registry
from scanners.base import ReadContext
from scanners.formats import zmap, zmap_common
from scanners.protocols import by_port, ike, module
from tests.helpers import read_in_chunks

REAL = Path(__file__).parents[1] / "fixtures" / "real"
FMT = {f.name: f for f in zmap.FORMATS}
UDP_HEADER = ("saddr,daddr,sport,dport,ttl,classification,success,repeat,cooldown,timestamp-str,"
              "timestamp-ts,timestamp-us,udp_pkt_size,data")

# One line as LZR (stanford-esrg/lzr, packet.go's packet_metadata marshalled
# by encoding/json) writes it: saddr/sport/dport/seqnum like zmap, but also
# its own capitalised fields, a raw (not hex) ``data`` and no zmap system field.
LZR_LINE = json.dumps({
    "saddr": "198.18.0.1", "daddr": "198.18.0.200", "sport": 80, "dport": 40123, "seqnum": 1234,
    "acknum": 5678, "window": 64240, "Counter": 0, "ACK": True, "ACKed": True, "SYN": False,
    "RST": False, "FIN": False, "PUSH": True, "HandshakeNum": 0, "fingerprint": "http",
    "Timestamp": "2026-11-25T00:38:14.798123Z", "expectedRToLZR": "data",
    "data": "HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n"}).encode()


def read(data: bytes, source: str = "x", **facts):
    ctx = ReadContext(source=source, facts=dict(facts))
    return ctx, read_in_chunks(lambda chunks, c: registry.read_file_chunks(chunks, c), data, ctx, None)


def test_lzr_json_is_unknown_format_not_zmap_udp():
    data = LZR_LINE + b"\n" + LZR_LINE + b"\n"
    assert not FMT["zmap-json"].sniff(data) and registry.sniff_format(data) is None
    ctx, t = read(data)
    assert t.num_rows == 0 and ctx.facts["format"] == "unknown"
    assert [d.kind for d in ctx.damages] == [DamageKind.UNKNOWN_FORMAT]


@pytest.mark.parametrize("obj,claimed", [
    ({"saddr": "198.18.0.1"}, False),                                        # no zmap field but saddr
    ({"saddr": "198.18.0.1", "sport": 80, "dport": 4000}, False),            # fields any tool has
    ({"saddr": "198.18.0.1", "success": 1}, True),
    ({"saddr": "198.18.0.1", "classification": "synack", "Note": "x"}, False),  # a key zmap never writes
    ({"saddr": "198.18.0.1", "sport": 22, "timestamp_str": "2026-11-25T00:38:14.798+0000"}, True),  # zmap 3
    ({"saddr": "198.18.0.1", "saddr-raw": 16912070}, True),
    ({"ip": "198.18.0.1", "success": 1}, False),
])
def test_zmap_json_needs_zmaps_own_fields(obj, claimed):
    assert FMT["zmap-json"].sniff(json.dumps(obj).encode() + b"\n") is claimed


def test_real_zmap_json_still_claimed():
    head = (REAL / "zmap_p22.json").read_bytes()[:registry.SNIFF_BYTES]
    assert registry.sniff_format(head).name == "zmap-json"


def test_real_udp500_reply_is_an_ike_banner():
    data = (REAL / "zmap_udp500.csv").read_bytes()
    assert registry.sniff_format(data).name == "zmap-csv"
    ctx, t = read(data, source="zmap_udp500.csv")
    assert ctx.quarantined == 0 and not ctx.damages
    (row,) = t.to_pylist()
    assert (row["ip"], row["port"], row["transport"], row["status"]) == ("198.18.1.4", 500, "udp", "open")
    hexdata = data.rstrip(b"\n").split(b"\n")[1].split(b",")[-1].decode()
    assert row["service"] == "isakmp" and row["banner"] == bytes.fromhex(hexdata)
    parsed = ike.parse(row["banner"], row["service"])
    # The responder's reply: cookies echoed, Informational exchange, NO-PROPOSAL-CHOSEN (14).
    assert parsed.valid and parsed.exchange_type == 5 and parsed.notify_types == (14,)


def _udp_csv(port: int, payload: bytes | str) -> bytes:
    hexdata = payload if isinstance(payload, str) else payload.hex()
    return (f"{UDP_HEADER}\n198.18.1.4,198.18.1.200,{port},40549,64,udp,1,0,0,"
            f"2026-12-02T09:19:13.415+0000,1796203153,415700,{8 + len(hexdata) // 2},{hexdata}\n").encode()


# Replies as the project's protocol modules read them (their own tests hold
# the real captures); here only: the bytes reach the right banner type.
@pytest.mark.parametrize("port,payload,protocol", [
    (11211, b"\x00\x01\x00\x00\x00\x01\x00\x00STAT pid 1\r\nSTAT version 1.6.18\r\nEND\r\n", "memcached"),
    (500, bytes.fromhex("706f727463656e7372657370636f6f6b0b10050000000000000000280000000c000000010100000e"), "ike"),
    (4500, bytes.fromhex("706f727463656e7372657370636f6f6b0b10050000000000000000280000000c000000010100000e"), "ike"),
    (88, bytes.fromhex("7e5a3058a003020105a10302011ea411180f32303236313230323039313931335aa50302010ba903"
                       "1b01"), "kerberos"),
    (389, bytes.fromhex("300c02010165070a010004000400"), "ldap"),
])
def test_udp_data_is_the_known_protocols_banner(port, payload, protocol):
    _, t = read(_udp_csv(port, payload))
    (row,) = t.to_pylist()
    assert row["service"] == by_port(port, "udp").banner_types[0] == zmap_common.udp_banner_type(port)
    assert row["banner"] == payload and by_port(port, "udp").name == protocol
    module(protocol).parse(row["banner"], row["service"])   # the protocol reads it without raising


def test_udp_data_on_an_unknown_port_is_a_status_only():
    _, t = read(_udp_csv(9999, b"hello"))
    (row,) = t.to_pylist()
    assert row["status"] == "open" and row["service"] is None and row["banner"] is None


def test_udp_empty_payload_is_no_banner_and_bad_hex_is_malformed():
    data = _udp_csv(11211, b"") + _udp_csv(11211, "zz01").split(b"\n", 1)[1] + \
        _udp_csv(11211, "abc").split(b"\n", 1)[1]
    ctx, t = read(data)
    assert t.num_rows == 1 and t.column("banner").to_pylist() == [None]
    q = ctx.take_quarantine().to_pylist()
    assert [r["reason"] for r in q] == ["malformed_record"] * 2 and q[0]["detail"] == "data is not hex"


def test_udp_json_data_is_the_banner_too():
    payload = b"\x00\x01\x00\x00\x00\x01\x00\x00STAT version 1.6.18\r\nEND\r\n"
    line = {"saddr": "198.18.1.3", "sport": 11211, "dport": 40000, "classification": "udp", "success": 1,
            "udp_pkt_size": 8 + len(payload), "data": payload.hex(), "repeat": 0,
            "timestamp_ts": 1796203153, "timestamp_us": 5}
    ctx, t = read(json.dumps(line).encode() + b"\n")
    assert ctx.facts["format"] == "zmap-json"
    (row,) = t.to_pylist()
    assert (row["transport"], row["service"], row["banner"]) == ("udp", "memcached", payload)


# Real zmap 2.1.1 udp outputs (tests/fixtures/real/README.md): file, port, banner type, public form.
REAL_UDP = [("zmap_udp11211.csv", 11211, "memcached", "version=1.6.18"),
            ("zmap_udp11211.json", 11211, "memcached", "version=1.6.18"),
            ("zmap_udp88.csv", 88, "kerberos", "krb5 KRB-ERROR KDC_ERR_PREAUTH_REQUIRED"),
            ("zmap_udp389.csv", 389, "ldap", None)]


@pytest.mark.parametrize("name,port,kind,public", REAL_UDP)
def test_real_zmap_udp_outputs(name, port, kind, public):
    data = (REAL / name).read_bytes()
    ctx, t = read(data, source=name)
    assert ctx.facts["format"] == ("zmap-json" if name.endswith(".json") else "zmap-csv")
    assert ctx.quarantined == 0 and not ctx.damages
    (row,) = t.to_pylist()
    assert (row["port"], row["transport"], row["status"], row["service"]) == (port, "udp", "open", kind)
    line = data.rstrip(b"\n").split(b"\n")[-1]
    hexdata = json.loads(line)["data"] if name.endswith(".json") else line.split(b",")[-1].decode()
    assert row["banner"] == bytes.fromhex(hexdata)
    parsed = module(by_port(port, "udp").name).parse(row["banner"], kind)
    if public is not None:
        assert parsed.public == public
