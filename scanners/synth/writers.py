"""Exact writers for masscan 1.3.2, zmap 2.1.1 and zgrab2 output.

Pure functions: records in, ``bytes`` out, never a file. Every layout here
was copied from the tools' own source (masscan ``src/out-ndjson.c``,
``out-json.c``, ``out-text.c``, ``out-xml.c`` and ``normalize_string``;
zmap ``src/probe_modules/module_tcp_synscan.c``/``module_udp.c``; zgrab2
``modules/*``, ``lib/ssh/keys.go``, ``tools/keys/rsa.go``) and checked
byte-for-byte against ``tests/fixtures/real`` and ``tests/fixtures/zgrab2``.

A real sample of each (from the fixtures)::

    {"ip":"198.18.0.1","timestamp":"1795567041","port":80,"proto":"tcp","rec_type":"banner","data":{"service_name":"title","banner":"Fixture A \\u0026amp; ..."}}
    banner tcp 80 198.18.0.1 1795567041 title Fixture A \\x26amp; \\x22quoted\\x22 caf\\xc3\\xa9
    198.18.0.1,198.18.0.200,22,35669,2420835716,4166742737,64240,64,0,synack,1,0,1,2026-11-25T00:38:14.798+0000,1795567094,798778
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence

# -- masscan -----------------------------------------------------------------

# masscan's banner escaping (normalize_string / normalize_json_string in
# 1.3.2): C isprint() bytes pass through, except these six, which -- like every
# other byte -- are written as \u00NN (JSON) or \xNN (text, XML), lower-case.
_MASSCAN_SPECIAL = frozenset(b"<>&\\\"'")


def _escape_table(prefix: str) -> tuple[str, ...]:
    return tuple(chr(b) if 0x20 <= b < 0x7F and b not in _MASSCAN_SPECIAL else f"{prefix}{b:02x}"
                 for b in range(256))


_JSON_TABLE = _escape_table("\\u00")
_TEXT_TABLE = _escape_table("\\x")


def masscan_json_escape(data: bytes) -> str:
    """Banner bytes as masscan's JSON/ndjson writer prints them (``\\u00NN``)."""
    return "".join([_JSON_TABLE[b] for b in data])


def masscan_text_escape(data: bytes) -> str:
    """Banner bytes as masscan's -oL/-oX/-oG writers print them (``\\xNN``)."""
    return "".join([_TEXT_TABLE[b] for b in data])


@dataclasses.dataclass(frozen=True)
class MasscanRecord:
    """One masscan output record: a status record (``status`` set) or a
    banner record (``service`` set). ``timestamp`` is epoch seconds."""

    ip: str
    port: int
    proto: str
    timestamp: int
    status: str | None = None
    reason: str = "syn-ack"
    ttl: int = 0
    service: str | None = None
    banner: bytes = b""

    @property
    def is_banner(self) -> bool:
        return self.service is not None


def masscan_ndjson_line(r: MasscanRecord) -> bytes:
    """One ``-oD`` / ``--output-format ndjson`` line, newline included."""
    head = f'{{"ip":"{r.ip}","timestamp":"{r.timestamp}","port":{r.port},"proto":"{r.proto}",'
    if r.is_banner:
        body = (f'"rec_type":"banner","data":{{"service_name":"{r.service}",'
                f'"banner":"{masscan_json_escape(r.banner)}"}}}}\n')
    else:
        body = (f'"rec_type":"status","data":{{"status":"{r.status}",'
                f'"reason":"{r.reason}","ttl":{r.ttl}}}}}\n')
    return (head + body).encode("ascii")


def masscan_ndjson(records: Iterable[MasscanRecord]) -> bytes:
    """A whole ndjson file (masscan writes no header or footer here)."""
    return b"".join(masscan_ndjson_line(r) for r in records)


def masscan_oj_record(r: MasscanRecord) -> bytes:
    """One ``-oJ`` record line (without the ``,`` separator line)."""
    head = f'{{   "ip": "{r.ip}",   "timestamp": "{r.timestamp}", "ports": [ {{"port": {r.port}, "proto": "{r.proto}", '
    if r.is_banner:
        body = (f'"service": {{"name": "{r.service}", "banner": '
                f'"{masscan_json_escape(r.banner)}"}} }} ] }}\n')
    else:
        body = f'"status": "{r.status}", "reason": "{r.reason}", "ttl": {r.ttl}}} ] }}\n'
    return (head + body).encode("ascii")


def masscan_oj(records: Iterable[MasscanRecord], footer: bool = True) -> bytes:
    """A ``-oJ`` file: ``[``, records separated by ``,`` lines, ``]``.

    ``footer=False`` gives what a killed masscan leaves behind (no ``]``)."""
    parts = [b"[\n"]
    for i, r in enumerate(records):
        if i:
            parts.append(b",\n")
        parts.append(masscan_oj_record(r))
    if footer:
        parts.append(b"]\n")
    return b"".join(parts)


