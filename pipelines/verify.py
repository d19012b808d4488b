"""``portcensus verify``: a fast pre-flight over a week's raw files.

Runs the same pure readers the pipeline uses, without Beam and without
validation or dedup: per file the sniffed format and compression, whether the
compression is intact and the footer present, how many records it holds, how
many a reader had to quarantine, every damaged range (offset, length, kind)
and, where decoding resumed after damage, how many records each salvage
recovered; last, whether the file's bytes are all accounted for (the byte
identity of pipelines/manifest.py). Nothing is written.
"""
from __future__ import annotations

import dataclasses
import hashlib

from pipelines.discover import RawFile, discover
from pipelines.manifest import bytes_identity
from scanners.base import ReadContext
from scanners.compression import DEFAULT_MAX_INFLATION, decompression_limit
from scanners.registry import read_file_chunks


@dataclasses.dataclass
class FileCheck:
    name: str
    bytes: int
    format: str
    compression: str
    records: int
    quarantined: int
    footer: bool | None
    damage: list[dict]
    facts: dict = dataclasses.field(default_factory=dict)
    bytes_accounting: dict = dataclasses.field(default_factory=dict)
    salvage: list[dict] = dataclasses.field(default_factory=list)

    @property
    def port_note(self) -> str | None:
        """Ports the records do not state: zgrab2 module defaults, a bare
        list's port from its sidecar or file name."""
        n = self.facts.get("ports_assumed")
        if n:
            return f"{n:,} ports assumed (zgrab2 module default)"
        src, port = self.facts.get("port_source"), self.facts.get("file_port")
        if src == "filename":
            return f"port {port} from the file name"
        if src == "sidecar":
            return f"port {port} from the sidecar"
        return None

    @property
    def bytes_hold(self) -> bool:
        return bytes_identity(self.bytes_accounting, self.damage)

    @property
    def ok(self) -> bool:
        return not self.damage and self.format != "unknown" and self.bytes_hold


def check_file(f: RawFile, max_inflation: float = DEFAULT_MAX_INFLATION) -> FileCheck:
    from pipelines.transforms.read import _sidecar, file_report, open_raw   # the pipeline's own reader
    ctx = ReadContext(source=f.name, batch_rows=200_000)
    size = 0
    if f.problem is None:
        ctx.facts.update(_sidecar(f.path))

        def chunks():
            nonlocal size
            for b in open_raw(f, ctx):
                size += len(b)
                yield b

        for _batch in read_file_chunks(chunks(), ctx, max_bytes=decompression_limit(f.size, max_inflation)):
            ctx.take_quarantine()  # verify only counts; keep memory flat
    else:
        ctx.damage(f.problem, None, f.problem_detail)
    rep = file_report(f, ctx, size, hashlib.sha256())
    return FileCheck(
        name=f.name, bytes=f.size, format=rep["format"], compression=rep["compression"],
        records=ctx.records_read, quarantined=ctx.quarantined, footer=ctx.facts.get("footer"),
        damage=rep["damage"],
        facts={k: v for k, v in ctx.facts.items() if k in ("ports_assumed", "port_source", "file_port")},
        bytes_accounting=rep["bytes_accounting"], salvage=rep["salvage"])


def verify_week(raw: str, week: str, progress=None,
                max_inflation: float = DEFAULT_MAX_INFLATION) -> list[FileCheck]:
    files = discover(raw, week)
    out = []
    for i, f in enumerate(files):
        out.append(check_file(f, max_inflation))
        if progress:
            progress(i + 1, len(files), f.name)
    return out


def _range(d: dict) -> str:
    if d["offset"] is None:
        return d["kind"]
    where = "raw byte" if d.get("compressed") else "byte"
    span = f", {d['length']:,} bytes" if d.get("length") else ""
    return f"{d['kind']} at {where} {d['offset']:,}{span}"


def format_checks(checks: list[FileCheck]) -> str:
    lines = [f"{'file':<44} {'format':<17} {'compr.':<6} {'records':>10} {'quar.':>6}  state"]
    for c in checks:
        state = "ok" if not c.damage and c.format != "unknown" else "damaged"
        if not c.damage and c.footer is False:
            state = "no footer"
        if c.port_note:
            state += f"; {c.port_note}"
        if not c.bytes_hold:
            state += "; BYTES NOT ACCOUNTED"
        lines.append(f"{c.name[-44:]:<44} {c.format:<17} {c.compression:<6} {c.records:>10,} "
                     f"{c.quarantined:>6,}  {state}")
        for d in c.damage:
            lines.append(f"{'':<4}damage: {_range(d)}")
        for s in c.salvage:
            got = "?" if s["records"] is None else f"{s['records']:,}"
            est = s.get("estimated_lost_records")
            lines.append(f"{'':<4}salvage: resumed at raw byte {s['raw_offset']:,} ({s['method']}) after "
                         f"{s['lost_raw_bytes']:,} lost raw bytes (~{s.get('estimated_lost_bytes', 0):,} "
                         f"decompressed, ~{est if est is not None else '?':,} records): "
                         f"{got} records recovered")
        b = c.bytes_accounting
        if b.get("decompressed_bytes") is not None and (c.damage or not c.bytes_hold):
            lines.append(f"{'':<4}bytes: {b.get('raw_bytes', 0):,} raw, {b['decompressed_bytes']:,} "
                         f"decompressed = {b.get('record_bytes', 0):,} in records + "
                         f"{b['decompressed_bytes'] - b.get('record_bytes', 0):,} damaged")
    bad = sum(not c.ok for c in checks)
    lines.append(f"{len(checks)} files, {sum(c.records for c in checks):,} records, {bad} damaged")
    return "\n".join(lines)
