"""A new opt-out for a week that cannot be rerun: filter what was published.

Weeks whose raw files are gone (pruned after publication) still must drop a
host that opts out later. ``reapply_week`` takes the published week folder,
removes the listed hosts' clean rows and the quarantine rows whose excerpt
names a listed address, recomputes the week's aggregates and host-key
statistics from the filtered clean rows (the same functions the pipeline
uses: pipelines/aggregate.py, pipelines/keys/stats.py), adjusts the manifest's
counts, and swaps the folder in as a whole (pipelines/publish.py), like a run.

Accounting: every removed record becomes *excluded* (reason ``optout``), so
``read = accepted + quarantined + excluded + merged`` still holds, per file
and in total. The accepted and quarantined records are moved in the file
they were counted for; a clean row's merged records are moved in the file of
its deciding record (``source_file``), and where that file has fewer merged
records left, in the other files' (the raw files, which would say exactly,
are gone). The manifest's ``optout_reapplied`` list says what was done.

Suspected single-responder groups and many-port flags are kept as the full
week found them (recomputing them needs every record of the week).
"""
from __future__ import annotations

import glob
import json
import os
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipelines import aggregate as agg
from pipelines.manifest import COUNT_KEYS, check_identity, dumps, identification_shares
from pipelines.optout import listed_excerpts, listed_rows, load_optout
from pipelines.publish import recover, swap_in
from pipelines.layout import CLEAN_DIR, clean_parquet_opts
from pipelines.schema import CLEAN_SCHEMA, ExclusionReason
from pipelines.week import load_manifest, published_weeks, staging_dir, week_path

OPTOUT = ExclusionReason.OPTOUT.value


def pending(out: str, digest: str | None, only=None) -> list[str]:
    """Published weeks whose manifest was made with another opt-out list than
    ``digest`` (``only(week)`` narrows them down, e.g. to weeks without raw files)."""
    if digest is None:
        return []
    weeks = []
    for w in published_weeks(out):
        run = (load_manifest(out, w) or {}).get("run") or {}
        if run.get("optout_entries_sha256") != digest and (only is None or only(w)):
            weeks.append(w)
    return weeks


def _filter_clean(folder: str, optout) -> dict:
    """Drop listed rows from every clean file; the counts of what went."""
    gone = {"rows": 0, "records": 0, "by_file": {}, "merged_by_file": {}, "by_port": {}}
    for path in _clean_paths(folder):
        t = pq.read_table(path)
        hit = listed_rows(t.column("ip").combine_chunks(), optout)
        if not hit.any():
            continue
        removed = t.filter(pa.array(hit))
        gone["rows"] += removed.num_rows
        gone["records"] += pc.sum(removed.column("records")).as_py()
        port = os.path.basename(os.path.dirname(path))[len("port-"):]   # port-22, port-other (and old port=22)
        gone["by_port"][port] = gone["by_port"].get(port, 0) + removed.num_rows
        for f, r in zip(removed.column("source_file").to_pylist(), removed.column("records").to_pylist()):
            gone["by_file"][f] = gone["by_file"].get(f, 0) + 1
            gone["merged_by_file"][f] = gone["merged_by_file"].get(f, 0) + r - 1
        kept = t.filter(pa.array(~hit))
        if kept.num_rows:
            pq.write_table(kept, path, **clean_parquet_opts(kept))
        else:
            os.remove(path)
    return gone


def _filter_quarantine(folder: str, optout) -> dict:
    gone = {"rows": 0, "by_file": {}, "reasons": {}}
    for path in sorted(glob.glob(os.path.join(folder, "quarantine", "*.parquet"))):
        t = pq.read_table(path)
        hit = listed_excerpts(t.column("excerpt").combine_chunks(), optout)
        if not hit.any():
            continue
        removed = t.filter(pa.array(hit))
        gone["rows"] += removed.num_rows
        for f, r in zip(removed.column("source_file").to_pylist(), removed.column("reason").to_pylist()):
            gone["by_file"][f] = gone["by_file"].get(f, 0) + 1
            gone["reasons"].setdefault(f, {})[r] = gone["reasons"].setdefault(f, {}).get(r, 0) + 1
        kept = t.filter(pa.array(~hit))
        if kept.num_rows:
            pq.write_table(kept, path, **agg.PARQUET_OPTS)
        else:
            os.remove(path)
    return gone


def _clean_paths(folder: str) -> list[str]:
    """A week folder's clean files, in the layout of pipelines/layout.py
    (``clean/port-<P>/``; weeks published before it: ``clean/port=<P>/``)."""
    return sorted(glob.glob(os.path.join(glob.escape(folder), CLEAN_DIR, "*", "*.parquet")))


def _clean_table(folder: str) -> pa.Table:
    paths = _clean_paths(folder)
    if not paths:
        return CLEAN_SCHEMA.empty_table()
    return ds.dataset(paths, format="parquet", schema=CLEAN_SCHEMA, partitioning=None).to_table()


