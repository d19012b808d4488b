"""The file shuffle (pipelines/spill.py) and the Normalize/Deduplicate stages
that use it, on the real FnApiRunner."""
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.normalize import Limits, normalize_batch, pack, unpack_table
from pipelines.spill import Part, in_pass, passes_for, read_part, spill_name, write_parts
from pipelines.transforms.clean import CLEAN, WORK, Deduplicate, Normalize
from tests.helpers import raw_batch, lab_limits

T = 1_379_000_000


def rows(n, offset=0, source="s.ndjson"):
    # 40 networks (/24s), several hosts and two ports each, plus repeats
    return [dict(ip=f"10.{i % 40}.{(i // 40) % 3}.{i % 7}", port=(22, 80)[i % 2], transport="tcp",
                 status="open", timestamp=T + i, source_file=source, source_offset=offset + i)
            for i in range(n)]


def work_of(batch):
    return normalize_batch(batch, lab_limits()).work


def test_parts_round_trip_each_bucket_exactly(tmp_path):
    work = work_of(raw_batch(rows(500)))
    buckets = (work.column("bucket_key").to_numpy() % np.uint64(5)).astype(np.int64)
    order = np.argsort(buckets, kind="stable")
    packed = pack(work.take(pa.array(order)), keep=("bucket_key",))
    path = str(tmp_path / "x.arrow")
    parts = write_parts(path, packed, buckets[order])
    assert sorted(b for b, _ in parts) == sorted(set(buckets.tolist()))
    assert sum(p.rows for _, p in parts) == work.num_rows
    for b, part in parts:
        got = unpack_table([read_part(part)])
        want = unpack_table([pack(work.filter(pa.array(buckets == b)), keep=("bucket_key",))])
        assert got.num_rows == part.rows
        assert got.equals(want), b


def test_spill_names_are_never_reused():
    names = {spill_name() for _ in range(1000)} | {spill_name("0003-01") for _ in range(1000)}
    assert len(names) == 2000 and all(n.endswith(".arrow") for n in names)


def test_one_line_spanning_several_batches_loses_no_rows(tmp_path):
    """One masscan -oJ object with thousands of ports gives several batches
    with the same source offsets; their spill files must not overwrite each
    other (they once did: 1,500 of 3,500 observations survived)."""
    rows_ = [dict(ip=f"10.0.{i // 250}.{i % 250}", port=80, transport="tcp", status="open",
                  timestamp=T, source_file="one-line.json", source_offset=0) for i in range(3500)]
    batches = [raw_batch(rows_[i:i + 1000]) for i in range(0, 3500, 1000)]
    got = _run(batches, tmp_path / "a", str(tmp_path / "shuffle"), 4, 1_000_000)
    assert sum(t.num_rows for t in got.values()) == 3500


def test_passes_split_a_bucket_by_network_and_lose_nothing():
    work = pack(work_of(raw_batch(rows(400))), keep=("bucket_key",))
    assert passes_for(400, 1000) == 1 and passes_for(1000, 1000) == 1 and passes_for(1001, 1000) == 2
    taken = [in_pass(work, 4, 3, which) for which in range(3)]
    assert sum(t.num_rows for t in taken) == work.num_rows
    assert all(t.num_rows for t in taken)               # 40 networks spread over all 3 passes
    # bucket_key is one per network: disjoint keys = no network in two passes
    keys = [set(t.column("bucket_key").to_pylist()) for t in taken]
    assert not (keys[0] & keys[1]) and not (keys[1] & keys[2]) and not (keys[0] & keys[2])
    assert in_pass(work, 4, 1, 0) is work


def _run(batches, tmp_path, shuffle_dir, buckets, max_rows):
    out = tmp_path / "got"
    os.makedirs(out, exist_ok=True)

    class Keep(beam.DoFn):
        def process(self, element):
            part, table = element
            pq.write_table(table.select(["ip", "port", "transport", "status", "source_offset"]),
                           str(out / f"{part}.parquet"))
            yield part

    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        norm = (p | beam.Create(batches, reshuffle=False)
                | Normalize(buckets, lab_limits(), None, shuffle_dir))
        _ = norm[WORK] | "Peek" >> beam.Map(_check_shuffle_element, shuffle_dir is not None)
        dedup = norm[WORK] | Deduplicate("2013-W37", buckets, max_rows)
        _ = dedup[CLEAN] | beam.ParDo(Keep())
    return {f[:-len(".parquet")]: pq.read_table(out / f) for f in sorted(os.listdir(out))}


def _check_shuffle_element(element, via_files):
    bucket, item = element
    assert isinstance(bucket, int)
    # through files only a small reference crosses the GroupByKey, never rows
    assert isinstance(item, Part) == via_files
    return element


def _all_rows(tables):
    return pa.concat_tables(tables.values()).sort_by([("ip", "ascending"), ("port", "ascending")])


def test_file_shuffle_and_passes_give_the_rows_of_the_beam_shuffle(tmp_path):
    batches = [raw_batch(rows(3000, offset=i * 10_000, source=f"f{i}")) for i in range(3)]
    inline = _run(batches, tmp_path / "a", None, 4, 1_000_000)
    files = _run(batches, tmp_path / "b", str(tmp_path / "shuffle"), 4, 1_000_000)
    passes = _run(batches, tmp_path / "c", str(tmp_path / "shuffle2"), 4, 1000)
    assert sorted(inline) == sorted(files) == [f"{b:04d}" for b in range(4)]
    # ~2250 records a bucket against a 1000-record limit: buckets merged in passes
    assert len(passes) > 4 and any("-" in name for name in passes)
    a, b, c = _all_rows(inline), _all_rows(files), _all_rows(passes)
    assert a.num_rows == len({(r["ip"], r["port"]) for r in rows(3000)})  # one row per observation
    assert a.equals(b) and a.equals(c)