def masscan_ol_line(r: MasscanRecord) -> bytes:
    """One ``-oL`` line: ``open tcp 22 ip epoch`` or ``banner tcp 22 ip epoch svc text``."""
    if r.is_banner:
        return (f"banner {r.proto} {r.port} {r.ip} {r.timestamp} {r.service} "
                f"{masscan_text_escape(r.banner)}\n").encode("ascii")
    return f"{r.status} {r.proto} {r.port} {r.ip} {r.timestamp}\n".encode("ascii")


def masscan_ol(records: Iterable[MasscanRecord], footer: bool = True) -> bytes:
    """A ``-oL`` file: ``#masscan`` header, lines, ``# end`` footer."""
    body = b"".join(masscan_ol_line(r) for r in records)
    return b"#masscan\n" + body + (b"# end\n" if footer else b"")


def masscan_ox_record(r: MasscanRecord) -> bytes:
    """One ``-oX`` ``<host>`` element, CRLF included. Like masscan, banner
    records say ``reason="response"`` with the port's TTL, and every address
    is labelled ``addrtype="ipv4"``."""
    head = (f'<host endtime="{r.timestamp}"><address addr="{r.ip}" addrtype="ipv4"/>'
            f'<ports><port protocol="{r.proto}" portid="{r.port}">')
    if r.is_banner:
        body = (f'<state state="open" reason="response" reason_ttl="{r.ttl}" />'
                f'<service name="{r.service}" banner="{masscan_text_escape(r.banner)}"></service>')
    else:
        body = f'<state state="{r.status}" reason="{r.reason}" reason_ttl="{r.ttl}"/>'
    return (head + body + "</port></ports></host>\r\n").encode("ascii")


def masscan_ox(records: Sequence[MasscanRecord], start: int, finished: int,
               footer: bool = True) -> bytes:
    """A ``-oX`` file. ``start``/``finished`` are the epoch seconds masscan
    reads from its clock at open and close; ``<hosts up=...>`` counts TCP
    open *status records* (masscan's ``counts.tcp.open``), not hosts."""
    head = ('<?xml version="1.0"?>\r\n<!-- masscan v1.0 scan -->\r\n'
            f'<nmaprun scanner="masscan" start="{start}" version="1.0-BETA"  xmloutputversion="1.03">\r\n'
            '<scaninfo type="syn" protocol="tcp" />\r\n').encode("ascii")
    body = b"".join(masscan_ox_record(r) for r in records)
    if not footer:
        return head + body
    up = sum(1 for r in records if not r.is_banner and r.proto == "tcp" and r.status == "open")
    down = sum(1 for r in records if not r.is_banner and r.proto == "tcp" and r.status == "closed")
    timestr = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(finished))
    tail = (f'<runstats>\r\n<finished time="{finished}" timestr="{timestr}" elapsed="{finished - start}" />\r\n'
            f'<hosts up="{up}" down="{down}" total="{up + down}" />\r\n</runstats>\r\n</nmaprun>\r\n')
    return head + body + tail.encode("ascii")


# -- zmap 2.1.1 ----------------------------------------------------------------

# The fixture's field list (zmap 2.x spells the timestamp fields with hyphens).
ZMAP_TCP_FIELDS = ("saddr", "daddr", "sport", "dport", "seqnum", "acknum", "window", "ttl",
                   "ipid", "classification", "success", "repeat", "cooldown",
                   "timestamp-str", "timestamp-ts", "timestamp-us")
# module_udp's fields (classification "udp", udp_pkt_size), same system fields.
ZMAP_UDP_FIELDS = ("saddr", "daddr", "sport", "dport", "udp_pkt_size", "ttl", "classification",
                   "success", "repeat", "cooldown", "timestamp-str", "timestamp-ts", "timestamp-us")


