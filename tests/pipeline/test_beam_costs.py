"""Beam's per-run fixed costs avoided (pipelines/beam_costs.py) without
changing what Beam sees: option views share their values as Beam's own do,
and the remembered DoFn specs are Beam's answer, stateful DoFns included,
run by the real in-process runner."""
from __future__ import annotations

import copy
import gc
import pickle

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import (DebugOptions, PipelineOptions, SetupOptions,
                                                  StandardOptions, TypeOptions)
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.userstate import BagStateSpec

from pipelines import beam_costs
from pipelines.beam_costs import Options, remember_dofn_specs


def test_one_view_per_class_with_the_values_beam_gives():
    args = ["--runner=FnApiRunner", "--no_pipeline_type_check", "--experiments=a", "--direct_num_workers=2"]
    ours, beams = Options(args), PipelineOptions(args)
    assert ours.view_as(StandardOptions) is ours.view_as(StandardOptions)
    assert ours.view_as(TypeOptions) is not ours.view_as(StandardOptions)
    assert ours.get_all_options() == beams.get_all_options()
    for cls in (StandardOptions, TypeOptions, DebugOptions, SetupOptions):
        assert vars(ours.view_as(cls)._visible_options) == vars(beams.view_as(cls)._visible_options)


def test_a_change_through_one_view_is_seen_through_every_view_and_copy():
    o = Options(["--runner=FnApiRunner"])
    std = o.view_as(StandardOptions)
    o.view_as(DebugOptions).experiments = ["x"]
    std.runner = "DirectRunner"
    assert o.view_as(StandardOptions).runner == "DirectRunner"
    assert o.get_all_options()["runner"] == "DirectRunner"
    assert o.view_as(DebugOptions).experiments == ["x"]
    # Beam deep-copies a pipeline's options (beam.Pipeline.__init__); the copy's views are its own
    c = copy.deepcopy(o)
    c.view_as(StandardOptions).runner = "FnApiRunner"
    assert c.view_as(StandardOptions).runner == "FnApiRunner"
    assert o.view_as(StandardOptions).runner == "DirectRunner"
    back = pickle.loads(pickle.dumps(o))
    assert back.view_as(StandardOptions).runner == "DirectRunner"
    assert back.view_as(DebugOptions).experiments == ["x"]
    # copies make their views anew, from their own values (none is carried along)
    fresh = pickle.loads(pickle.dumps(o))
    assert beam_costs._VIEWS not in fresh.__dict__ and beam_costs._VIEWS not in copy.deepcopy(o).__dict__
    fresh.view_as(StandardOptions).runner = "Z"
    assert fresh.get_all_options()["runner"] == "Z" and o.get_all_options()["runner"] == "DirectRunner"


class _Plain(beam.DoFn):
    def process(self, x):
        yield x


class _Stateful(beam.DoFn):
    SEEN = BagStateSpec("seen", VarIntCoder())

    def process(self, kv, seen=beam.DoFn.StateParam(SEEN)):
        key, value = kv
        seen.add(value)
        yield key, sorted(seen.read())


def test_remembered_specs_are_beams_answer_per_object_and_go_with_it():
    original = userstate.get_dofn_specs
    original = getattr(original, "__wrapped__", original)
    assert remember_dofn_specs() and remember_dofn_specs()        # idempotent
    assert userstate.get_dofn_specs.__wrapped__ is original       # wrapped once, not twice
    stateful, plain = _Stateful(), _Plain()
    for fn in (stateful, plain):
        first = userstate.get_dofn_specs(fn)
        assert first == original(fn)
        first[0].clear()                                          # the caller's own sets
        assert userstate.get_dofn_specs(fn) == original(fn)
        assert id(fn) in beam_costs._specs
    assert userstate.is_stateful_dofn(stateful) and not userstate.is_stateful_dofn(plain)
    assert [s.name for s in userstate.get_dofn_specs(stateful)[0]] == ["seen"]
    key = id(plain)
    del plain, fn
    gc.collect()
    assert key not in beam_costs._specs                            # the entry went with its DoFn


def test_a_stateful_dofn_still_runs_as_stateful_in_the_real_runner():
    remember_dofn_specs()
    with beam.Pipeline(options=Options(["--runner=FnApiRunner"])) as p:
        out = (p | beam.Create([("a", 1), ("a", 2), ("b", 5)])
               | beam.ParDo(_Stateful())
               | beam.Filter(lambda kv: len(kv[1]) == (2 if kv[0] == "a" else 1)))
        # state per key: "a" saw both of its values, "b" its one
        assert_that(out, equal_to([("a", [1, 2]), ("b", [5])]))
