"""ReadScanFiles: raw scanner files -> RAW_SCHEMA batches, quarantine, file reports."""
from __future__ import annotations

import hashlib
import json

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.transforms.common import split_by_kind
from pipelines.discover import SIDECAR_SUFFIX, RawFile
from pipelines.faults import pause_at
from pipelines.schema import DamageKind
from scanners.base import ReadContext
from scanners.compression import DEFAULT_MAX_INFLATION, READ_CHUNK, decompression_limit
from scanners.registry import read_file_chunks

RECORDS = "records"
QUARANTINE = "quarantine"
REPORTS = "reports"


class _ReadFileFn(beam.DoFn):
    """Thin adapter: opens one file through FileSystems and runs the pure
    reader on its bytes. Emits batches as they are produced, so memory stays
    at one batch per file, and a file report when the file is done."""

    def __init__(self, batch_rows: int, pause_at: str | None = None,
                 max_inflation: float = DEFAULT_MAX_INFLATION, parse_threads: bool = True):
        self.batch_rows = batch_rows
        self.pause_at = pause_at
        self.max_inflation = max_inflation
        self.parse_threads = parse_threads
        self.files_read = Metrics.counter("portcensus", "files_read")
        self.files_damaged = Metrics.counter("portcensus", "files_damaged")
        self.records_read = Metrics.counter("portcensus", "records_read")

    def process(self, f: RawFile):
        ctx = ReadContext(source=f.name, batch_rows=self.batch_rows, parse_threads=self.parse_threads)
        if f.problem is not None:      # discovery saw no regular file here: never opened
            ctx.damage(DamageKind(f.problem), None, f.problem_detail)
            self.files_read.inc()
            self.files_damaged.inc()
            rep = file_report(f, ctx, 0, hashlib.sha256())
            rep["sha256"] = f.checksum_token   # nothing was read: the same token state.py compares
            yield REPORTS, rep
            return
        ctx.facts.update(_sidecar(f.path))
        digest = hashlib.sha256()
        size = 0

        def raw_chunks():
            nonlocal size
            for b in open_raw(f, ctx):
                size += len(b)
                digest.update(b)
                yield b

        limit = decompression_limit(f.size, self.max_inflation)
        for batch in read_file_chunks(raw_chunks(), ctx, max_bytes=limit):
            pause_at("read", self.pause_at)
            if batch.num_rows:
                yield RECORDS, batch
            q = ctx.take_quarantine()
            if q is not None:
                yield QUARANTINE, q
        q = ctx.take_quarantine()
        if q is not None:
            yield QUARANTINE, q

        self.files_read.inc()
        self.records_read.inc(ctx.records_read)
        if ctx.damaged:
            self.files_damaged.inc()
        yield REPORTS, file_report(f, ctx, size, digest)


def open_raw(f: RawFile, ctx: ReadContext):
    """The raw chunks of ``f``, never more than the size discovery saw (a file
    still being written cannot keep a run reading); read failures are damage."""
    try:
        handle = FileSystems.open(f.path, compression_type=CompressionTypes.UNCOMPRESSED)
    except (OSError, IOError) as exc:
        ctx.damage(DamageKind.READ_ERROR, 0, f"cannot open: {type(exc).__name__}",
                   length=f.size, compressed=True)
        return
    size = 0
    with handle:
        while size < f.size:
            try:
                b = handle.read(min(READ_CHUNK, f.size - size))
            except (OSError, IOError) as exc:
                ctx.damage(DamageKind.READ_ERROR, size, f"read failed: {type(exc).__name__}",
                           length=f.size - size, compressed=True)
                return
            if not b:
                ctx.damage(DamageKind.READ_ERROR, size, "the file is shorter than when it was found",
                           length=f.size - size, compressed=True)
                return
            size += len(b)
            yield b


_BYTE_FACTS = ("raw_bytes", "raw_decoded", "decompressed_bytes", "record_bytes", "unread_bytes",
               "junk_head_bytes")