def _rewrite_aggregates(folder: str, out: str, week: str, k: int, clean: pa.Table) -> dict:
    table = agg.suppress(agg.combine([agg.partial_aggregates(clean, week)]), k)
    agg_dir = os.path.join(folder, agg.AGG_DIR)
    os.makedirs(agg_dir, exist_ok=True)
    for name, data in agg.serialise(table).items():
        with open(os.path.join(agg_dir, name), "wb") as f:
            f.write(data)
    keys_path = os.path.join(agg_dir, "host_keys.json")
    if os.path.exists(keys_path):
        _rewrite_host_keys(keys_path, out, week, k, clean)
    return agg.identification_summary(table)


def _rewrite_host_keys(path: str, out: str, week: str, k: int, clean: pa.Table) -> None:
    from pipelines.transforms.keys import key_stats_doc, previous_keys, ssh_key_rows
    rows = ssh_key_rows(clean)
    if rows.num_rows == 0:
        os.remove(path)
        return
    with open(path, "w") as f:
        f.write(json.dumps(key_stats_doc(rows, week, k, previous_keys(out, week)), indent=2, sort_keys=True) + "\n")


def _move(entry: dict, key: str, n: int) -> None:
    """Move ``n`` records of a manifest entry from ``key`` to excluded (optout)."""
    if n:
        entry[key] -= n
        entry["excluded"] = entry.get("excluded", 0) + n
        reasons = entry.setdefault("excluded_reasons", {})
        reasons[OPTOUT] = reasons.get(OPTOUT, 0) + n


def adjust_manifest(m: dict, clean_gone: dict, quar_gone: dict) -> dict:
    """The manifest after the removal (see the module docstring); pure."""
    files = {f["file"]: f for f in m["files"]}
    for name, n in clean_gone["by_file"].items():
        _move(files[name], "accepted", n)
    for name, n in quar_gone["by_file"].items():
        _move(files[name], "quarantined", n)
        for reason, c in quar_gone["reasons"][name].items():
            files[name]["quarantine_reasons"][reason] -= c
            if not files[name]["quarantine_reasons"][reason]:
                del files[name]["quarantine_reasons"][reason]
    for name, n in sorted(clean_gone["merged_by_file"].items()):
        # the deciding record's file first, then any file with merged records left
        for f in [files[name]] + [files[x] for x in sorted(files) if x != name]:
            take = min(n, f["merged"])
            _move(f, "merged", take)
            n -= take
            if not n:
                break
    totals = {k: sum(f[k] for f in m["files"]) for k in COUNT_KEYS}
    for f in m["files"]:
        f["identity_holds"] = f["read"] == sum(f[k] for k in COUNT_KEYS[1:])
        f["excluded_reasons"] = dict(sorted(f.get("excluded_reasons", {}).items()))
    totals["identity_holds"] = (totals["read"] == sum(totals[k] for k in COUNT_KEYS[1:])
                                and all(f["identity_holds"] for f in m["files"]))
    m["totals"] = totals
    for key, field in (("quarantine_reasons", "quarantine_reasons"), ("excluded_reasons", "excluded_reasons")):
        acc: dict[str, int] = {}
        for f in m["files"]:
            for r, n in f.get(field, {}).items():
                acc[r] = acc.get(r, 0) + n
        m[key] = dict(sorted(acc.items()))
    obs = m.get("observations") or {}
    if obs:
        obs["rows"] = obs.get("rows", 0) - clean_gone["rows"]
        by_port = obs.get("by_port", {})
        for port, n in clean_gone["by_port"].items():
            by_port[port] = by_port.get(port, 0) - n
            if not by_port[port]:
                del by_port[port]
    return m


def reapply_week(out: str, week: str, list_path: str, digest: str) -> dict:
    """Apply the list at ``list_path`` to the published ``week`` (see the
    module docstring); returns the new manifest. Call under the run lock."""
    from pipelines.optout_state import manifest_facts
    from pipelines.state import file_sha256
    optout = load_optout(list_path)
    live = week_path(out, week)
    recover(live)
    m = load_manifest(out, week)
    staging = staging_dir(out, week)
    try:
        shutil.copytree(live, staging)
        clean_gone = _filter_clean(staging, optout)
        quar_gone = _filter_quarantine(staging, optout)
        run = m.setdefault("run", {})
        k = run.get("k") or agg.DEFAULT_K
        if clean_gone["rows"]:
            ident = _rewrite_aggregates(staging, out, week, k, _clean_table(staging))
            m["identification"] = identification_shares(ident)
        m = adjust_manifest(m, clean_gone, quar_gone)
        run.update({"exclude_file": os.path.basename(list_path), "exclude_sha256": file_sha256(list_path),
                    "optout": optout.summary(), "optout_entries_sha256": digest,
                    "optout_list": manifest_facts(out, list_path)})
        m.setdefault("optout_reapplied", []).append({
            "entries_sha256": digest, "observations_removed": clean_gone["rows"],
            "records_excluded": clean_gone["records"] + quar_gone["rows"],
            "quarantine_rows_excluded": quar_gone["rows"],
            "how": "applied to the published clean and quarantine data (the week was not rerun from raw files)"})
        check_identity(m)
        with open(os.path.join(staging, "manifest.json"), "w") as f:
            f.write(dumps(m))
        swap_in(staging, live)
        return m
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(staging))
        except OSError:
            pass
