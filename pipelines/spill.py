"""The dedup shuffle through files: bucket parts written as Arrow IPC, only
their names cross the GroupByKey.

Why: an in-process runner (FnApiRunner) holds a GroupByKey's whole input in
memory, so shuffling the packed rows themselves made peak memory grow with
the week (~0.45 GB per million records). Here the normalize step writes each
validated batch once, sorted by bucket, as one IPC file with one record batch
per bucket, and emits ``(bucket, Part)`` references; the merge opens the parts
of its bucket (memory-mapped on local disk). This is the pattern of Beam's
own file sinks (write temporary files, shuffle their names) and works on any
runner whose workers share the folder (``--out`` must be shared on a cluster
anyway, see docs/SCALING.md).

A bucket bigger than ``max_rows`` is merged in several passes, each over a
slice of its networks (``bucket_key // buckets % passes``), so the merge holds
at most about ``max_rows`` records whatever the week's size. A network never
straddles two passes, so responder groups stay bucket-local.

Every write gets a new random name (``spill_name``). Names derived from a
batch's content are not unique (one ``-oJ`` line with thousands of ports
spans several batches with the same offsets, and one overwrote the other),
and rewriting a name on a retry could truncate a file another worker has
mapped. A failed attempt's files are simply never referenced; the folder
goes when the run ends. The outputs never depend on these names.
"""
from __future__ import annotations

import dataclasses
import math
import uuid

import numpy as np
import pyarrow as pa

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


# Uncompressed, so the merge maps its parts and reads them without a copy.
# LZ4 halved the scratch disk (5M records: 560 -> 300 MB at the peak, with the
# week's Parquet) but cost its compression on write and a decompressed copy
# on every read: the 2M bench week in one thread ran 21.6-22.8 s without it
# and 24.6-25.1 s with it (2026-12-03). The scratch folder lives only while
# the week runs (docs/SCALING.md sizes it).
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression=None)


@dataclasses.dataclass(frozen=True)
class Part:
    """One bucket's rows of one spilled batch: record batch ``index`` of ``path``."""
    path: str
    index: int
    rows: int


def spill_name(kind: str = "part") -> str:
    """A file name no other write of any worker or attempt uses."""
    return f"{kind}-{uuid.uuid4().hex}.arrow"


def write_parts(path: str, packed: pa.RecordBatch, buckets: np.ndarray) -> list[tuple[int, Part]]:
    """``packed`` sorted by ``buckets`` (same length) -> one IPC file with a
    record batch per bucket; returns ``[(bucket, Part)]``."""
    bounds = np.flatnonzero(np.diff(buckets)) + 1
    starts = np.concatenate([[0], bounds]).astype(int)
    ends = np.concatenate([bounds, [len(buckets)]]).astype(int)
    parts = []
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        # The IPC writer writes only the rows of a slice, so slicing is free here.
        with pa.ipc.new_file(handle, packed.schema, options=_IPC_OPTIONS) as writer:
            for i, (s, e) in enumerate(zip(starts, ends)):
                writer.write_batch(packed.slice(s, e - s))
                parts.append((int(buckets[s]), Part(path, i, int(e - s))))
    return parts


def read_part(part: Part) -> pa.RecordBatch:
    if "://" not in part.path:
        # Local disk: memory-mapped, so only the part's own bytes are read.
        return pa.ipc.open_file(pa.memory_map(part.path)).get_batch(part.index)
    with FileSystems.open(part.path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return pa.ipc.open_file(pa.PythonFile(handle, mode="r")).get_batch(part.index)


def write_table(path: str, table: pa.Table) -> str:
    """A whole table as one IPC file (the aggregate partials); returns ``path``."""
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        with pa.ipc.new_file(handle, table.schema, options=_IPC_OPTIONS) as writer:
            writer.write_table(table)
    return path


def read_table(path: str) -> pa.Table:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return pa.ipc.open_file(pa.BufferReader(handle.read())).read_all()


def passes_for(rows: int, max_rows: int) -> int:
    return max(1, math.ceil(rows / max_rows))


def in_pass(batch: pa.RecordBatch, buckets: int, passes: int, which: int) -> pa.RecordBatch:
    """The rows of ``batch`` whose network falls in pass ``which`` of ``passes``."""
    if passes == 1:
        return batch
    keys = batch.column("bucket_key").to_numpy()
    mask = (keys // np.uint64(buckets)) % np.uint64(passes) == np.uint64(which)
    return batch.filter(pa.array(mask))
