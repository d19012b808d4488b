"""What Beam's DaskRunner (apache-beam 2.77, dask/distributed 2026.8) runs
correctly, pinned one transform at a time on a real loopback cluster: a
scheduler and two workers, each its own OS process, on 127.0.0.1 only.

The pipeline may only use what passes here. The ``test_broken_*`` tests assert
today's WRONG behaviour on purpose (the right answer is in a comment), so that
a Beam upgrade that fixes one fails its test and the workaround can go. Each
says why, with lines of ``apache_beam/runners/dask/``; docs/SCALING.md has the
table. The cluster helpers live in test_dask_equal.py.
"""
from __future__ import annotations

import os
import pickle
import uuid

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from tests.pipeline.test_dask_equal import (
    DASK_RUNNER,
    close_runner_clients,
    distributed,
    loopback_cluster,
)


def _worker_paths() -> tuple[str, str]:
    """The sys.path entry under which this module imports as ``__name__``
    (pytest's rootdir-relative or package name alike), so that workers can
    unpickle the DoFns defined below by reference, and the repository root
    for its ``tests.pipeline`` import."""
    root = os.path.dirname(os.path.abspath(__file__))
    for _ in range(__name__.count(".")):
        root = os.path.dirname(root)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return root, repo


@pytest.fixture(scope="module")
def dask_address(tmp_path_factory):
    with loopback_cluster(str(tmp_path_factory.mktemp("dask-cluster")), extra_paths=_worker_paths()) as address:
        yield address


def dask_options(address: str, *extra: str) -> PipelineOptions:
    return PipelineOptions([f"--runner={DASK_RUNNER}", f"--dask_client_address={address}", *extra])


def run_and_close(p: beam.Pipeline) -> None:
    """Run to completion, then close the Client the DaskRunner opened and
    never closes (DaskRunnerResult.client)."""
    try:
        result = p.run()
    except Exception:
        close_runner_clients()  # the runner opened its Client before failing to translate
        raise
    try:
        result.wait_until_finish()
    finally:
        result.client.close()


class _PickleSink(beam.DoFn):
    """Writes each element pickled to its own file: the runner returns no
    results to the caller, so files are how a test sees a stage's output."""

    def __init__(self, folder: str):
        self.folder = folder

    def process(self, element):
        with FileSystems.create(FileSystems.join(self.folder, uuid.uuid4().hex)) as h:
            h.write(pickle.dumps(element))


def read_sink(folder: str) -> list:
    if not os.path.isdir(folder):
        return []
    out = []
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            out.append(pickle.load(f))
    return out


def on_dask(address, tmp_path, build, partitions: int = 4) -> list:
    """Elements of ``build(p)`` computed on the cluster (the sink is the last
    transform, so it is the one the runner computes). Every Create is split
    into ``partitions`` dask partitions, so work spreads over both workers
    (the default, 128 elements a partition, would keep small tests on one)."""
    folder = str(tmp_path / f"sink-{uuid.uuid4().hex[:6]}")
    p = beam.Pipeline(options=dask_options(address, f"--dask_npartitions={partitions}"))
    _ = build(p) | "Sink" >> beam.ParDo(_PickleSink(folder))
    run_and_close(p)
    return read_sink(folder)


# ---------------------------------------------------------------- the cluster

