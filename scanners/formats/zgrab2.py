"""zgrab2 JSON Lines: one object per target, one RAW row per module status
plus one per banner value (the shape masscan gives: status record + banner
records for the same ip:port, which the pipeline merges).

Sample (zgrab2 testdata ``ftp-default.json``; zgrab2 writes it on one line)::

    {"ip":"172.17.0.3","domain":"target","data":{"ftp":{"status":"success","protocol":"ftp",
     "result":{"banner":"220 (vsFTPd 3.0.3)\\r\\n"},"timestamp":"2018-04-06T19:37:52Z"}}}

* ``data`` may hold several modules (multiple-module ini runs); its keys are
  the scan names, ``protocol`` says which module ran.
* The port comes from evidence, best first (``port_source``, see
  ``record_port``): the module's ``port`` when written; the first HTTP
  request's URL (``result.response.request.url.host``: zgrab2's
  ``getHTTPURL`` omits the port only when it is the scheme's default, so
  ``host`` alone means 80 for http and 443 for https); the target's
  ``ip:port`` in a Go dial/read error (``dial tcp 192.0.2.1:8080: ...``).
  Else the landing sidecar's ``port_hint`` (``land --port``), else the
  module's default port (``DEFAULT_PORTS``), marked ``assumed`` and counted
  in ``facts["ports_assumed"]``: zgrab2 does not record ``--port``.
* ``status`` (zgrab2 ``status.go``) becomes open / closed / no_response via
  ``STATUS``; the zgrab2 word is kept as ``reason``.
* Banners are JSON strings re-encoded as UTF-8. zgrab2 (Go) already replaced
  invalid UTF-8 with U+FFFD, so original bytes outside UTF-8 are not
  recoverable from this format.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Iterable, Iterator

import pyarrow as pa

from pipelines.schema import QuarantineReason as Q
from scanners.base import MAX_RECORD_BYTES, RawColumns, ReadContext
from scanners.lines import json_object, json_objects, parse_iso_us
from scanners.registry import Format

# zgrab2 status.go -> ObservationStatus. "open" whenever a TCP connection was
# made, even if the application then failed.
STATUS = {
    "success": "open", "application-error": "open", "protocol-error": "open",
    "handshake-error": "open", "post-tls-application-error": "open",
    "io-timeout": "open", "connection-closed": "open",
    "connection-refused": "closed",
    "connection-timeout": "no_response", "unknown-error": "no_response",
    "blocklisted-target": "no_response", "invalid-inputs": "no_response",
}

# Default port of each module as registered with zgrab2.AddCommand (the port
# it scans when no --port is given). http with TLS (--use-https) is 443.
DEFAULT_PORTS = {
    "ssh": 22, "http": 80, "ftp": 21, "smtp": 25, "telnet": 23, "pop3": 110, "imap": 143,
    "mysql": 3306, "postgres": 5432, "mssql": 1433, "memcached": 11211, "redis": 6379,
    "mongodb": 27017, "oracle": 1521, "ipp": 631, "mqtt": 1883, "pptp": 1723, "tacacs": 49,
    "smb": 445, "modbus": 502, "siemens": 102, "dnp3": 20000, "fox": 1911, "amqp091": 5672,
    "bacnet": 47808, "ntp": 123, "ike": 500, "dns": 53, "cldap": 389,
}
UDP_MODULES = {"bacnet", "ntp", "ike", "dns", "cldap"}   # modules built on zgrab2.UDPFlags

_SNIFF_PREFIX = re.compile(
    rb'\s*\{\s*"(?:ip|domain)"\s*:\s*"[^"\\]*"\s*,(?:\s*"domain"\s*:\s*"[^"\\]*"\s*,)?'
    rb'\s*"data"\s*:\s*\{\s*"[^"\\]+"\s*:\s*\{\s*"status"\s*:\s*"[a-z-]+"')


def sniff(head: bytes) -> bool:
    """The first line is a zgrab2 target object: ``ip``/``domain`` and a
    ``data`` object of module results that each carry a ``status``. A first
    line longer than the sniff window is judged by its key order instead."""
    nl = head.find(b"\n")
    if nl < 0:
        if _SNIFF_PREFIX.match(head):
            return True
        nl = len(head)
    obj = json_object(head[:nl])
    if not isinstance(obj, dict) or not ("ip" in obj or "domain" in obj):
        return False
    data = obj.get("data")
    return isinstance(data, dict) and any(isinstance(m, dict) and "status" in m for m in data.values())


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _uses_tls(result) -> bool:
    """http: the first request went over TLS (a redirect chain starts at the
    port that was scanned, so look at its first hop, not the final one)."""
    chain = _get(result, "redirect_response_chain")
    first = chain[0] if isinstance(chain, list) and chain else _get(result, "response")
    req = _get(first, "request")
    return bool(_get(req, "tls_log")) or _get(req, "url", "scheme") == "https"


def banners(protocol: str, result) -> list[tuple[str, str]]:
    """(service, banner text) pairs a module result carries; empty values are dropped."""
    if protocol == "ssh":
        pairs = [("ssh", _get(result, "server_id", "raw"))]
    elif protocol == "http":
        server = _get(result, "response", "headers", "server")
        if isinstance(server, list):
            server = ", ".join(s for s in server if isinstance(s, str)) or None
        pairs = [("http.server", server)]
    elif protocol == "mysql":
        pairs = [("mysql", _get(result, "server_version"))]
    elif protocol in ("mssql", "memcached"):
        pairs = [(protocol, _get(result, "version"))]
    else:   # ftp, smtp, pop3, imap, telnet and any other module with a greeting
        pairs = [(protocol, _get(result, "banner"))]
    return [(s, v) for s, v in pairs if isinstance(v, str) and v]


def read(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    cols = RawColumns(ctx, "zgrab2")
    for off, raw, obj in json_objects(chunks, ctx, max_record=MAX_RECORD_BYTES):
        _line(off, raw, obj, cols, ctx)
        yield from cols.maybe_flush()
    yield from cols.flush()


def _line(off: int, raw: bytes, obj: dict, cols: RawColumns, ctx: ReadContext) -> None:
    ip, data = obj.get("ip"), obj.get("data")
    if not isinstance(data, dict) or not data:
        ctx.quarantine(off, Q.MISSING_FIELD, "zgrab2 line has no module results in data", raw)
        return
    if not isinstance(ip, str) or not ip:
        # One record per module entry, so the count matches a good line's.
        for _ in data:
            ctx.quarantine(off, Q.MISSING_FIELD, "zgrab2 line has no ip", raw)
        return
    for name, mod in data.items():
        _module(off, raw, ip, str(name), mod, cols, ctx)


def _module(off, raw, ip, name, mod, cols: RawColumns, ctx: ReadContext) -> None:
    if not isinstance(mod, dict):
        ctx.quarantine(off, Q.MALFORMED_RECORD, "zgrab2 module entry is not an object", raw)
        return
    word = mod.get("status")
    status = STATUS.get(word) if isinstance(word, str) else None
    if status is None:
        ctx.quarantine(off, Q.MALFORMED_RECORD, "zgrab2 status missing or not in status.go", raw)
        return
    protocol = mod.get("protocol") if isinstance(mod.get("protocol"), str) else name
    result = mod.get("result")
    port, source = mod.get("port"), None
    if port is None:
        port = record_port(protocol, result, mod.get("error"), ip)
    if port is None:
        # zgrab2 does not write --port; the landing sidecar can say it.
        port, source = _hint(ctx), "sidecar"
    if port is None:
        port, source = DEFAULT_PORTS.get(protocol), "assumed"
        if protocol == "http" and _uses_tls(result):
            port = 443
        if port is None:
            ctx.quarantine(off, Q.MISSING_FIELD, "zgrab2 module has no port and no known default port", raw)
            return
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        ctx.quarantine(off, Q.INVALID_PORT, "zgrab2 port is not an integer in 0..65535", raw)
        return
    stamp = mod.get("timestamp")
    ts = parse_iso_us(stamp) if isinstance(stamp, str) else None
    if stamp is not None and ts is None:
        ctx.quarantine(off, Q.INVALID_TIMESTAMP, "zgrab2 timestamp is not RFC 3339", raw)
        return
    if ts is None:
        # No time of its own: the file's (sidecar scan start), else validation
        # quarantines it as missing_timestamp.
        ts = _file_time(ctx)
    if source == "assumed":
        ctx.facts["ports_assumed"] = ctx.facts.get("ports_assumed", 0) + 1
    transport = "udp" if protocol in UDP_MODULES else "tcp"
    key = host_key_columns(result) if protocol == "ssh" else None
    cols.add(ip=ip, port=port, transport=transport, status=status, reason=word,
             timestamp_us=ts, offset=off, key=key, port_source=source)
    for service, text in banners(protocol, result):
        cols.add(ip=ip, port=port, transport=transport, timestamp_us=ts, service=service,
                 banner=text.encode("utf-8", "surrogatepass"), offset=off, port_source=source)


def _hint(ctx: ReadContext) -> int | None:
    hint = ctx.facts.get("port_hint")
    if isinstance(hint, str) and hint.strip().isdigit():
        hint = int(hint)
    return hint if isinstance(hint, int) and not isinstance(hint, bool) and 0 <= hint <= 65535 else None


def _file_time(ctx: ReadContext) -> int | None:
    t = ctx.facts.get("scan_start_us")
    return t if isinstance(t, int) and not isinstance(t, bool) else None


_SCHEME_PORT = {"http": 80, "https": 443}
# Go's net errors name the target as host:port: "dial tcp 192.0.2.1:8080: i/o
# timeout", "read tcp 198.51.100.7:40000->192.0.2.1:8080: ...", IPv6 in [].
_NET_ERROR = re.compile(r"\b(?:dial|read|write) (?:tcp|udp)[46]? (?:\S+->)?(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d{1,5})\b")


def record_port(protocol: str, result, error, ip: str) -> int | None:
    """The port the record itself names, or None: the first HTTP request's URL
    (a redirect chain starts at the scanned port), else the target's
    ``ip:port`` in a Go network error."""
    if protocol == "http":
        chain = _get(result, "redirect_response_chain")
        first = chain[0] if isinstance(chain, list) and chain else _get(result, "response")
        url = _get(first, "request", "url")
        host, scheme = _get(url, "host"), _get(url, "scheme")
        if isinstance(host, str) and host and scheme in _SCHEME_PORT:
            m = re.search(r":(\d{1,5})\Z", host)
            if m and (host.startswith("[") or host.count(":") == 1):
                p = int(m.group(1))
                return p if p <= 65535 else None
            return _SCHEME_PORT[scheme]
    if isinstance(error, str):
        for m in _NET_ERROR.finditer(error[:4096]):
            if m.group(1).strip("[]") == ip and int(m.group(2)) <= 65535:
                return int(m.group(2))
    return None


# -- SSH host keys --------------------------------------------------------------

_MAX_EXPONENT = (1 << 63) - 1
_CURVE_BITS = {"ssh-ed25519": 256, "ssh-ed448": 456}


def host_key_columns(result) -> dict | None:
    """``ssh_host_key`` shaped for RawColumns.add(key=...): algorithm,
    fingerprint, bits (RSA modulus length, the curve size of ECDSA/EdDSA),
    modulus and an exponent that fits int64 (null otherwise; stats count it
    as unusual from the modulus side)."""
    k = ssh_host_key(result)
    if k is None:
        return None
    algo = k["algorithm"] or ""
    bits = k["length"]
    if bits is None:
        base = algo.replace("-cert-v01@openssh.com", "")
        bits = _CURVE_BITS.get(base)
        if bits is None and base.startswith("ecdsa-sha2-nistp"):
            tail = base[len("ecdsa-sha2-nistp"):]
            bits = int(tail) if tail.isdigit() else None
    e = k["exponent"]
    return {"algorithm": k["algorithm"], "fingerprint_sha256": k["fingerprint_sha256"],
            "bits": bits if bits is None or bits < 1 << 31 else None, "modulus": k["modulus"],
            "exponent": e if e is not None and 0 <= e <= _MAX_EXPONENT else None}

def _b64(value) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _ssh_rsa_wire(raw: bytes) -> tuple[int, bytes] | None:
    """(exponent, modulus) from an RFC 4253 ``ssh-rsa`` public key blob."""
    fields, pos = [], 0
    for _ in range(3):
        if pos + 4 > len(raw):
            return None
        n = int.from_bytes(raw[pos:pos + 4], "big")
        if pos + 4 + n > len(raw):
            return None
        fields.append(raw[pos + 4:pos + 4 + n])
        pos += 4 + n
    if fields[0] != b"ssh-rsa":
        return None
    return int.from_bytes(fields[1], "big"), fields[2].lstrip(b"\x00")


def ssh_host_key(result) -> dict | None:
    """The server host key of an ssh module ``result``, or None.

    zgrab2 writes it at ``result.key_exchange.server_host_key``: ``algorithm``,
    ``fingerprint_sha256`` (hex SHA-256 of ``raw``), ``raw`` (base64 wire
    blob) and one of ``rsa_public_key`` {``exponent``, ``modulus`` base64,
    ``length``}, ``dsa_public_key``, ``ecdsa_public_key``,
    ``ed25519_public_key``; host certificates nest the key under
    ``certkey_public_key.key``. Returns ``algorithm``,
    ``fingerprint_sha256``, and for RSA ``modulus`` (bytes), ``exponent``
    (int), ``length`` (bits); those three are None for other key types.
    """
    key = _get(result, "key_exchange", "server_host_key")
    if not isinstance(key, dict):
        return None
    inner = _get(key, "certkey_public_key", "key")
    src = inner if isinstance(inner, dict) else key
    algorithm = key.get("algorithm") or key.get("key_algorithm")
    raw = _b64(key.get("raw"))
    fp = key.get("fingerprint_sha256")
    if not isinstance(fp, str):
        fp = hashlib.sha256(raw).hexdigest() if raw else None
    modulus = exponent = length = None
    rsa = src.get("rsa_public_key")
    if isinstance(rsa, dict):
        modulus = _b64(rsa.get("modulus"))
        e = rsa.get("exponent")
        exponent = e if isinstance(e, int) and not isinstance(e, bool) else None
        ln = rsa.get("length")
        length = ln if isinstance(ln, int) and not isinstance(ln, bool) else None
    elif algorithm == "ssh-rsa" and raw and (wire := _ssh_rsa_wire(raw)):
        exponent, modulus = wire
    if modulus is not None and length is None:
        length = int.from_bytes(modulus, "big").bit_length()
    if not isinstance(algorithm, str) and fp is None:
        return None
    return {"algorithm": algorithm if isinstance(algorithm, str) else None,
            "fingerprint_sha256": fp, "modulus": modulus, "exponent": exponent, "length": length}


FORMATS = (Format("zgrab2-jsonl", "zgrab2", sniff, read),)
