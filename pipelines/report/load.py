"""The renderer's inputs: every published week's manifest and aggregates.

Layout read (one folder per week, see pipelines/week.py)::

    OUT/week=<W>/manifest.json
    OUT/week=<W>/aggregates/aggregates.{parquet,csv,json}

The aggregates are k-suppressed again with the site's k: the site never shows
a value on fewer hosts than it promises, even if the stage ran with a smaller
k. Where that changes nothing, the published files are copied byte for byte
into the downloads; otherwise the downloads are the re-suppressed table.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import aggregate as agg
from pipelines.layout import clean_dataset, week_path
from pipelines.report.facts import load_week_facts
from pipelines.report.regate import gate_stored
from pipelines.week import load_manifest, published_weeks


WEEK_RE = re.compile(r"^(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])$")


class ReportError(Exception):
    """The site cannot be built from these inputs; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class WeekData:
    week: str
    manifest: dict
    aggregates: pa.Table            # AGG_SCHEMA, suppressed with the site's k
    downloads: dict[str, bytes]     # AGG_FILES name -> bytes to publish
    from_clean: bool = False        # computed here from clean Parquet, not by the stage
    host_keys: dict | None = None   # aggregates/host_keys.json (weeks with zgrab2 ssh keys)
    facts: dict | None = None       # pipelines/report/facts.py: distinct addresses, files per port


def _is_week(week: str) -> bool:
    # As pipelines.discover.check_week, without importing Beam's file systems.
    m = WEEK_RE.match(week)
    if not m:
        return False
    try:
        datetime.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        return False
    return True


def aggregates_from_clean(out: str, week: str) -> pa.Table:
    """The week's aggregates computed from its clean Parquet (for weeks
    published before the Aggregate stage existed). One table for the whole
    week: responder-group ids are unique across buckets, so this equals the
    sum of per-bucket partials."""
    dataset = clean_dataset(out, week)
    # optional columns (cpe) only where the week's schema has them
    wanted = list(agg.NEEDED) + [c for c in agg.OPTIONAL if c in dataset.schema.names]
    clean = dataset.to_table(columns=wanted)
    return agg.combine([agg.partial_aggregates(clean, week)])


HOST_KEYS = "host_keys.json"


def _host_keys(folder: str, k: int) -> dict | None:
    path = os.path.join(folder, HOST_KEYS)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        doc = json.load(f)
    # JSON object keys are strings; key sizes are ints again here.
    stats = doc["stats"]
    stats["key_bits"] = {alg: {int(b): c for b, c in by_bits.items()}
                         for alg, by_bits in stats.get("key_bits", {}).items()}
    from pipelines.keys.stats import assert_counts_only
    from pipelines.transforms.keys import fold_small_groups
    assert_counts_only(doc["stats"])       # refuse to publish anything but counts
    if doc.get("churn"):
        assert_counts_only(doc["churn"])
    if k > doc.get("k", 0):
        doc = dict(doc, stats=fold_small_groups(doc["stats"], k), k=k)
    return doc


def load_week(out: str, week: str, k: int, from_clean: bool = False) -> WeekData:
    manifest = load_manifest(out, week)
    if manifest is None:
        raise ReportError(f"week {week}: no manifest.json under {week_path(out, week)}")
    folder = os.path.join(week_path(out, week), agg.AGG_DIR)
    parquet = os.path.join(folder, "aggregates.parquet")
    if os.path.exists(parquet):
        stored = pq.read_table(parquet).select(agg.AGG_SCHEMA.names).cast(agg.AGG_SCHEMA)
        if stored.num_rows and set(stored.column("week").to_pylist()) != {week}:
            raise ReportError(f"{parquet} holds rows of another week")
        # stored values are not trusted (an older writer, a weaker gate): gated
        # again, and the downloads written from the gated table, never copied
        table = agg.suppress(gate_stored(stored), k)
        downloads = agg.serialise(table)
        keys = _host_keys(folder, k)
        if keys is not None:
            downloads[HOST_KEYS] = (json.dumps(keys, indent=2, sort_keys=True) + "\n").encode()
        return WeekData(week, manifest, table, downloads, host_keys=keys, facts=load_week_facts(out, week))
    if not from_clean:
        raise ReportError(f"week {week} has no aggregates ({parquet}); rerun the week with the "
                          "Aggregate stage, or render with --from-clean")
    table = agg.suppress(aggregates_from_clean(out, week), k)
    return WeekData(week, manifest, table, agg.serialise(table), from_clean=True,
                    facts=load_week_facts(out, week))


def load_weeks(out: str, k: int, from_clean: bool = False) -> list[WeekData]:
    """Every published week under ``out``, oldest first."""
    if not os.path.isdir(out):
        raise ReportError(f"data folder {out} does not exist")
    weeks = published_weeks(out)
    for w in weeks:
        if not _is_week(w):
            raise ReportError(f"{out}/week={w}: not an ISO week like 2013-W37")
    if not weeks:
        raise ReportError(f"no published week under {out} (expected {out}/week=<W>/manifest.json)")
    return [load_week(out, w, k, from_clean) for w in weeks]