def test_cluster_is_two_worker_processes_listening_on_loopback_only(dask_address):
    import psutil
    assert dask_address.startswith("tcp://127.0.0.1:")
    with distributed.Client(dask_address) as client:
        workers = client.scheduler_info()["workers"]
        pids = client.run(os.getpid)
        nannies = client.run(os.getppid)
        scheduler = client.run_on_scheduler(os.getpid)
    assert len(workers) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in workers)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    listening = {(pid, c.laddr.ip) for pid in {scheduler, *pids.values(), *nannies.values()}
                 for c in psutil.Process(pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listening and {ip for _, ip in listening} == {"127.0.0.1"}, listening


# ------------------------------------------- transforms the pipeline relies on

@pytest.mark.parametrize("reshuffle", [True, False])
def test_create_reshuffle_map_every_element_once(dask_address, tmp_path, reshuffle):
    got = on_dask(dask_address, tmp_path, lambda p: (
        p | beam.Create(list(range(400)), reshuffle=reshuffle)
          | beam.Reshuffle()
          | beam.Map(lambda x: x * 3)))
    assert sorted(got) == [x * 3 for x in range(400)]


class _KindFn(beam.DoFn):
    """Like the pipeline's stages: heavy state from setup(), ONE output of
    (kind, payload) pairs, split afterwards by split_by_kind."""

    def setup(self):
        self.names = {0: "zero", 1: "one", 2: "two"}

    def process(self, x):
        yield ("name", self.names[x % 3]) if x % 2 else ("num", x)
        if x == 4:
            yield "count", {"seen": 1}


def test_pardo_setup_and_split_by_kind(dask_address, tmp_path):
    from pipelines.transforms.common import split_by_kind

    def build(p):
        parts = split_by_kind(p | beam.Create(list(range(10))) | beam.ParDo(_KindFn()),
                              ("name", "num", "count"), "Split")
        return ([parts[k] | f"Tag{k}" >> beam.Map(lambda v, k=k: (k, v)) for k in sorted(parts)]
                | beam.Flatten())

    got = sorted(on_dask(dask_address, tmp_path, build), key=repr)
    want = [("name", ["zero", "one", "two"][x % 3]) for x in range(1, 10, 2)]
    want += [("num", x) for x in range(0, 10, 2)] + [("count", {"seen": 1})]
    assert got == sorted(want, key=repr)


def test_filter_and_flatmap(dask_address, tmp_path):
    got = on_dask(dask_address, tmp_path, lambda p: (
        p | beam.Create(list(range(300)))
          | beam.Filter(lambda x: x % 7 == 0)
          | beam.FlatMap(lambda x: [x] * (x % 3))))
    assert sorted(got) == sorted(x for x in range(0, 300, 7) for _ in range(x % 3))


@pytest.mark.parametrize("key", ["int", "none"])
def test_group_by_key_across_partitions(dask_address, tmp_path, key):
    keyf = (lambda i: i % 13) if key == "int" else (lambda i: None)
    got = on_dask(dask_address, tmp_path, lambda p: (
        p | beam.Create([(keyf(i), i) for i in range(400)])
          | beam.GroupByKey()
          | beam.Map(lambda kv: (kv[0], sorted(kv[1])))))
    want = {}
    for i in range(400):
        want.setdefault(keyf(i), []).append(i)
    # one group per key, however many partitions and processes fed it
    assert sorted(got, key=repr) == sorted(want.items(), key=repr)


def test_flatten_of_several(dask_address, tmp_path):
    got = on_dask(dask_address, tmp_path, lambda p: (
        [p | f"C{i}" >> beam.Create([f"{i}-{j}" for j in range(150)]) for i in range(3)]
        | beam.Flatten()))
    assert sorted(got) == sorted(f"{i}-{j}" for i in range(3) for j in range(150))


def test_arrow_batches_and_tables_cross_the_shuffle(dask_address, tmp_path):
    from pipelines.schema import RAW_SCHEMA

    def batch(i):
        rows = [{"ip": f"198.18.{i}.{j}", "port": 22, "banner": bytes([i, j, 0xFF]), "source_offset": j}
                for j in range(5)]
        b = pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
        return (i % 3, b) if i % 2 else (i % 3, pa.Table.from_batches([b]))

    got = on_dask(dask_address, tmp_path, lambda p: (
        p | beam.Create([batch(i) for i in range(60)]) | beam.GroupByKey()))
    assert sorted(k for k, _ in got) == [0, 1, 2]
    for k, items in got:
        items = list(items)
        assert {type(x) for x in items} == {pa.RecordBatch, pa.Table}
        # field docs live in field metadata: they must survive pickling
        assert all(x.schema.equals(RAW_SCHEMA, check_metadata=True) for x in items)
        t = pa.concat_tables(pa.Table.from_batches([x]) if isinstance(x, pa.RecordBatch) else x
                             for x in items)
        want = sorted(f"198.18.{i}.{j}" for i in range(60) if i % 3 == k for j in range(5))
        assert sorted(t.column("ip").to_pylist()) == want
        assert set(t.column("banner").to_pylist()) == {bytes([i, j, 0xFF]) for i in range(60)
                                                       if i % 3 == k for j in range(5)}


def test_combiners_give_correct_results(dask_address, tmp_path):
    """CombineGlobally, Count.PerElement and CombinePerKey are right when they
    feed the last transform (reports of them 'returning nothing' were the
    last-sink rule, see test_broken_only_the_last_sink_runs)."""
    got = on_dask(dask_address, tmp_path, lambda p: (
        (p | "A" >> beam.Create(list(range(400))) | beam.CombineGlobally(sum)
           | "TagA" >> beam.Map(lambda v: ("sum", v)),
         p | "E" >> beam.Create([]) | "SumEmpty" >> beam.CombineGlobally(sum)
           | "TagE" >> beam.Map(lambda v: ("empty", v)),
         p | "B" >> beam.Create([i % 3 for i in range(400)]) | beam.combiners.Count.PerElement()
           | "TagB" >> beam.Map(lambda kv: ("count", kv)),
         p | "C" >> beam.Create([("a", 1), ("a", 2), ("b", 5)]) | beam.CombinePerKey(sum)
           | "TagC" >> beam.Map(lambda kv: ("perkey", kv)))
        | beam.Flatten()))
    assert sorted(got, key=repr) == sorted(
        [("sum", sum(range(400))), ("empty", 0), ("count", (0, 134)), ("count", (1, 133)),
         ("count", (2, 133)), ("perkey", ("a", 3)), ("perkey", ("b", 5))], key=repr)


def test_assert_that_works_as_the_last_transform(dask_address):
    p = beam.Pipeline(options=dask_options(dask_address))
    assert_that(p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x + 1), equal_to([2, 3, 4]))
    run_and_close(p)
    p = beam.Pipeline(options=dask_options(dask_address))
    assert_that(p | beam.Create([1, 2]), equal_to([1, 3]))
    with pytest.raises(BeamAssertException):
        run_and_close(p)


class _CountingFn(beam.DoFn):
    def __init__(self):
        self.seen = Metrics.counter("test", "seen")

    def process(self, x):
        self.seen.inc()
        yield x


def test_metrics_calls_are_harmless_but_not_collected(dask_address):
    p = beam.Pipeline(options=dask_options(dask_address))
    _ = p | beam.Create([1, 2]) | beam.ParDo(_CountingFn())
    result = p.run()
    try:
        result.wait_until_finish()
        # dask_runner.py:161-163: counters are never gathered
        with pytest.raises(NotImplementedError):
            result.metrics()
    finally:
        result.client.close()


class _SetupMarkFn(beam.DoFn):
    def __init__(self, folder):
        self.folder = folder

    def setup(self):
        with FileSystems.create(FileSystems.join(self.folder, uuid.uuid4().hex)) as h:
            h.write(b"setup")

    def process(self, x):
        yield x


def test_setup_runs_once_per_partition(dask_address, tmp_path):
    """Not per worker as elsewhere (apply_dofn_to_bundle, transform_evaluator.py:185-203):
    heavy setup (GeoIP tables) is paid once per dask partition."""
    marks = str(tmp_path / "marks")
    got = on_dask(dask_address, tmp_path, lambda p: (
        p | beam.Create(list(range(8))) | beam.ParDo(_SetupMarkFn(marks))), partitions=4)
    assert sorted(got) == list(range(8))
    assert len(os.listdir(marks)) == 4


# -------------------------------------- broken today: these assert the bug

def test_broken_only_the_last_sink_runs(dask_address, tmp_path):
    """dask_runner.py:247-252 computes the bag of the last visited transform only."""
    first, last = str(tmp_path / "first"), str(tmp_path / "last")
    p = beam.Pipeline(options=dask_options(dask_address))
    c = p | beam.Create([1, 2])
    _ = c | "First" >> beam.ParDo(_PickleSink(first))
    _ = c | beam.Map(lambda x: -x) | "Last" >> beam.ParDo(_PickleSink(last))
    run_and_close(p)
    assert sorted(read_sink(last)) == [-2, -1]
    assert read_sink(first) == []  # never computed: not upstream of the last transform


def test_broken_an_earlier_assert_that_is_never_checked(dask_address):
    """Same cause: an assert_that that is not last is never computed."""
    p = beam.Pipeline(options=dask_options(dask_address))
    assert_that(p | "X" >> beam.Create([1, 2]), equal_to([1, 3]), label="Wrong")
    assert_that(p | "Y" >> beam.Create([1, 2]), equal_to([1, 2]), label="Right")
    run_and_close(p)  # passes although "Wrong" does not hold


class _TwoTagsFn(beam.DoFn):
    def process(self, x):
        yield x
        yield beam.pvalue.TaggedOutput("odd" if x % 2 else "even", x * 10)


def test_broken_with_outputs_sends_every_output_to_every_consumer(dask_address, tmp_path):
    """Every tag's receiver appends to one list and ``v.value`` drops the tag
    (transform_evaluator.py:99-121,198); consumers are wired to the producing
    transform, not to a tag (dask_runner.py:192-194)."""
    def build(p):
        outs = p | beam.Create([1, 2, 3]) | beam.ParDo(_TwoTagsFn()).with_outputs("odd", "even", main="main")
        return ((outs.main | "M" >> beam.Map(lambda v: ("main", v)),
                 outs.odd | "O" >> beam.Map(lambda v: ("odd", v)))
                | beam.Flatten())

    got = on_dask(dask_address, tmp_path, build)
    everything = [1, 10, 2, 20, 3, 30]
    assert sorted(v for t, v in got if t == "main") == sorted(everything)  # right: [1, 2, 3]
    assert sorted(v for t, v in got if t == "odd") == sorted(everything)   # right: [10, 30]


class _FinishBundleFn(beam.DoFn):
    def start_bundle(self):
        self.n = 0

    def process(self, x):
        self.n += 1

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.windowed_value import WindowedValue
        yield WindowedValue(self.n, 0, [GlobalWindow()])


def test_broken_finish_bundle_output_is_dropped(dask_address, tmp_path):
    """Results are collected before invoke_finish_bundle (transform_evaluator.py:198-200)."""
    got = on_dask(dask_address, tmp_path, lambda p: p | beam.Create([1, 2, 3]) | beam.ParDo(_FinishBundleFn()))
    assert got == []  # right: [3]


def test_broken_top_of_gives_an_empty_list(dask_address, tmp_path):
    """Top.Of's _TopPerBundle emits in finish_bundle (transforms/combiners.py:222-236, 341)."""
    got = on_dask(dask_address, tmp_path, lambda p: p | beam.Create([5, 1, 9, 3]) | beam.combiners.Top.Of(2))
    assert got == [[]]  # right: [[9, 5]]; its _TopPerBundle emits in finish_bundle


class _MarkFn(beam.DoFn):
    def __init__(self, folder):
        self.folder = folder

    def process(self, x):
        with FileSystems.create(FileSystems.join(self.folder, uuid.uuid4().hex)) as h:
            h.write(pickle.dumps(x))
        yield x


def test_broken_side_input_upstream_runs_twice(dask_address, tmp_path):
    """A side input is ``list(bag)``, a nested compute of its own
    (transform_evaluator.py:84-96), beside the main graph's copy."""
    marks = str(tmp_path / "marks")

    def build(p):
        side = p | "S" >> beam.Create([7, 8]) | "Upstream" >> beam.ParDo(_MarkFn(marks))
        main = p | "M" >> beam.Create(list(range(6))) | beam.Map(lambda x, s: (x, sorted(s)),
                                                                  beam.pvalue.AsList(side))
        return (main, side | "Wrap" >> beam.Map(lambda s: (s, None))) | beam.Flatten()

    got = on_dask(dask_address, tmp_path, build, partitions=3)
    assert sorted(got, key=repr) == sorted([(x, [7, 8]) for x in range(6)] + [(7, None), (8, None)], key=repr)
    evaluated = sorted(read_sink(marks))
    # each side element once for the main graph, again for the side input
    assert len(evaluated) >= 4 and set(evaluated) == {7, 8}  # right: exactly [7, 8]


def test_broken_read_from_text_has_no_translation(dask_address, tmp_path):
    """Read becomes _Read (overrides.py:125-131), which has no translation and no input bag."""
    src = tmp_path / "in.txt"
    src.write_text("a\nb\n")
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'map'"):
        on_dask(dask_address, tmp_path, lambda p: p | beam.io.ReadFromText(str(src)))


def test_broken_short_runner_name_is_unknown():
    """options/pipeline_options.py:728-742 ALL_KNOWN_RUNNERS does not list the DaskRunner."""
    from apache_beam.runners.runner import create_runner
    with pytest.raises(ValueError, match="Unexpected pipeline runner: DaskRunner"):
        create_runner("DaskRunner")
    assert type(create_runner(DASK_RUNNER)).__name__ == "DaskRunner"
