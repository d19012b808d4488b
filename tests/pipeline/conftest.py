import os
import shutil

import pyarrow as pa
import pytest

from pipelines.config import RunConfig
from pipelines.schema import PROVENANCE_COLUMNS
from pipelines.summary import clean_dataset
from pipelines.week import process_week

REAL = os.path.join(os.path.dirname(__file__), "..", "fixtures", "real")


def run_week(raw, out, week="2026-W48", **kw):
    """Run the real pipeline (in-process FnApiRunner) and return its manifest.

    The real fixtures were made on a test network (198.18.0.0/15, zgrab2's
    172.17/16 containers): special-purpose space, kept here explicitly."""
    kw.setdefault("allow_special_purpose", True)
    cfg = RunConfig(week=week, raw=str(raw), out=str(out), **kw).validate()
    return process_week(cfg, ["--runner=FnApiRunner"])


def clean_rows(out, week="2026-W48", provenance=False) -> pa.Table:
    t = clean_dataset(str(out), week).to_table()
    if not provenance:
        t = t.drop_columns(list(PROVENANCE_COLUMNS))
    return t.sort_by([("ip", "ascending"), ("port", "ascending"), ("transport", "ascending")])


@pytest.fixture
def week_dir(tmp_path):
    """A fresh raw week folder; returns (raw_root, week_folder)."""
    d = tmp_path / "raw" / "2026-W48"
    d.mkdir(parents=True)
    return tmp_path / "raw", d


def copy_real(dst, *names):
    for n in names:
        shutil.copy(os.path.join(REAL, n), dst / n)