def file_report(f: RawFile, ctx: ReadContext, size: int, digest) -> dict:
    """The per-file report the manifest is built from (counts, damage, bytes)."""
    facts = dict(ctx.facts)
    accounts = {k: facts.pop(k) for k in _BYTE_FACTS if k in facts}
    accounts["read_bytes"] = size
    accounts["discovered_bytes"] = f.size
    salvage = facts.pop("salvage", [])
    return {
        "file": f.name,
        "bytes": size,
        "sha256": digest.hexdigest(),
        "format": facts.get("format", "unknown"),
        "compression": facts.get("compression", "none"),
        "tool": facts.get("tool"),
        "tool_version": facts.get("tool_version"),
        "facts": {k: v for k, v in sorted(facts.items())
                  if k not in ("format", "compression", "tool", "tool_version")},
        "read": ctx.records_read,
        "quarantined_at_read": ctx.quarantined,
        "damage": [damage_entry(d) for d in ctx.damages],
        "bytes_accounting": accounts,
        "salvage": salvage_entries(salvage, ctx.records_read, accounts),
    }


def damage_entry(d) -> dict:
    """A damage as the manifest shows it: ``offset``/``length`` count raw bytes
    when ``compressed``, else decompressed ones."""
    return {"kind": d.kind.value, "offset": d.offset, "detail": d.detail, "length": d.length,
            "compressed": d.compressed}


def salvage_entries(salvage: list[dict], records_read: int, accounts: dict) -> list[dict]:
    """Each resync point with the records read after it (up to the next one),
    and an estimate (never records: bytes, and what they would hold at this
    file's average) of what was lost before it, from the file's own ratio."""
    ratio = accounts.get("decompressed_bytes", 0) / max(accounts.get("raw_decoded", 0), 1)
    per_record = accounts.get("record_bytes", 0) / max(records_read, 1)
    out = []
    for i, s in enumerate(salvage):
        after = salvage[i + 1].get("records_before") if i + 1 < len(salvage) else records_read
        before = s.get("records_before")
        lost = round(s["lost_raw_bytes"] * ratio)
        out.append({"raw_offset": s["raw_offset"], "method": s["method"],
                    "offset": s.get("offset"), "lost_raw_bytes": s["lost_raw_bytes"],
                    "estimated_lost_bytes": lost,
                    "estimated_lost_records": round(lost / per_record) if per_record else None,
                    "records": (after - before) if before is not None and after is not None else None})
    return out


def _sidecar(path: str) -> dict:
    """Facts from a landing sidecar (``<file>.meta.json``), when there is one.

    Only the hints a reader can use are passed on (port/transport for bare
    zmap lists, the tool version, the scan start)."""
    side = path + SIDECAR_SUFFIX
    if not FileSystems.exists(side):
        return {}
    try:
        with FileSystems.open(side, compression_type=CompressionTypes.UNCOMPRESSED) as h:
            meta = json.loads(h.read(1 << 20))
    except (OSError, ValueError):
        return {"sidecar_error": "unreadable sidecar"}
    hints = {}
    for key in ("port_hint", "transport_hint", "tool_version", "scan_start_us", "shard", "seed"):
        if key in meta:
            hints[key] = meta[key]
    return hints


class ReadScanFiles(beam.PTransform):
    """PCollection[RawFile] -> {kind: PCollection}:

    * ``records``: RAW_SCHEMA ``pa.RecordBatch`` (up to ``batch_rows`` rows)
    * ``quarantine``: QUARANTINE_SCHEMA ``pa.RecordBatch``
    * ``reports``: one dict per file (bytes, sha256, format, read count, damage,
      byte accounting, salvage points)

    ``parse_threads``: whether a reader may use pyarrow's thread pool
    (``ReadContext.parse_threads``).
    """

    def __init__(self, batch_rows: int, pause_at: str | None = None,
                 max_inflation: float = DEFAULT_MAX_INFLATION, parse_threads: bool = True):
        super().__init__()
        self.batch_rows = batch_rows
        self.pause_at = pause_at
        self.max_inflation = max_inflation
        self.parse_threads = parse_threads

    def expand(self, files):
        tagged = files | "Read" >> beam.ParDo(_ReadFileFn(self.batch_rows, self.pause_at,
                                                           self.max_inflation, self.parse_threads))
        return split_by_kind(tagged, (RECORDS, QUARANTINE, REPORTS), "Split")
