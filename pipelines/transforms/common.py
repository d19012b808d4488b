"""Small building blocks shared by the stages.

Stages that produce several kinds of output (good rows, quarantine, counts)
emit ``(kind, payload)`` pairs from ONE output and are split with filters
here, instead of Beam's multi-output ``with_outputs``: Beam's DaskRunner sends
every tagged output to every consumer (see docs/SCALING.md), and a single
tagged stream behaves the same on every runner.
"""
from __future__ import annotations

import apache_beam as beam


class _PayloadsOf:
    """Picklable (no lambda closing over a loop variable): the payload of
    each element of one kind. Filter and payload in one step, so a split
    adds one ParDo per kind to the graph, not two: Beam inspects every
    ParDo's methods several times while it builds and runs the graph
    (about 0.6 ms per ParDo per look), which a small week pays in full."""

    def __init__(self, kind: str):
        self.kind = kind

    def __call__(self, element):
        if element[0] == self.kind:
            yield element[1]


def split_by_kind(pcoll, kinds: tuple[str, ...], label: str) -> dict:
    """{kind: PCollection of payloads} from a PCollection of (kind, payload)."""
    return {kind: pcoll | f"{label}.Only[{kind}]" >> beam.FlatMap(_PayloadsOf(kind)) for kind in kinds}


def sum_dicts(dicts) -> dict:
    """Element-wise sum of nested {name: int | dict} counters (deterministic)."""
    out: dict = {}
    for d in dicts:
        _add_into(out, d)
    return _sorted(out)


def _add_into(acc: dict, d: dict) -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            _add_into(acc.setdefault(k, {}), v)
        else:
            acc[k] = acc.get(k, 0) + v


def _sorted(d):
    return {k: _sorted(d[k]) if isinstance(d[k], dict) else d[k] for k in sorted(d)}


class _Seed:
    """Marks the element that makes an empty input still produce one list."""


def _keyed(value):
    return None, value


def _values(element) -> list:
    return [v for v in element[1] if not isinstance(v, _Seed)]


class GatherAll(beam.PTransform):
    """PCollection(s) of small values -> ONE element: the list of all of them
    (empty when there were none).

    A single-key GroupByKey with a seed element, not CombineGlobally: combiners
    and ``Top``/``Count`` misbehave on the DaskRunner (docs/SCALING.md), and the
    seed keeps an empty week producing its (empty) output."""

    def expand(self, pcolls):
        pcolls = pcolls if isinstance(pcolls, tuple) else (pcolls,)
        p = pcolls[0].pipeline
        keyed = [p | "Seed" >> beam.Create([(None, _Seed())])] + [
            pc | f"Key[{i}]" >> beam.Map(_keyed) for i, pc in enumerate(pcolls)]
        return (keyed
                | "Flatten" >> beam.Flatten()
                | "GroupAll" >> beam.GroupByKey()
                | "Values" >> beam.Map(_values))
