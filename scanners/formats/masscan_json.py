"""masscan JSON readers: ndjson (``--output-format ndjson``, ``-oD``) and ``-oJ``.

ndjson, one record per line (``src/out-ndjson.c``)::

    {"ip":"198.18.0.2","timestamp":"1795566999","port":22,"proto":"tcp","rec_type":"status","data":{"status":"open","reason":"syn-ack","ttl":64}}
    {"ip":"198.18.0.2","timestamp":"1795567004","port":22,"proto":"tcp","rec_type":"banner","data":{"service_name":"ssh","banner":"SSH-2.0-OpenSSH_9.2p1"}}

``-oJ`` (``src/out-json.c``): ``[``, then one record per line separated by
lines holding only ``,``, then ``]``. Older masscan wrote ``{...},`` with a
trailing comma, no ``[``, and ended with the non-JSON line ``{finished: 1}``::

    {   "ip": "198.18.0.3",   "timestamp": "1795566993", "ports": [ {"port": 80, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] }

Fast path: blocks of a few MB go to ``pyarrow.json`` with an explicit schema;
line offsets come from numpy over the block. A block pyarrow rejects is
re-read line by line with ``json.loads`` so that one bad line costs only
itself. Both paths produce the same flat table, checked once in ``_finish``.
Banners are masscan's ``\\u00NN`` mojibake, decoded per distinct value.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipelines.schema import RAW_SCHEMA, TIMESTAMP, DamageKind, QuarantineReason as QR
from scanners.base import EXCERPT_BYTES, MAX_BANNER_BYTES, MAX_RECORD_BYTES, ReadContext, constant, raw_batch
from scanners.escapes import decode_column_latin1
from scanners.lines import BLOCK_BYTES, Block, iter_blocks, json_object, truncated
from scanners.registry import Format

# pyarrow refuses a line that straddles two of its own blocks, so every line we
# pass (at most MAX_RECORD_BYTES) must fit in one. Threads: parsing is most of
# a reader's time and the one-thread runner reads on one core; a block of
# BLOCK_BYTES (4 MB and more) is two or more of pyarrow's 2 MB blocks, which it
# parses in parallel (measured: ~1.7x on a 2-core machine with a free core).
# That costs CPU (a 4 MB block: 16 ms wall / 28 ms CPU threaded, 22 / 22
# not), so when the runner's own threads fill the cores (ctx.parse_threads
# off) each block is parsed on its caller's thread.
_PA_READ = pj.ReadOptions(block_size=2 * MAX_RECORD_BYTES + 4096, use_threads=True)
_PA_READ_SERIAL = pj.ReadOptions(block_size=_PA_READ.block_size, use_threads=False)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_INT32 = (-(1 << 31), (1 << 31) - 1)

_S, _I = pa.string(), pa.int64()
_NDJSON_SCHEMA = pa.schema([
    ("ip", _S), ("timestamp", _S), ("port", _I), ("proto", _S), ("rec_type", _S),
    ("data", pa.struct([("status", _S), ("reason", _S), ("ttl", _I),
                        ("service_name", _S), ("banner", _S)])),
])
_OJ_SCHEMA = pa.schema([
    ("ip", _S), ("timestamp", _S),
    ("ports", pa.list_(pa.struct([
        ("port", _I), ("proto", _S), ("status", _S), ("reason", _S), ("ttl", _I),
        ("service", pa.struct([("name", _S), ("banner", _S)]))]))),
])
_FLAT = pa.schema([("ip", _S), ("ts", _S), ("port", _I), ("proto", _S), ("kind", _S),
                   ("status", _S), ("reason", _S), ("ttl", _I), ("service", _S), ("banner", _S)])

_FOOTER = re.compile(rb"^\{\s*finished\s*:\s*1\s*\}$")
_NDJSON_LINE = re.compile(
    rb'^\{"ip":"[^"]*","timestamp":"[^"]*","port":\d+,"proto":"[^"]*","rec_type":"')
_OJ_LINE = re.compile(rb'^\{\s*"ip":\s*"[^"]*",\s*(?:"timestamp":\s*"[^"]*",\s*)?"ports":\s*\[')
_TS = r"^-?[0-9]{1,12}$"  # epoch seconds; 12 digits keep *1e6 inside int64
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Bad(Exception):
    """One record is unusable: (reason, fixed-form detail)."""


# -- sniffing ------------------------------------------------------------------

def _head_lines(head: bytes, n: int = 8) -> list[bytes]:
    return [ln.strip() for ln in head.split(b"\n")[:64] if ln.strip()][:n]


def sniff_ndjson(head: bytes) -> bool:
    return any(_NDJSON_LINE.match(ln) for ln in _head_lines(head))


def sniff_json(head: bytes) -> bool:
    lines = _head_lines(head, 2)
    if not lines:
        return False
    if lines[0] == b"[":
        # masscan writes '[' on open, so '[' alone or '[' ']' is a scan with no results
        return len(lines) == 1 or lines[1] == b"]" or bool(_OJ_LINE.match(lines[1]))
    return bool(_OJ_LINE.match(lines[0]) or _FOOTER.match(lines[0]))


# -- reading -------------------------------------------------------------------

def read_ndjson(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """RAW_SCHEMA batches from masscan ndjson (``-oD`` / ``--output-format ndjson``)."""
    yield from _read(chunks, ctx, oj=False)


def read_json(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """RAW_SCHEMA batches from masscan ``-oJ`` (any version's layout)."""
    yield from _read(chunks, ctx, oj=True)


def _read(chunks, ctx: ReadContext, oj: bool) -> Iterator[pa.RecordBatch]:
    state = {"started": False, "footer": False, "end": 0}

    def oversized(_offset: int) -> None:   # a line too long to read is content, and no footer
        state.update(started=True, footer=False)

    pending: list[pa.RecordBatch] = []
    for block in iter_blocks(chunks, ctx, max_record=MAX_RECORD_BYTES, block_bytes=BLOCK_BYTES,
                             on_oversized=oversized):
        state["end"] = block.offset + len(block.data)
        batch = _read_block(block, ctx, oj, state)
        if batch is not None and batch.num_rows:
            pending.append(batch)
            yield from _rebatch(pending, ctx.batch_rows, final=False)
    yield from _rebatch(pending, ctx.batch_rows, final=True)
    if oj:
        ctx.facts["footer"] = state["footer"]
        if state["started"] and not state["footer"]:
            ctx.damage(DamageKind.MISSING_FOOTER, state["end"],
                       "masscan -oJ output ends without ']' or '{finished: 1}'")


def _rebatch(pending: list, rows: int, final: bool) -> Iterator[pa.RecordBatch]:
    """Re-cut the pending per-block batches into batches of ``rows`` rows.

    Only the rows handed on are combined; the rest stay zero-copy slices of
    their block's batch, so each row is copied at most once."""
    total = sum(b.num_rows for b in pending)
    if total == 0 or (total < rows and not final):
        return
    table = pa.Table.from_batches(pending, RAW_SCHEMA)
    pending.clear()
    done = total if final else total - total % rows
    for start in range(0, done, rows):
        yield from table.slice(start, min(rows, done - start)).combine_chunks().to_batches()
    if done < total:
        pending.extend(table.slice(done).to_batches())


def _classify(line: bytes) -> str:
    """blank / open ('[' or ',') / footer (']', '{finished: 1}') / record / junk."""
    s = line.strip()
    if s in (b"", b"[", b","):
        return "open" if s else "blank"
    if s == b"]" or _FOOTER.match(s):
        return "footer"
    return "record" if s.startswith(b"{") else "junk"


def _read_block(blk: Block, ctx: ReadContext, oj: bool, state: dict) -> pa.RecordBatch | None:
    base, block, starts, ends, partial = blk.offset, blk.data, blk.starts, blk.ends, not blk.complete
    arr = np.frombuffer(block, np.uint8)
    length = ends - starts
    first = arr[np.minimum(starts, len(arr) - 1)]
    second = arr[np.minimum(starts + 1, len(arr) - 1)]
    rec = (length > 0) & (first == 0x7B) & (second != ord("f"))  # '{', not '{finished'
    skel = (length == 1) & (first == 0x2C)                        # ',' between -oJ records
    blank = length == 0
    # Everything else (rare: '[', ']', '{finished: 1}', CR/space-led lines,
    # junk) is decided line by line; iter_blocks has taken out oversized lines.
    odd = np.flatnonzero(~(rec | skel | blank))
    for i in odd.tolist():
        s, e = int(starts[i]), int(ends[i])
        kind = _classify(block[s:e])
        rec[i] = kind == "record"
        if kind == "junk":
            if partial:
                truncated(ctx, base + s, block[s:e])
            else:
                ctx.quarantine(base + s, QR.MALFORMED_RECORD, "line is not a JSON object",
                               block[s:s + EXCERPT_BYTES])
        elif kind == "blank":
            blank[i] = True
    # -oJ footer: is the last non-blank line ']' / '{finished: 1}'?
    significant = np.flatnonzero(~blank)
    if len(significant):
        state["started"] = True
        i = int(significant[-1])
        state["footer"] = _classify(block[int(starts[i]):int(ends[i])]) == "footer"
    idx = np.flatnonzero(rec)
    if not len(idx):
        return None
    if partial:
        return _slow(base, block, idx, starts, ends, ctx, oj, partial=True)
    flat = _fast(arr, block, idx, starts, ends, rec, oj, ctx.parse_threads)
    if flat is None:
        return _slow(base, block, idx, starts, ends, ctx, oj, partial=False)
    return _finish(flat, idx, base, block, starts, ends, ctx)


def _fast(arr, block, idx, starts, ends, rec, oj: bool, threads: bool = True) -> pa.Table | None:
    """Flat table of the record lines ``idx`` parsed by pyarrow, or None if
    pyarrow rejects the block (then the slow path decides line by line)."""
    stripped = ends.copy()
    cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 0x0D)
    stripped[cr] -= 1
    comma = rec & (stripped > starts) & (arr[np.maximum(stripped - 1, 0)] == 0x2C)
    data = block
    if comma.any() or len(idx) != len(starts):
        buf = arr.copy()
        buf[stripped[comma] - 1] = 0x20   # old -oJ '{...},' -> '{...} '
        keep = np.repeat(rec, ends - starts + 1)[:len(buf)]
        data = pa.py_buffer(np.compress(keep, buf))   # pyarrow reads the numpy bytes in place
    opts = pj.ParseOptions(explicit_schema=_OJ_SCHEMA if oj else _NDJSON_SCHEMA,
                           unexpected_field_behavior="ignore")
    try:
        t = pj.read_json(pa.BufferReader(data), read_options=_PA_READ if threads else _PA_READ_SERIAL,
                         parse_options=opts)
        # pyarrow does not check UTF-8 inside strings; a file with invalid
        # bytes is damaged and must go the careful way. Its parser refuses bad
        # \u escapes (lone surrogates) itself, so only raw bytes >= 0x80 can
        # make invalid text: an ASCII block (the usual case) needs no check.
        if arr.max() >= 0x80:
            t.validate(full=True)
    except pa.ArrowException:
        return None
    if t.num_rows != len(idx):  # e.g. two objects on one line
        return None
    if not oj:
        d = t["data"]
        cols = [t["ip"], t["timestamp"], t["port"], t["proto"], t["rec_type"]] + [
            pc.struct_field(d, f) for f in ("status", "reason", "ttl", "service_name", "banner")]
        return pa.Table.from_arrays(cols, schema=_FLAT)
    ports = t["ports"].combine_chunks()
    if ports.null_count or pc.min_max(pc.list_value_length(ports)).as_py() != {"min": 1, "max": 1}:
        return None  # masscan writes exactly one port per record; others go slow
    p = pc.list_flatten(ports)
    svc = pc.struct_field(p, "service")
    kind = pc.if_else(svc.is_valid(), "banner", "status")
    cols = [t["ip"].combine_chunks(), t["timestamp"].combine_chunks()] + [
        pc.struct_field(p, f) for f in ("port", "proto")] + [kind] + [
        pc.struct_field(p, f) for f in ("status", "reason", "ttl")] + [
        pc.struct_field(svc, "name"), pc.struct_field(svc, "banner")]
    return pa.Table.from_arrays(cols, schema=_FLAT)


