"""The contract every scanner reader follows.

A reader is a pure function ``read(chunks, ctx) -> Iterator[pa.RecordBatch]``:

* ``chunks`` is an iterator of decompressed ``bytes`` pieces of one file, in
  order (``scanners.compression.iter_decompressed`` makes it; the reader never
  opens a file itself).
* it yields ``RAW_SCHEMA`` record batches (build them with ``RawColumns``);
* it reports every record it could not use with ``ctx.quarantine(...)`` and
  file-level damage with ``ctx.damage(...)``; it never raises on bad input.

``ctx.records_read`` is kept by ``RawColumns``/``ctx.quarantine`` so that the
manifest can prove ``read == accepted + quarantined + excluded + merged``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator

import pyarrow as pa

from pipelines.schema import QUARANTINE_SCHEMA, RAW_SCHEMA, DamageKind, QuarantineReason
from scanners.lines import iter_lines

# Named limits (bounded time and memory on hostile input).
MAX_BANNER_BYTES = 64 * 1024      # masscan caps banners far below this; zgrab2 HTTP bodies are not kept
MAX_RECORD_BYTES = 1024 * 1024    # a single line/record larger than this is quarantined, not parsed
EXCERPT_BYTES = 160
DEFAULT_BATCH_ROWS = 100_000


def excerpt(data: bytes) -> str:
    """Printable-ASCII excerpt of attacker-controlled bytes (\\xNN for the rest)."""
    out = []
    for b in data[:EXCERPT_BYTES]:
        out.append(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}")
    return "".join(out)


@dataclasses.dataclass
class Damage:
    kind: DamageKind
    offset: int | None
    detail: str
    length: int | None = None     # bytes of the damaged range (issue 13: bytes are accounted)
    compressed: bool = False      # offset/length count raw (compressed) bytes, not decompressed ones


@dataclasses.dataclass
class ReadContext:
    """Per-file state a reader reports into. Picklable, no I/O."""

    source: str
    batch_rows: int = DEFAULT_BATCH_ROWS
    # The parser may spread one block over pyarrow's thread pool: worth it
    # when the runner leaves cores idle, extra CPU when its own worker
    # threads already keep every core busy (pipelines/runmode.py).
    parse_threads: bool = True
    records_read: int = 0
    quarantined: int = 0
    facts: dict = dataclasses.field(default_factory=dict)   # format, tool, tool_version, footer, ...
    damages: list = dataclasses.field(default_factory=list)
    _q_rows: dict = dataclasses.field(default_factory=lambda: {n: [] for n in QUARANTINE_SCHEMA.names})

    # -- reporting -----------------------------------------------------------
    def quarantine(self, offset: int | None, reason: QuarantineReason, detail: str,
                   data: bytes = b"") -> None:
        """Quarantine one input record (it counts as read)."""
        self.records_read += 1
        self.quarantined += 1
        q = self._q_rows
        q["source_file"].append(self.source)
        q["source_offset"].append(offset)
        q["reason"].append(QuarantineReason(reason).value)
        q["detail"].append(detail)
        q["excerpt"].append(excerpt(data))

    def damage(self, kind: DamageKind, offset: int | None, detail: str, *,
               length: int | None = None, compressed: bool = False) -> None:
        self.damages.append(Damage(DamageKind(kind), offset, detail, length, compressed))

    @property
    def damaged(self) -> bool:
        return bool(self.damages)

    def take_quarantine(self) -> pa.RecordBatch | None:
        """The quarantine rows gathered since the last call, as one batch."""
        if not self._q_rows["reason"]:
            return None
        batch = pa.RecordBatch.from_pydict(self._q_rows, schema=QUARANTINE_SCHEMA)
        self._q_rows = {n: [] for n in QUARANTINE_SCHEMA.names}
        return batch


class RawColumns:
    """Column-wise builder of RAW_SCHEMA batches for readers that walk records
    one by one (text formats other than ndjson, binary, XML).

    ``add`` takes already-decoded values; ``flush`` yields a batch when full.
    ``tool``/``tool_version``/``source_file`` are file constants and are set on
    ``flush`` rather than per row.
    """

    _PER_ROW = ("ip", "port", "transport", "status", "reason", "ttl",
                "timestamp", "service", "banner", "source_offset")

    def __init__(self, ctx: ReadContext, tool: str):
        self.ctx = ctx
        self.tool = tool
        self._cols: dict[str, list] = {n: [] for n in self._PER_ROW}
        self._keys: dict[str, list] = {}   # host-key columns, only once a row has a key
        self._port_source: list | None = None   # only once a row's port is not the record's own

    def __len__(self) -> int:
        return len(self._cols["ip"])

    def add(self, *, ip, port, transport, status=None, reason=None, ttl=None,
            timestamp_us=None, service=None, banner=None, offset=None, key: dict | None = None,
            port_source: str | None = None) -> None:
        """``key``: an SSH host key as {algorithm, fingerprint_sha256, bits,
        modulus, exponent} (zgrab2 ssh), else None. ``port_source``: a
        PortSource value when the record does not name its port, else None."""
        c = self._cols
        if port_source is not None or self._port_source is not None:
            if self._port_source is None:
                self._port_source = [None] * len(self)
            self._port_source.append(port_source)
        if key is not None or self._keys:
            if not self._keys:
                self._keys = {name: [None] * len(self) for name in _KEY_COLS}
            for name, src in _KEY_COLS.items():
                self._keys[name].append(key.get(src) if key else None)
        c["ip"].append(ip)
        c["port"].append(port)
        c["transport"].append(transport)
        c["status"].append(status)
        c["reason"].append(reason)
        c["ttl"].append(ttl)
        c["timestamp"].append(timestamp_us)
        c["service"].append(service)
        c["banner"].append(banner)
        c["source_offset"].append(offset)
        self.ctx.records_read += 1

    def maybe_flush(self) -> Iterator[pa.RecordBatch]:
        if len(self) >= self.ctx.batch_rows:
            yield self.build()

    def flush(self) -> Iterator[pa.RecordBatch]:
        if len(self):
            yield self.build()

    def build(self) -> pa.RecordBatch:
        n = len(self)
        c = self._cols
        arrays = {
            "ip": pa.array(c["ip"], pa.string()),
            "port": pa.array(c["port"], pa.int32()),
            "transport": pa.array(c["transport"], pa.string()),
            "status": pa.array(c["status"], pa.string()),
            "reason": pa.array(c["reason"], pa.string()),
            "ttl": pa.array(c["ttl"], pa.int32()),
            "timestamp": pa.array(c["timestamp"], pa.int64()).cast(RAW_SCHEMA.field("timestamp").type),
            "service": pa.array(c["service"], pa.string()),
            "banner": pa.array(c["banner"], pa.binary()),
            "tool": constant(self.tool, n),
            "tool_version": constant(self.ctx.facts.get("tool_version"), n),
            "source_file": constant(self.ctx.source, n),
            "source_offset": pa.array(c["source_offset"], pa.int64()),
        }
        for name, values in self._keys.items():
            arrays[name] = pa.array(values, RAW_SCHEMA.field(name).type)
        if self._port_source is not None:
            arrays["port_source"] = pa.array(self._port_source, pa.string())
        self._cols = {k: [] for k in self._PER_ROW}
        self._keys = {}
        self._port_source = None
        return raw_batch(arrays, n)


# RAW_SCHEMA host-key column -> key of the dict a reader passes to RawColumns.add
_KEY_COLS = {"key_algorithm": "algorithm", "key_fingerprint_sha256": "fingerprint_sha256",
             "key_bits": "bits", "rsa_modulus": "modulus", "rsa_exponent": "exponent"}


def raw_batch(arrays: dict, n: int) -> pa.RecordBatch:
    """A RAW_SCHEMA batch from {column: array}; columns a format never has
    (host keys, for most) are filled with nulls."""
    cols = [arrays[f.name] if f.name in arrays else pa.nulls(n, f.type) for f in RAW_SCHEMA]
    return pa.RecordBatch.from_arrays(cols, schema=RAW_SCHEMA)


def constant(value, n: int, typ: pa.DataType = pa.string()) -> pa.Array:
    """A column of one repeated value (cheap: no Python list of n items)."""
    if value is None:
        return pa.nulls(n, typ)
    return pa.repeat(pa.scalar(value, typ), n)


def lines_with_offsets(chunks: Iterable[bytes], ctx: ReadContext,
                       on_partial: Callable[[int, bytes], None] | None = None
                       ) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for every line, lines longer than ``MAX_RECORD_BYTES``
    quarantined: ``scanners.lines.iter_lines`` with this module's limit."""
    return iter_lines(chunks, ctx, on_partial, max_record=MAX_RECORD_BYTES)
