"""Week-wide facts the per-port aggregates cannot give: how many distinct
addresses answered at all, how many of those are many-port hosts (tarpits,
honeypots), and which input file found which port's hosts (for coverage per
port and job).

Pure Arrow over a week's clean rows (columns ``ip``, ``port``, ``transport``,
``status``, ``many_ports``, ``source_file``); no address leaves this module,
only counts. Example result::

    {"addresses": 11872, "services": 24735, "ports": 14,
     "many_port_hosts": 4, "many_port_services": 4096,
     "by_file": {"masscan-p22-shard1of3.ndjson.gz": {"22/tcp": 1830}, ...}}
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ("ip", "port", "transport", "status", "many_ports", "source_file")


def week_facts(t: pa.Table) -> dict:
    """Counts of the week's open rows; many-port hosts counted apart, so a
    tarpit answering 1,024 ports neither adds 1,024 ports nor 1,024 services."""
    t = t.filter(pc.equal(t.column("status"), "open"))
    many = pc.fill_null(t.column("many_ports"), False)
    normal, flagged = t.filter(pc.invert(many)), t.filter(many)
    keys = pc.binary_join_element_wise(normal.column("port").cast(pa.string()), normal.column("transport"), "/")
    by_file: dict[str, dict[str, int]] = {}
    if normal.num_rows:
        grouped = pa.table({"f": pc.fill_null(normal.column("source_file"), ""), "k": keys}) \
            .group_by(["f", "k"]).aggregate([([], "count_all")])
        for f, k, n in sorted(zip(*(grouped.column(c).to_pylist() for c in ("f", "k", "count_all")))):
            by_file.setdefault(f, {})[k] = n
    return {
        "addresses": pc.count_distinct(normal.column("ip")).as_py() if normal.num_rows else 0,
        "services": normal.num_rows,
        "ports": pc.count_distinct(keys).as_py() if normal.num_rows else 0,
        "many_port_hosts": pc.count_distinct(flagged.column("ip")).as_py() if flagged.num_rows else 0,
        "many_port_services": flagged.num_rows,
        "by_file": by_file,
    }


def load_week_facts(out: str, week: str) -> dict | None:
    """``week_facts`` of a published week's clean Parquet; None when the week
    has no clean data here (a site built from aggregates alone)."""
    from pipelines.layout import clean_dataset, clean_files
    if not clean_files(out, week):
        return None
    return week_facts(clean_dataset(out, week).to_table(columns=list(COLUMNS)))
