"""The fallback coder that sizes Arrow elements without encoding them."""
import pickle

import pyarrow as pa

import apache_beam as beam
from apache_beam.coders import typecoders
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners import pipeline_context

from pipelines.config import RunConfig
from pipelines.transforms.coders import ArrowAwarePickleCoder, estimated_size, register


def table(n=50_000):
    return pa.table({"a": pa.array(range(n), pa.int64()), "s": pa.array([str(i) for i in range(n)])})


def test_round_trips_and_sizes_arrow_from_its_byte_count():
    t = table()
    element = ("clean", ("0003", t))
    coder = ArrowAwarePickleCoder()
    back = coder.decode(coder.encode(element))
    assert back[0] == "clean" and back[1][0] == "0003" and back[1][1].equals(t)
    size = coder.estimate_size(element)
    assert t.nbytes <= size < t.nbytes + 100
    # what Beam's default estimate costs: encoding the whole element
    assert abs(size - len(pickle.dumps(element, pickle.HIGHEST_PROTOCOL))) < 0.1 * size
    assert estimated_size({"files": {"a": 1}}) == len(pickle.dumps({"files": {"a": 1}}, pickle.HIGHEST_PROTOCOL))


def test_keys_still_get_a_deterministic_coder():
    det = ArrowAwarePickleCoder().as_deterministic_coder("GroupByBucket")
    assert det.is_deterministic()
    assert det.encode((3, "x")) == det.encode((3, "x"))


def test_the_weeks_untyped_pcollections_use_it(tmp_path):
    from pipelines.pipeline import build
    (tmp_path / "raw" / "2013-W38").mkdir(parents=True)
    (tmp_path / "raw" / "2013-W38" / "a.ndjson").write_text("")
    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner", "--no_pipeline_type_check"]))  # as run_pipeline
    build(p, RunConfig(week="2013-W38", raw=str(tmp_path / "raw"), out=str(tmp_path / "out")),
          str(tmp_path / "staging"), str(tmp_path / "shuffle"))
    assert isinstance(typecoders.registry.get_coder(typecoders.typehints.Any), ArrowAwarePickleCoder)
    proto = p.to_runner_api()
    context = pipeline_context.PipelineContext(proto.components)
    coders = {pc.unique_name: context.coders.get_by_id(pc.coder_id)
              for pc in proto.components.pcollections.values()}
    big = [name for name in coders if name.endswith(("Deduplicate/Merge.None", "ReadScanFiles/Read.None",
                                                     "EnrichGeoAsn/Lookup.None"))]
    assert len(big) == 3, sorted(coders)
    assert all(isinstance(coders[name], ArrowAwarePickleCoder) for name in big)
    register()   # idempotent
    assert isinstance(typecoders.registry.get_coder(typecoders.typehints.Any), ArrowAwarePickleCoder)
