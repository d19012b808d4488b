"""Two of Beam's fixed costs per run, avoided without changing what it runs.

Measured on this repo's graph (45 ParDos) with Beam 2.77; together ~0.18 s
of every run, a tenth of the 50k-record week (docs/BENCHMARKS.md):

- ``PipelineOptions.view_as`` builds a new options object for every call,
  parsing the flags again with an argparse parser of every registered option
  class (~0.23 ms), and Beam asks for a view 225 times while the graph is
  applied and run: 52 ms. ``Options`` hands out one view per class: views
  share their values (``_all_options``, Beam's own note: a change in any view
  applies to all), so one object answers as a new one would.
- ``userstate.get_dofn_specs`` inspects the signature of every method of a
  DoFn (~0.35 ms) and Beam asks it 6-8 times about each DoFn (ParDo
  construction, the runner API, each worker's DoFnSignature): 126 ms. The
  answer depends only on the DoFn's methods, which are fixed once it exists,
  so it is remembered per DoFn object while that object lives.

Neither is a guard (pipelines/beam_guard.py is): if Beam moves
``get_dofn_specs``, ``remember_dofn_specs`` leaves it alone and runs cost
what they did.
"""
from __future__ import annotations

import functools
import weakref

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import userstate


class Options(PipelineOptions):
    """``PipelineOptions`` whose views are made once per class."""

    def view_as(self, cls):
        views = self.__dict__.setdefault(_VIEWS, {})
        view = views.get(cls)
        if view is None:
            view = views[cls] = super().view_as(cls)
        return view

    def __getstate__(self):
        # Views are not pickled (nor deep-copied): Beam's own __getstate__
        # may copy _all_options, and a view carried along would then keep a
        # dict of its own; the copy makes its views anew, from its own values.
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != _VIEWS}


_VIEWS = "_portcensus_views"


_specs: dict[int, tuple[weakref.ref, tuple[frozenset, frozenset]]] = {}


def remember_dofn_specs() -> bool:
    """Make ``userstate.get_dofn_specs`` remember its answer per DoFn object
    (idempotent, for the whole process). False if Beam has no such function."""
    original = getattr(userstate, "get_dofn_specs", None)
    if original is None:
        return False
    if getattr(original, "_portcensus_remembers", False):
        return True

    @functools.wraps(original)
    def get_dofn_specs(dofn):
        key = id(dofn)
        hit = _specs.get(key)
        if hit is not None and hit[0]() is dofn:
            state, timers = hit[1]
            return set(state), set(timers)   # callers get sets of their own, as before
        state, timers = original(dofn)
        try:
            # The entry goes with its DoFn, before its id can be another object's.
            ref = weakref.ref(dofn, lambda _, key=key: _specs.pop(key, None))
        except TypeError:                    # an object without weak references: not remembered
            return state, timers
        _specs[key] = (ref, (frozenset(state), frozenset(timers)))
        return state, timers

    get_dofn_specs._portcensus_remembers = True
    userstate.get_dofn_specs = get_dofn_specs
    return True
