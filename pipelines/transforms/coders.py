"""The coder for the pipeline's untyped elements: pickle, sized cheaply.

Beam samples the size of the elements of every PCollection for its metrics,
and for an untyped (``Any``) element it does so by encoding it. Our elements
are few and large (Arrow batches of 10^4-10^5 rows), so nearly every one was
sampled, and pickled in full, once per PCollection it passed through inside a
fused stage, where nothing is otherwise encoded: 1.6 GB of pickling, 1.2 s
of a 9.8 s run on the 2M-record bench week. This coder encodes as Beam's fallback does (pickle) but estimates
an element's size from Arrow's own byte count instead of encoding it.

It is registered as the first fallback coder (``register``), so it serves
only PCollections whose type Beam does not know; a key that must be
deterministic (GroupByKey) still gets Beam's deterministic coder.
"""
from __future__ import annotations

import pickle

import pyarrow as pa

import apache_beam as beam
from apache_beam.coders import typecoders


def estimated_size(value) -> int:
    if isinstance(value, (pa.RecordBatch, pa.Table)):
        return value.nbytes
    if isinstance(value, (tuple, list)) and len(value) < 16:
        return sum(estimated_size(v) for v in value) + 2
    return len(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


class ArrowAwarePickleCoder(beam.coders.Coder):
    def encode(self, value) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes):
        return pickle.loads(encoded)

    def estimate_size(self, value) -> int:
        return estimated_size(value)

    def is_deterministic(self) -> bool:
        return False

    def as_deterministic_coder(self, step_label, error_message=None):
        return beam.coders.FastPrimitivesCoder().as_deterministic_coder(step_label, error_message)

    def to_type_hint(self):
        return typecoders.typehints.Any

    @classmethod
    def from_type_hint(cls, typehint, registry):
        return cls()

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


_registered = False


def register() -> None:
    """Make it Beam's first fallback coder in this process (idempotent)."""
    global _registered
    if not _registered:
        typecoders.registry.register_fallback_coder(ArrowAwarePickleCoder)
        _registered = True
