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
from scanners.compression import READ_CHUNK
from scanners.registry import read_file_chunks

RECORDS = "records"
QUARANTINE = "quarantine"
REPORTS = "reports"


class _ReadFileFn(beam.DoFn):
    """Thin adapter: opens one file through FileSystems and runs the pure
    reader on its bytes. Emits batches as they are produced, so memory stays
    at one batch per file, and a file report when the file is done."""

    def __init__(self, batch_rows: int, pause_at: str | None = None):
        self.batch_rows = batch_rows
        self.pause_at = pause_at
        self.files_read = Metrics.counter("portcensus", "files_read")
        self.files_damaged = Metrics.counter("portcensus", "files_damaged")
        self.records_read = Metrics.counter("portcensus", "records_read")

    def process(self, f: RawFile):
        ctx = ReadContext(source=f.name, batch_rows=self.batch_rows)
        ctx.facts.update(_sidecar(f.path))
        digest = hashlib.sha256()
        size = 0

        def raw_chunks():
            nonlocal size
            try:
                handle = FileSystems.open(f.path, compression_type=CompressionTypes.UNCOMPRESSED)
            except (OSError, IOError) as exc:
                ctx.damage(DamageKind.READ_ERROR, 0, f"cannot open: {type(exc).__name__}")
                return
            with handle:
                while True:
                    try:
                        b = handle.read(READ_CHUNK)
                    except (OSError, IOError) as exc:
                        ctx.damage(DamageKind.READ_ERROR, size, f"read failed: {type(exc).__name__}")
                        return
                    if not b:
                        return
                    size += len(b)
                    digest.update(b)
                    yield b

        for batch in read_file_chunks(raw_chunks(), ctx):
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
        yield REPORTS, {
            "file": f.name,
            "bytes": size,
            "sha256": digest.hexdigest(),
            "format": ctx.facts.get("format", "unknown"),
            "compression": ctx.facts.get("compression", "none"),
            "tool": ctx.facts.get("tool"),
            "tool_version": ctx.facts.get("tool_version"),
            "facts": {k: v for k, v in sorted(ctx.facts.items())
                      if k not in ("format", "compression", "tool", "tool_version")},
            "read": ctx.records_read,
            "quarantined_at_read": ctx.quarantined,
            "damage": [{"kind": d.kind.value, "offset": d.offset, "detail": d.detail}
                       for d in ctx.damages],
        }


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
    * ``reports``: one dict per file (bytes, sha256, format, read count, damage)
    """

    def __init__(self, batch_rows: int, pause_at: str | None = None):
        super().__init__()
        self.batch_rows = batch_rows
        self.pause_at = pause_at

    def expand(self, files):
        tagged = files | "Read" >> beam.ParDo(_ReadFileFn(self.batch_rows, self.pause_at))
        return split_by_kind(tagged, (RECORDS, QUARANTINE, REPORTS), "Split")
