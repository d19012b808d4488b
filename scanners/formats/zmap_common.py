"""zmap output, the parts every zmap reader shares: the field plan (port,
transport and time from the file's field names), the file-name port hint and
``build``, which turns typed columns into one validated RAW batch. The
readers are ``zmap_csv``, ``zmap_json`` and ``zmap_list``; ``zmap`` lists them
for the registry.

zmap output: headered CSV (``-O csv -f ...``), JSON lines (``-O json``) and
the bare IP list (no ``-O``, or ``-O csv`` with the default field).

Samples (zmap 2.1.1, ``tests/fixtures/real/``)::

    saddr,daddr,sport,dport,...,classification,success,repeat,cooldown,timestamp-str,timestamp-ts,timestamp-us
    198.18.0.1,198.18.0.200,22,35669,...,synack,1,0,1,2026-11-25T00:38:14.798+0000,1795567094,798778
    { "saddr": "198.18.0.1", "sport": 22, "classification": "synack", "success": 1, "repeat": 0, ... }
    198.18.0.1

* Field names are hyphenated in zmap 2.x (``timestamp-str``) and use
  underscores from 3.0 (``timestamp_str``); both map to one canonical
  (hyphenated) name. Old releases separate with ``", "``; values are trimmed.
* ``saddr`` is the target and ``sport`` the target's port: both are named from
  the response packet's side.
* Every row is emitted: ``success=1`` is ``open`` (a ``repeat=1`` row too: it
  is a retransmission the pipeline merges), ``success=0`` is ``closed``;
  ``reason`` is the ``classification`` (synack, rst, echoreply, ...).
* A bare list holds neither port nor time nor outcome: the port comes from
  ``ctx.facts["port_hint"]`` (landing sidecar), else a file name whose stem
  *ends* in ``_p<port>``, ``-p<port>`` or ``_port<port>`` (``zmap_p443.csv``,
  ``scan-port8080.txt.gz``; nowhere else in the name), and every row says so
  in ``port_source`` (``sidecar`` / ``filename``); the time is the sidecar's
  ``scan_start_us``, else validation quarantines it (``missing_timestamp``);
  ``-O csv`` without ``-f`` also lists RST hosts, so such a file sets
  ``facts["open_only_unverified"]``.
* The udp module writes the reply's payload as hex in ``data``; on a UDP port
  whose protocol ``scanners.protocols.by_port`` knows (memcached 11211, IKE
  500/4500, Kerberos 88, CLDAP 389) it becomes that protocol's banner.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.schema import TIMESTAMP, QuarantineReason as Q
from scanners.base import ReadContext, constant, raw_batch
from scanners.lines import parse_iso_us
from scanners.protocols import by_port

MAX_TS_SECONDS = 10 ** 12      # keeps seconds * 1e6 inside int64; normalize judges plausibility

# Typed columns the readers use; every other zmap field is ignored.
TYPES = {"saddr": pa.string(), "classification": pa.string(), "timestamp-str": pa.string(),
         "sport": pa.int64(), "success": pa.int64(), "repeat": pa.int64(), "ttl": pa.int64(),
         "timestamp-ts": pa.int64(), "timestamp-us": pa.int64(), "data": pa.string()}
# Fields only one probe family writes; they tell tcp_synscan from the udp modules.
TCP_ONLY = {"seqnum", "acknum", "window", "tcpopts"}
UDP_ONLY = {"udp-pkt-size", "data", "icmp-responder", "icmp-unreach-str"}
ICMP_FIELDS = {"type", "code", "icmp-id"}

NO_PORT = "bare zmap IP list has no port: land it with a sidecar giving the port"
FILE_PORT = re.compile(r"(?:^|[_-])p(?:ort)?(\d{1,5})\Z")   # on the stem: "zmap_p443" of zmap_p443.csv.gz
IP_SHAPE = r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$|^[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*$"


def _first_line(head: bytes) -> bytes | None:
    nl = head.find(b"\n")
    return None if nl < 0 else head[:nl].rstrip(b"\r")



# -- plan: what the file's fields say about port, transport and time -----------

@dataclasses.dataclass(frozen=True)
class Plan:
    fields: tuple[str, ...]
    transport: str
    use_sport: bool
    port: int | None          # fixed port when rows carry none (ICMP: 0, else the hint)
    hint_port: int | None     # fills a null sport (udp icmp-unreach rows)
    port_source: str | None   # PortSource of port / hint_port (None: the rows' own sport)
    ts_mode: str | None       # "ts", "str" or None (no time in the file)
    fixed_ts: int | None


def canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def port_hint(ctx: ReadContext) -> tuple[int | None, str | None]:
    """(port, PortSource value): the landing sidecar first, else a file name
    stem ending in ``_p<port>`` / ``-p<port>`` / ``_port<port>``."""
    hint = ctx.facts.get("port_hint")
    if isinstance(hint, str) and hint.strip().isdigit():
        hint = int(hint)
    if isinstance(hint, int) and not isinstance(hint, bool) and 0 <= hint <= 65535:
        return hint, "sidecar"
    stem = re.split(r"[/\\]", ctx.source)[-1].split(".", 1)[0]
    m = FILE_PORT.search(stem)
    if m and int(m.group(1)) <= 65535:
        return int(m.group(1)), "filename"
    return None, None


def make_plan(fields: Iterable[str], ctx: ReadContext) -> Plan:
    f = tuple(fields)
    fs = set(f)
    hint_transport = str(ctx.facts.get("transport_hint") or "tcp").lower()
    hint, source = port_hint(ctx)
    if "sport" in fs:
        transport = "udp" if fs & UDP_ONLY else "tcp" if fs & TCP_ONLY else hint_transport
        use_sport, port = True, None
    elif fs & ICMP_FIELDS:
        transport, use_sport, port, hint, source = "icmp", False, 0, None, None
    else:
        transport, use_sport, port = hint_transport, False, hint
        ctx.facts["port_source"] = source
        if hint is not None:
            ctx.facts["file_port"] = hint   # verify and the manifest show it: not from the records
    ts_mode = "ts" if "timestamp-ts" in fs else "str" if "timestamp-str" in fs else None
    fixed = ctx.facts.get("scan_start_us")
    fixed = fixed if isinstance(fixed, int) and not isinstance(fixed, bool) else None
    if ts_mode is None and fixed is None:
        ctx.facts["timestamps_missing"] = True
    if "success" not in fs:
        ctx.facts["open_only_unverified"] = True
    return Plan(f, transport, use_sport, port, hint, source, ts_mode, fixed)


# -- one validated RAW batch from typed columns (shared by every zmap path) -----

def _np(arr: pa.Array, fill) -> np.ndarray:
    return pc.fill_null(arr, fill).to_numpy(zero_copy_only=False)


def build(cols: dict[str, pa.Array], offsets: np.ndarray, line: Callable[[int], bytes],
          plan: Plan, ctx: ReadContext) -> pa.RecordBatch | None:
    """Validate typed columns (``TYPES``) row-wise in a fixed check order,
    quarantine the failures and return the rest as one RAW_SCHEMA batch."""
    n = len(offsets)
    if n == 0:
        return None
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)

    def fail(mask, why: Q, text: str) -> None:
        hit = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711 (elementwise)
        reason[hit] = why
        detail[hit] = text

    ip = pc.utf8_trim_whitespace(cols["saddr"]) if "saddr" in cols else pa.nulls(n, pa.string())
    fail(_np(pc.equal(ip, ""), True), Q.MISSING_FIELD, "zmap record has no saddr")
    fail(~_np(pc.match_substring_regex(ip, IP_SHAPE), False), Q.INVALID_IP, "saddr is not an IP address")
    port_source = None
    if plan.use_sport:
        sport = cols["sport"]
        if plan.hint_port is not None and sport.null_count:
            port_source = pc.if_else(pc.is_null(sport), pa.scalar(plan.port_source), pa.scalar(None, pa.string()))
            sport = pc.fill_null(sport, plan.hint_port)
        fail(_np(pc.is_null(sport), True), Q.MISSING_FIELD,
             "zmap row has no sport (e.g. udp icmp-unreach): land it with a sidecar giving the port")
        port = _np(sport, 0)
        fail((port < 0) | (port > 65535), Q.INVALID_PORT, "sport outside 0..65535")
    else:
        if plan.port is None:
            fail(np.ones(n, bool), Q.MISSING_FIELD, NO_PORT)
        port = np.full(n, plan.port or 0, dtype=np.int64)
        if plan.port_source is not None:
            port_source = constant(plan.port_source, n)
    success = _np(cols["success"], -1) if "success" in cols else None
    if success is not None:
        fail((success != 0) & (success != 1), Q.MALFORMED_RECORD, "success is not 0 or 1")
    if "repeat" in cols:
        rep = _np(cols["repeat"], 0)
        fail((rep != 0) & (rep != 1), Q.MALFORMED_RECORD, "repeat is not 0 or 1")
    if "ttl" in cols:
        ttl = _np(cols["ttl"], 0)
        fail((ttl < 0) | (ttl > 255), Q.MALFORMED_RECORD, "ttl outside 0..255")
    ts = _timestamps(cols, plan, n, fail)
    service, banner = _udp_payloads(cols, plan, port, n, fail)

    bad = reason != None  # noqa: E711
    for i in np.flatnonzero(bad):
        ctx.quarantine(int(offsets[i]), reason[i], detail[i], line(int(i)))
    keep = np.flatnonzero(~bad)
    if not len(keep):
        return None
    ctx.records_read += len(keep)
    idx = pa.array(keep)
    if success is None:
        status = constant("open", len(keep))
    else:
        status = pa.array(np.where(success[keep] == 1, "open", "closed"), pa.string())
    why = pc.utf8_trim_whitespace(cols["classification"]).take(idx) if "classification" in cols \
        else pa.nulls(len(keep), pa.string())
    why = pc.if_else(pc.equal(why, ""), pa.scalar(None, pa.string()), why)
    arrays = {
        "ip": ip.take(idx), "port": pa.array(port[keep].astype(np.int32)),
        "transport": constant(plan.transport, len(keep)), "status": status, "reason": why,
        "ttl": cols["ttl"].take(idx).cast(pa.int32()) if "ttl" in cols else pa.nulls(len(keep), pa.int32()),
        "timestamp": ts.take(idx), "service": service.take(idx),
        "banner": banner.take(idx), "tool": constant("zmap", len(keep)),
        "tool_version": constant(ctx.facts.get("tool_version"), len(keep)),
        "source_file": constant(ctx.source, len(keep)),
        "source_offset": pa.array(offsets[keep].astype(np.int64)),
    }
    if port_source is not None:
        arrays["port_source"] = port_source.take(idx)
    return raw_batch(arrays, len(next(iter(arrays.values()))))


HEX = r"^(?:[0-9A-Fa-f]{2})*$"


def udp_banner_type(port: int) -> str | None:
    """The banner type a UDP reply on ``port`` is read as: the first banner
    type of the protocol the project knows on that UDP port (memcached 11211,
    ike/``isakmp`` 500 and 4500, kerberos 88, ldap 389 for CLDAP), else None."""
    info = by_port(port, "udp")
    return info.banner_types[0] if info else None


def _udp_payloads(cols, plan: Plan, port: np.ndarray, n: int, fail) -> tuple[pa.Array, pa.Array]:
    """(service, banner) per row. zmap's udp module writes the reply's payload
    as lower-case hex in ``data``; on a port whose protocol the project knows
    it is that protocol's banner (the bytes, as masscan's are), elsewhere the
    row is a status only. ``data`` that is not hex is a malformed record."""
    none = pa.nulls(n, pa.string()), pa.nulls(n, pa.binary())
    if plan.transport != "udp" or "data" not in cols:
        return none
    data = pc.utf8_trim_whitespace(cols["data"])
    fail(~_np(pc.match_substring_regex(data, HEX), True), Q.MALFORMED_RECORD, "data is not hex")
    kinds = {p: udp_banner_type(p) for p in np.unique(port).tolist()}
    service: list[str | None] = [None] * n
    banner: list[bytes | None] = [None] * n
    for i, text in enumerate(data.to_pylist()):
        kind = kinds[int(port[i])]
        if kind and text:     # an empty payload (udp_pkt_size 8) is no banner
            try:
                banner[i] = bytes.fromhex(text)
            except ValueError:   # already failed above (odd length, not hex)
                continue
            service[i] = kind
    return pa.array(service, pa.string()), pa.array(banner, pa.binary())


def _timestamps(cols, plan: Plan, n: int, fail) -> pa.Array:
    if plan.ts_mode == "ts":
        sec = _np(cols["timestamp-ts"], -1)
        us = _np(cols["timestamp-us"], -1) if "timestamp-us" in cols else np.zeros(n, np.int64)
        fail((sec < 0) | (sec > MAX_TS_SECONDS) | (us < 0) | (us > 999_999), Q.INVALID_TIMESTAMP,
             "timestamp-ts/timestamp-us missing or out of range")
        ok = (sec >= 0) & (sec <= MAX_TS_SECONDS)
        return pa.array(np.where(ok, sec, 0) * 1_000_000 + us).cast(TIMESTAMP)
    if plan.ts_mode == "str":
        # Millisecond strings repeat a lot: parse each distinct value once.
        enc = pc.utf8_trim_whitespace(cols["timestamp-str"]).dictionary_encode()
        parsed = [parse_iso_us(s) if s is not None else None for s in enc.dictionary.to_pylist()]
        ok_d = np.array([p is not None for p in parsed] + [False], dtype=bool)
        val_d = np.array([p or 0 for p in parsed] + [0], dtype=np.int64)
        ind = _np(enc.indices, len(parsed)).astype(np.int64)
        fail(~ok_d[ind], Q.INVALID_TIMESTAMP, "timestamp-str is not an ISO 8601 time with a UTC offset")
        return pa.array(val_d[ind]).cast(TIMESTAMP)
    return pa.array([plan.fixed_ts] * n, pa.int64()).cast(TIMESTAMP)


def _sliced(batch: pa.RecordBatch | None, ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    if batch is not None:
        for start in range(0, batch.num_rows, ctx.batch_rows):
            yield batch.slice(start, ctx.batch_rows)

