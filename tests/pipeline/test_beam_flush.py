"""What lost rows in multi_threading: Beam's periodic data-plane flush, and
the guard that turns it off (pipelines/beam_guard.py, docs/SCALING.md).

1. Beam's behaviour, exactly: ``TimeBasedBufferingClosableOutputStream``
   flushes on its own thread with ``callback(get()); _clear()``, so bytes the
   writer adds while the callback runs are cleared and never sent.
2. In a real multi_threading run that flusher thread exists while bundles
   write, with Beam's default; with the guard it does not.
3. A tiny pipeline whose bundles write to the data plane without pause (the
   case that lost thousands of elements in 2 of 3 runs unguarded) delivers
   every element with the guard.
"""
from __future__ import annotations

import sys
import threading
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import data_plane

from pipelines import beam_guard
from pipelines.bench_threads import MULTI_THREADING

pytestmark = pytest.mark.slow


def _run(transform):
    opts = PipelineOptions(["--runner=FnApiRunner", *MULTI_THREADING])
    with beam.Pipeline(options=opts) as p:
        _ = p | beam.Create([0, 1]) | beam.Reshuffle() | transform


def test_beams_periodic_flush_drops_what_is_written_during_its_callback():
    sent = []
    in_callback, resume = threading.Event(), threading.Event()

    def on_flush(data: bytes):
        sent.append(data)
        if data and not in_callback.is_set():
            in_callback.set()
            # The callback copies the buffer into a protobuf and queues it:
            # the GIL moves on, and a full send queue blocks it outright.
            resume.wait(10)

    stream = data_plane.TimeBasedBufferingClosableOutputStream(
        sent.append, flush_callback=on_flush, time_flush_threshold_ms=20)
    stream.write(b"first;")
    assert in_callback.wait(10), "the periodic flush never ran"
    stream.write(b"second;")      # the bundle's thread goes on, as DataOutputOperation.process does
    resume.set()
    deadline = time.time() + 10
    while stream.size() and time.time() < deadline:   # until the flush's _clear()
        time.sleep(0.01)
    stream.close()
    assert b"".join(sent) == b"first;"                 # "second;" is gone, no error raised


def test_the_size_based_stream_the_guard_leaves_sends_everything():
    sent = []
    stream = data_plane.ClosableOutputStream.create(sent.append, sent.append, 0)
    assert type(stream) is data_plane.SizeBasedBufferingClosableOutputStream
    for i in range(1000):
        stream.write(b"%d;" % i)
        stream.maybe_flush()       # between elements, on the writer's own thread
    stream.close()
    assert b"".join(sent) == b"".join(b"%d;" % i for i in range(1000))


def _is_flusher(t: threading.Thread) -> bool:
    # A data-plane stream's flusher; the SDK worker has another PeriodicThread
    # (bundle processor cache shutdown), told apart by its function.
    return (isinstance(t, data_plane.PeriodicThread) and t.is_alive()
            and "_schedule_periodic_flush" in getattr(t, "_function", print).__qualname__)


class _SeesFlusher(beam.DoFn):
    """Writes whether a data-plane flusher thread is alive while a bundle runs."""

    def __init__(self, path: str):
        self.path = path

    def process(self, seed):
        alive = any(_is_flusher(t) for t in threading.enumerate())
        with open(f"{self.path}-{seed}", "w") as f:
            f.write(str(alive))
        yield seed, seed     # to a GroupByKey: this bundle writes to the data plane


def _flusher_seen(path: str) -> bool:
    return any(open(f"{path}-{s}").read() == "True" for s in (0, 1))


def test_the_guard_removes_the_periodic_flusher_from_multi_threading(tmp_path, monkeypatch):
    guarded = str(tmp_path / "guarded")
    beam_guard.disable_timed_flush()
    assert beam_guard.timed_flush_ms() == 0
    _run(beam.ParDo(_SeesFlusher(guarded)) | beam.GroupByKey())
    assert not _flusher_seen(guarded)

    # Beam's default, restored for one run: the flusher is there.
    assert beam_guard.BEAM_DEFAULT_MS and beam_guard.BEAM_DEFAULT_MS > 0
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", beam_guard.BEAM_DEFAULT_MS)
    stock = str(tmp_path / "stock")
    _run(beam.ParDo(_SeesFlusher(stock)) | beam.GroupByKey())
    assert _flusher_seen(stock)


def test_the_guard_refuses_a_grpc_mode_on_a_beam_without_the_setting(monkeypatch):
    monkeypatch.delattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS")
    for mode in ("multi_threading", "multi_processing"):
        with pytest.raises(beam_guard.BeamGuardError, match=f"{mode} would run without the guard"):
            beam_guard.disable_timed_flush(mode)
    beam_guard.disable_timed_flush("in_memory")     # no timer there: runs on
    beam_guard.disable_timed_flush(None)
    assert not hasattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS")


class _EmitFor(beam.DoFn):
    """Emits small elements without pause for ``seconds`` (several periodic
    flushes' worth); counts them in a file, outside the data plane."""

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    def process(self, seed):
        end, n = time.time() + self.seconds, 0
        while time.time() < end:
            for _ in range(100):
                yield n % 5, (seed, n, b"x" * 50)
                n += 1
        with open(f"{self.path}-{seed}", "w") as f:
            f.write(str(n))


class _Received(beam.DoFn):
    def __init__(self, path: str):
        self.path = path

    def process(self, sizes):
        with open(self.path, "w") as f:
            f.write(str(sum(sizes)))


def _count(kv):
    return len(list(kv[1]))


def test_a_continuous_writer_loses_nothing_in_guarded_multi_threading(tmp_path):
    beam_guard.disable_timed_flush()
    emitted, received = str(tmp_path / "emitted"), str(tmp_path / "received")
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)   # the GIL changes hands often: unguarded, this lost elements in every run
    try:
        _run(beam.ParDo(_EmitFor(emitted, 2.0)) | beam.GroupByKey() | beam.Map(_count)
             | beam.combiners.ToList() | beam.ParDo(_Received(received)))
    finally:
        sys.setswitchinterval(switch)
    sent = sum(int(open(f"{emitted}-{s}").read()) for s in (0, 1))
    assert sent > 10_000
    assert int(open(received).read()) == sent