def _slow(base, block, idx, starts, ends, ctx, oj: bool, partial: bool) -> pa.RecordBatch | None:
    """The record lines ``idx`` one by one with json.loads: only bad lines are lost."""
    rows, row_line = [], []
    for i in idx.tolist():
        s, e = int(starts[i]), int(ends[i])
        try:
            got = _py_rows(block[s:e], oj)
        except _Bad as bad:
            if partial:
                truncated(ctx, base + s, block[s:e])
            else:
                ctx.quarantine(base + s, bad.args[0], bad.args[1], block[s:s + EXCERPT_BYTES])
            continue
        rows.extend(got)
        row_line.extend([i] * len(got))
    if not rows:
        return None
    flat = pa.Table.from_pylist([dict(zip(_FLAT.names, r)) for r in rows], schema=_FLAT)
    return _finish(flat, np.array(row_line, np.int64), base, block, starts, ends, ctx)


# -- one line, the careful way -------------------------------------------------

def _py_rows(line: bytes, oj: bool) -> list[tuple]:
    """Flat rows of one record line, with the types pyarrow's schema enforces."""
    text = line.strip()
    obj = json_object(text[:-1] if text.endswith(b",") else text)
    if isinstance(obj, str):
        raise _Bad(QR.MALFORMED_RECORD, obj)
    ts = obj.get("timestamp")
    # masscan writes a string; a number is just as clear
    ts = str(ts) if type(ts) is int else _get(obj, "timestamp", str, QR.INVALID_TIMESTAMP)
    ip = _get(obj, "ip", str, QR.INVALID_IP)
    if not oj:
        d = _get(obj, "data", dict) or {}
        return [(ip, ts, _get(obj, "port", int, QR.INVALID_PORT), _get(obj, "proto", str, QR.INVALID_TRANSPORT),
                 _get(obj, "rec_type", str), _get(d, "status", str), _get(d, "reason", str),
                 _get(d, "ttl", int), _get(d, "service_name", str), _get(d, "banner", str))]
    ports = obj.get("ports")
    ports = [None] if ports in (None, []) else ports  # no port: one row, MISSING_FIELD in _finish
    if not isinstance(ports, list):
        raise _Bad(QR.MALFORMED_RECORD, "ports is not a list")
    out = []
    for p in ports:
        p = {} if p is None else p
        if not isinstance(p, dict):
            raise _Bad(QR.MALFORMED_RECORD, "ports entry is not an object")
        svc = _get(p, "service", dict)
        out.append((ip, ts, _get(p, "port", int, QR.INVALID_PORT), _get(p, "proto", str, QR.INVALID_TRANSPORT),
                    "status" if svc is None else "banner", _get(p, "status", str), _get(p, "reason", str),
                    _get(p, "ttl", int), _get(svc or {}, "name", str), _get(svc or {}, "banner", str)))
    return out