def zmap_timestamps(ts_us: int) -> dict:
    """zmap's three time fields for a receive time in epoch microseconds:
    ``2026-11-25T00:38:14.798+0000`` (milliseconds, offset without colon),
    whole seconds, and the microsecond part."""
    sec, usec = divmod(ts_us, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{usec // 1000:03d}+0000"
    return {"timestamp-str": text, "timestamp-ts": sec, "timestamp-us": usec}


def zmap_csv(fields: Sequence[str], rows: Iterable[Mapping[str, object]]) -> bytes:
    """``-O csv -f <fields>``: a header line, then one line per response.
    A missing or ``None`` value is written empty, as zmap writes null fields."""
    lines = [",".join(fields)]
    for row in rows:
        lines.append(",".join("" if row.get(f) is None else str(row[f]) for f in fields))
    return ("\n".join(lines) + "\n").encode("ascii")


# -- zgrab2 ------------------------------------------------------------------------

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(obj) -> str:
    """JSON the way Go's ``encoding/json`` marshals it: compact, UTF-8 kept,
    ``<``/``>``/``&`` escaped as ``\\u003c``... (HTML-safe), key order as given
    (our dicts follow zgrab2's struct field order)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # These characters can only occur inside JSON strings, so a plain replace is exact.
    for ch, esc in _GO_ESCAPES.items():
        text = text.replace(ch, esc)
    return text


def rfc3339(ts: int) -> str:
    """zgrab2's per-module ``timestamp`` (RFC 3339, UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def zgrab2_line(ip: str, module: str, status: str, timestamp: int, result: dict | None = None,
                error: str | None = None, protocol: str | None = None, domain: str | None = None) -> bytes:
    """One zgrab2 JSON line: ``{"ip":..,"domain"?:..,"data":{"<module>":{"status",
    "protocol","result"?,"timestamp","error"?}}}`` (no ``domain`` for IP-only input)."""
    resp: dict = {"status": status, "protocol": protocol or module}
    if result is not None:
        resp["result"] = result
    resp["timestamp"] = rfc3339(timestamp)
    if error is not None:
        resp["error"] = error
    grab = {"ip": ip, "domain": domain} if domain else {"ip": ip}
    grab["data"] = {module: resp}
    return (go_json(grab) + "\n").encode("utf-8")


def zgrab2_banner_result(banner: str, **replies: str) -> dict:
    """``data.ftp.result`` / ``data.smtp.result``: the greeting with its CRLFs,
    then any further replies by command (``ehlo``, ``help``, ``quit``, ``auth_tls``)."""
    return {"banner": banner, **replies}


def ssh_server_id(raw: str) -> dict:
    """zgrab2 ``server_id`` from an identification string:
    ``SSH-2.0-OpenSSH_5.1p1 Debian-5`` -> version ``2.0``, software
    ``OpenSSH_5.1p1``, comment ``Debian-5`` (empty parts are omitted)."""
    out: dict = {"raw": raw}
    rest = raw.removeprefix("SSH-")
    version, _, rest = rest.partition("-")
    software, _, comment = rest.partition(" ")
    if version:
        out["version"] = version
    if software:
        out["software"] = software
    if comment:
        out["comment"] = comment
    return out


def _ssh_string(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _ssh_mpint(n: int) -> bytes:
    # RFC 4251 mpint: two's complement, so a set top bit needs a leading zero byte.
    body = n.to_bytes((n.bit_length() + 8) // 8, "big") if n else b""
    return _ssh_string(body)


def ssh_rsa_wire(e: int, n: int) -> bytes:
    """The ``ssh-rsa`` public key blob (RFC 4253 section 6.6)."""
    return _ssh_string(b"ssh-rsa") + _ssh_mpint(e) + _ssh_mpint(n)


def ssh_ed25519_wire(public: bytes) -> bytes:
    """The ``ssh-ed25519`` public key blob (RFC 8709)."""
    return _ssh_string(b"ssh-ed25519") + _ssh_string(public)


def ssh_host_key_json(algorithm: str, wire: bytes, key_json_name: str, key_json: dict) -> dict:
    """``key_exchange.server_host_key`` as zgrab2 writes it (fixture key order):
    ``{"<type>_public_key": {...}, "raw", "algorithm", "fingerprint_sha256"}``;
    the fingerprint is the hex SHA-256 of the wire blob."""
    return {key_json_name: key_json,
            "raw": base64.b64encode(wire).decode("ascii"),
            "algorithm": algorithm,
            "fingerprint_sha256": hashlib.sha256(wire).hexdigest()}


def ssh_rsa_key_json(e: int, n: int) -> dict:
    """zgrab2 ``tools/keys/rsa.go``: ``exponent`` is the *integer* (a Go
    ``*big.Int`` marshals as a JSON number), ``modulus`` the big-endian bytes
    in standard base64, ``length`` the modulus byte length times 8."""
    mod = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return {"exponent": e, "modulus": base64.b64encode(mod).decode("ascii"), "length": len(mod) * 8}


def ssh_ed25519_key_json(public: bytes) -> dict:
    """zgrab2 ``lib/ssh/keys.go``: ``{"public_bytes": base64}``."""
    return {"public_bytes": base64.b64encode(public).decode("ascii")}


# -- what masscan's banner grabbers keep ----------------------------------------------


def masscan_dialogue(greeting: Sequence[bytes], reply: bytes) -> bytes:
    """The banner masscan's FTP/SMTP grabbers (``proto-ftp.c``/``proto-smtp.c``)
    record: each server line without its CR, lines joined by ``\\n``, then the
    last reply (to ``AUTH TLS``/``STARTTLS``) with no newline. Like masscan,
    stop (and close) at the first non-printable byte: it is never recorded."""
    out = bytearray()
    for i, line in enumerate(list(greeting) + [reply]):
        for b in line:
            if not 0x20 <= b < 0x7F:
                return bytes(out)
            out.append(b)
        if i < len(greeting):
            out += b"\n"
    return bytes(out)


# -- zgrab2 module results (field order as the fixtures) ------------------------------

# mysql-5.5.json's capability set (handshake flags 0x800ff7ff), reused for every server.
MYSQL_CAPABILITIES = ("CLIENT_COMPRESS", "CLIENT_CONNECT_WITH_DB", "CLIENT_FOUND_ROWS",
                      "CLIENT_IGNORE_SIGPIPE", "CLIENT_IGNORE_SPACE", "CLIENT_INTERACTIVE",
                      "CLIENT_LOCAL_FILES", "CLIENT_LONG_FLAG", "CLIENT_LONG_PASSWORD",
                      "CLIENT_MULTI_RESULTS", "CLIENT_MULTI_STATEMENTS", "CLIENT_NO_SCHEMA",
                      "CLIENT_ODBC", "CLIENT_PLUGIN_AUTH", "CLIENT_PROTOCOL_41",
                      "CLIENT_PS_MULTI_RESULTS", "CLIENT_RESERVED", "CLIENT_SECURE_CONNECTION",
                      "CLIENT_TRANSACTIONS")


def zgrab2_mysql_result(version: str, connection_id: int, scramble: bytes) -> dict:
    """``data.mysql.result`` for a protocol-10 handshake; ``scramble`` is the
    server's 20 random bytes. ``raw_packets`` holds the real handshake payload."""
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    raw = (b"\x0a" + version.encode("ascii") + b"\x00" + connection_id.to_bytes(4, "little")
           + scramble[:8] + b"\x00" + b"\xff\xf7\x08\x02\x00\x0f\x80\x15" + bytes(10)
           + scramble[8:] + b"\x00mysql_native_password\x00")
    return {"protocol_version": 10, "server_version": version, "connection_id": connection_id,
            "auth_plugin_data": b64(scramble + b"\x00"), "character_set": 8,
            "status_flags": {"SERVER_STATUS_AUTOCOMMIT": True},
            "capability_flags": {name: True for name in MYSQL_CAPABILITIES},
            "auth_plugin_name": "mysql_native_password", "raw_packets": [b64(raw)]}


def zgrab2_mssql_result(major: int, minor: int, build: int, encrypt_mode: str) -> dict:
    """``data.mssql.result`` from a PRELOGIN reply (mssql-2017-linux.json shape, no TLS)."""
    return {"version": f"{major}.{minor}.{build}", "instance_name": "\x00",
            "prelogin_options": {"version": {"major": major, "minor": minor, "build_number": build},
                                 "encrypt_mode": encrypt_mode, "mars": 0}}


def zgrab2_postgres_result(protocol_line: int, startup_line: int) -> dict:
    """``data.postgres.result`` without TLS (postgres-9.x-nossl.json shape):
    PostgreSQL never states its version; only the ``postmaster.c`` line numbers
    of its two startup errors differ between releases."""
    def err(code: str, line: int, message: str) -> dict:
        return {"code": code, "file": "postmaster.c", "line": str(line), "message": message,
                "routine": "ProcessStartupPacket", "severity": "FATAL"}
    return {"supported_versions": "FATAL:  unsupported frontend protocol 0.0: server supports 1.0 to 3.0",
            "protocol_error": err("0A000", protocol_line,
                                  "unsupported frontend protocol 255.255: server supports 1.0 to 3.0"),
            "startup_error": err("28000", startup_line,
                                 "no PostgreSQL user name specified in startup packet"),
            "is_ssl": False}


def zgrab2_ssh_result(ident: str, cookie: bytes, kexinit: Mapping[str, list],
                      selection: Mapping[str, str], host_key: dict) -> dict:
    """``data.ssh.result`` (ssh-ssh.json shape): ``server_id``, the server's
    KEXINIT lists, the negotiated algorithms and ``key_exchange.server_host_key``
    (the per-method DH/ECDH parameters are left out)."""
    kex = {"cookie": base64.b64encode(cookie).decode("ascii"), **kexinit,
           "first_kex_follows": False, "reserved": 0}
    group = {"cipher": selection["cipher"], "mac": selection["mac"], "compression": "none"}
    return {"server_id": ssh_server_id(ident), "server_key_exchange": kex,
            "algorithm_selection": {"dh_kex_algorithm": selection["kex"],
                                    "host_key_algorithm": host_key["algorithm"],
                                    "client_to_server_alg_group": group,
                                    "server_to_client_alg_group": dict(group)},
            "key_exchange": {"server_host_key": host_key}}
