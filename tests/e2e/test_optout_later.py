"""An opt-out added after a week was published: the next weekly run redoes
the week, the addresses are gone from clean data and aggregates, and the
manifest counts them as excluded (never quarantined)."""
import json
import os

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.config import RunConfig
from pipelines.orchestrate import run_weeks
from pipelines.summary import clean_dataset
from tests.e2e.conftest import DEMO_WEEK

pytestmark = pytest.mark.slow


def test_optout_added_later_is_applied_when_the_week_is_redone(demo_raw, tmp_path):
    raw, truth = demo_raw
    out = tmp_path / "out"
    cfg = RunConfig(week=DEMO_WEEK, raw=str(raw), out=str(out)).validate()
    (first,) = run_weeks(cfg, [DEMO_WEEK], ["--runner=FnApiRunner"], force=False)
    before = clean_dataset(str(out), DEMO_WEEK).to_table()

    net = truth["single_responder"]["network"]                   # a whole /24 ...
    one_v6 = next(i for i in before.column("ip").to_pylist() if ":" in i)   # ... and one IPv6 host
    optout = tmp_path / "optout.txt"
    optout.write_text(f"# owners asked to be left out\n{net}\n{one_v6}\n")
    gone = pc.or_(pc.starts_with(before.column("ip"), net.rsplit(".", 1)[0] + "."),
                  pc.equal(before.column("ip"), one_v6))
    expect_records = pc.sum(before.filter(gone).column("records")).as_py()
    expect_open = before.filter(gone).filter(pc.equal(before.filter(gone).column("status"), "open")).num_rows
    assert expect_records > 256

    cfg2 = RunConfig(week=DEMO_WEEK, raw=str(raw), out=str(out), exclude=str(optout)).validate()
    (again,) = run_weeks(cfg2, [DEMO_WEEK], ["--runner=FnApiRunner"], force=False)
    assert again.ran and "opt-out list changed" in again.reasons
    m = again.manifest
    assert m["totals"]["excluded"] == expect_records
    assert m["totals"]["quarantined"] == first.manifest["totals"]["quarantined"]
    assert m["totals"]["identity_holds"]
    assert m["run"]["optout"]["sha256"] and m["run"]["exclude_sha256"]
    after = clean_dataset(str(out), DEMO_WEEK).to_table()
    assert after.num_rows == before.num_rows - before.filter(gone).num_rows
    assert not pc.any(pc.starts_with(after.column("ip"), net.rsplit(".", 1)[0] + ".")).as_py()
    agg = pq.read_table(os.path.join(out, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet"))
    total = agg.filter(pc.equal(agg.column("dimension"), "total"))
    agg0 = json.loads(json.dumps(first.manifest["observations"]))
    assert pc.sum(total.column("hosts_raw")).as_py() == \
        before.filter(pc.equal(before.column("status"), "open")).num_rows - expect_open
    assert agg0["rows"] - m["observations"]["rows"] == before.filter(gone).num_rows
    # nothing changed since: the next run has nothing to do
    (idle,) = run_weeks(cfg2, [DEMO_WEEK], ["--runner=FnApiRunner"], force=False)
    assert not idle.ran