def _get(obj: dict, key: str, typ: type, reason: QR = QR.MALFORMED_RECORD):
    """obj[key] if it is null/absent or of a type pyarrow would have accepted."""
    v = obj.get(key)
    if v is None:
        return None
    if typ is int:
        ok = type(v) is int and _INT64[0] <= v <= _INT64[1]
    elif typ is str:  # a lone surrogate ("\ud800") is not valid Unicode text
        ok = isinstance(v, str) and (v.isascii() or not _SURROGATE.search(v))
    else:
        ok = isinstance(v, typ)
    if not ok:
        raise _Bad(reason, f"{key} has the wrong JSON type or range")
    return v


# -- checks shared by both paths ---------------------------------------------

def _np(a) -> np.ndarray:
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), bool)


def _epoch_seconds_ok(ts: pa.Array) -> pa.Array:
    """``ts`` matches ``_TS`` (null stays null). Plain digits, the form masscan
    writes, are decided without the regex, which is several times slower."""
    digits = pc.and_(pc.ascii_is_decimal(ts), pc.less_equal(pc.binary_length(ts), 12))
    if pc.all(digits).as_py() is not False:   # nulls are skipped; they stay null
        return digits
    return pc.match_substring_regex(ts, _TS)


def _finish(flat: pa.Table, row_line: np.ndarray, base: int, block: bytes, starts, ends,
            ctx: ReadContext) -> pa.RecordBatch | None:
    """Quarantine the flat rows that fail a check; RAW_SCHEMA batch of the rest."""
    c = {n: flat[n].combine_chunks() for n in _FLAT.names}
    is_banner = pc.equal(c["kind"], "banner")
    is_status = pc.equal(c["kind"], "status")
    banner = decode_column_latin1(pc.if_else(is_banner, c["banner"], pa.scalar(None, _S)))
    ts_ok = _epoch_seconds_ok(c["ts"])
    ttl, port, nul = c["ttl"], c["port"], pc.is_null
    checks = [  # first failing check wins
        (QR.MISSING_FIELD, "missing ip", nul(c["ip"])),
        (QR.MISSING_FIELD, "missing port", nul(port)),
        (QR.MISSING_FIELD, "missing proto", nul(c["proto"])),
        (QR.MISSING_FIELD, "missing rec_type", nul(c["kind"])),
        (QR.UNKNOWN_RECORD_TYPE, "rec_type is neither status nor banner", pc.invert(pc.or_(is_banner, is_status))),
        (QR.INVALID_PORT, "port outside 0..65535", pc.or_(pc.less(port, 0), pc.greater(port, 65535))),
        (QR.INVALID_TIMESTAMP, "timestamp is not epoch seconds", pc.invert(ts_ok)),
        (QR.MISSING_FIELD, "missing status", pc.and_(is_status, nul(c["status"]))),
        (QR.MALFORMED_RECORD, "ttl out of range",
         pc.and_(is_status, pc.or_(pc.less(ttl, _INT32[0]), pc.greater(ttl, _INT32[1])))),
        (QR.MISSING_FIELD, "missing service name", pc.and_(is_banner, nul(c["service"]))),
        (QR.MISSING_FIELD, "missing banner", pc.and_(is_banner, nul(c["banner"]))),
        (QR.OVERSIZED_RECORD, f"banner longer than {MAX_BANNER_BYTES} bytes",
         pc.greater(pc.binary_length(banner), MAX_BANNER_BYTES)),
    ]
    code = np.zeros(flat.num_rows, np.int8)
    for k, (_, _, mask) in enumerate(checks, 1):
        code[(code == 0) & _np(mask)] = k
    for r in np.flatnonzero(code).tolist():
        reason, detail, _ = checks[code[r] - 1]
        s = int(starts[row_line[r]])
        ctx.quarantine(base + s, reason, detail, block[s:min(int(ends[row_line[r]]), s + EXCERPT_BYTES)])
    good = code == 0
    n = int(good.sum())
    if n == 0:
        return None
    keep = None if n == len(good) else pa.array(good)
    null_s, null_i = pa.scalar(None, _S), pa.scalar(None, _I)

    def g(a):
        return a if keep is None else pc.filter(a, keep)

    seconds = pc.cast(g(pc.if_else(ts_ok, c["ts"], "0")), _I)
    cols = {
        "ip": g(c["ip"]),
        "port": pc.cast(g(c["port"]), pa.int32()),
        "transport": g(c["proto"]),
        "status": g(pc.if_else(is_status, c["status"], null_s)),
        "reason": g(pc.if_else(is_status, c["reason"], null_s)),
        "ttl": pc.cast(g(pc.if_else(is_status, ttl, null_i)), pa.int32()),
        "timestamp": pc.cast(pc.multiply(seconds, 1_000_000), TIMESTAMP),
        "service": g(pc.if_else(is_banner, c["service"], null_s)),
        "banner": g(banner),
        "tool": constant("masscan", n),
        "tool_version": constant(ctx.facts.get("tool_version"), n),
        "source_file": constant(ctx.source, n),
        "source_offset": pa.array(base + starts[row_line[good]], pa.int64()),
    }
    ctx.records_read += n
    return raw_batch(cols, len(next(iter(cols.values()))))


FORMATS = (
    Format("masscan-ndjson", "masscan", sniff_ndjson, read_ndjson),
    Format("masscan-json", "masscan", sniff_json, read_json),
)
