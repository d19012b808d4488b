import json
import os

import pytest

from pipelines.config import RunConfig
from pipelines.week import process_week
from scanners.synth.demo import write_demo_week

DEMO_WEEK = "2013-W37"


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory):
    """The demo week as `make run` writes it; returns (raw_root, truth)."""
    raw = tmp_path_factory.mktemp("demo") / "raw"
    write_demo_week(str(raw), DEMO_WEEK, 2013)
    with open(raw / f"{DEMO_WEEK}.truth.json") as f:
        truth = json.load(f)
    return raw, truth


@pytest.fixture(scope="session")
def demo_run(demo_raw, tmp_path_factory):
    """The demo week processed once by the real pipeline: (out, manifest, truth)."""
    raw, truth = demo_raw
    out = tmp_path_factory.mktemp("demo-out")
    manifest = process_week(RunConfig(week=DEMO_WEEK, raw=str(raw), out=str(out)).validate(),
                            ["--runner=FnApiRunner"])
    return out, manifest, truth


def raw_files(raw):
    d = os.path.join(raw, DEMO_WEEK)
    return sorted(os.listdir(d))


@pytest.fixture(scope="session")
def golden_published(tmp_path_factory):
    """The golden weeks (pipelines/report/golden.py) through the real pipeline, once a session."""
    from pipelines.report import golden
    return golden.publish_weeks(str(tmp_path_factory.mktemp("golden")))


@pytest.fixture(scope="session")
def golden_site_files(golden_published):
    """{path: bytes} of the golden site, built once a session."""
    from pipelines.report import golden
    golden.write_aggregates(golden_published)
    return golden.build_golden_site(golden_published)
