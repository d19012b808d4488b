"""``portcensus verify``: a fast pre-flight over a week's raw files.

Runs the same pure readers the pipeline uses, without Beam and without
validation or dedup: per file the sniffed format and compression, whether the
compression is intact and the footer present, how many records it holds, how
many a reader had to quarantine, and where it is damaged. Nothing is written.
"""
from __future__ import annotations

import dataclasses

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.discover import RawFile, discover
from scanners.base import ReadContext
from scanners.compression import READ_CHUNK
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
    def ok(self) -> bool:
        return not self.damage and self.format != "unknown"


def check_file(f: RawFile) -> FileCheck:
    from pipelines.transforms.read import _sidecar   # the same hints the pipeline's reader gets
    ctx = ReadContext(source=f.name, batch_rows=200_000)
    ctx.facts.update(_sidecar(f.path))
    rows = 0

    def chunks():
        with FileSystems.open(f.path, compression_type=CompressionTypes.UNCOMPRESSED) as h:
            while True:
                b = h.read(READ_CHUNK)
                if not b:
                    return
                yield b

    for batch in read_file_chunks(chunks(), ctx):
        rows += batch.num_rows
        ctx.take_quarantine()  # verify only counts; keep memory flat
    return FileCheck(
        name=f.name, bytes=f.size, format=ctx.facts.get("format", "unknown"),
        compression=ctx.facts.get("compression", "none"), records=ctx.records_read,
        quarantined=ctx.quarantined, footer=ctx.facts.get("footer"),
        damage=[{"kind": d.kind.value, "offset": d.offset, "detail": d.detail} for d in ctx.damages],
        facts={k: v for k, v in ctx.facts.items() if k in ("ports_assumed", "port_source", "file_port")})


def verify_week(raw: str, week: str, progress=None) -> list[FileCheck]:
    files = discover(raw, week)
    out = []
    for i, f in enumerate(files):
        out.append(check_file(f))
        if progress:
            progress(i + 1, len(files), f.name)
    return out


def format_checks(checks: list[FileCheck]) -> str:
    lines = [f"{'file':<44} {'format':<17} {'compr.':<6} {'records':>10} {'quar.':>6}  state"]
    for c in checks:
        state = "ok" if c.ok else "; ".join(
            f"{d['kind']} at byte {d['offset']}" if d["offset"] is not None else d["kind"] for d in c.damage)
        if c.ok and c.footer is False:
            state = "no footer"
        if c.port_note:
            state += f"; {c.port_note}"
        lines.append(f"{c.name[-44:]:<44} {c.format:<17} {c.compression:<6} {c.records:>10,} "
                     f"{c.quarantined:>6,}  {state}")
    bad = sum(not c.ok for c in checks)
    lines.append(f"{len(checks)} files, {sum(c.records for c in checks):,} records, {bad} damaged")
    return "\n".join(lines)
