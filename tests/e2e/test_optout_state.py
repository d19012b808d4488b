"""The opt-out invariants of issue 14, end to end through the CLI on the demo
week: a list once applied to an output root cannot be forgotten, reaches
weeks whose raw files are gone, and opted-out hosts never sit in the
quarantine with their address."""
import json
import os
import shutil

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipelines import cli
from pipelines.exits import EXIT_DAMAGED, EXIT_OK, EXIT_USAGE
from pipelines.summary import clean_dataset
from tests.e2e.conftest import DEMO_WEEK

pytestmark = pytest.mark.slow
BEAM = ["--runner=FnApiRunner"]


def _raw_copy(demo_raw, tmp_path):
    raw, truth = demo_raw
    copy = tmp_path / "raw"
    shutil.copytree(raw / DEMO_WEEK, copy / DEMO_WEEK)
    return copy, truth


def _run(raw, out, *extra, command="run"):
    week = ["--week", DEMO_WEEK] if command in ("run", "reprocess") else []
    return cli.main([command, *week, "--raw", str(raw), "--out", str(out), "--no-site", "--quiet", *extra] + BEAM)


def _clean_ips(out) -> set:
    return set(clean_dataset(str(out), DEMO_WEEK).to_table(columns=["ip"]).column("ip").to_pylist())


def _manifest(out) -> dict:
    with open(os.path.join(out, f"week={DEMO_WEEK}", "manifest.json")) as f:
        return json.load(f)


def _quarantine_text(out) -> str:
    path = os.path.join(out, f"week={DEMO_WEEK}", "quarantine")
    if not os.path.isdir(path):
        return ""
    return "\n".join(ds.dataset(path, format="parquet").to_table().column("excerpt").to_pylist())


def test_a_run_without_exclude_after_a_list_was_applied_still_excludes_every_listed_host(demo_raw, tmp_path,
                                                                                        capsys):
    raw, truth = _raw_copy(demo_raw, tmp_path)
    out = tmp_path / "out"
    assert _run(raw, out) == EXIT_DAMAGED                      # the demo week has damaged files on purpose
    before = _clean_ips(out)
    net = truth["single_responder"]["network"]                 # a whole /24 and one IPv6 host
    v6 = sorted(i for i in before if ":" in i)[0]
    listed = {i for i in before if i.startswith(net.rsplit(".", 1)[0] + ".")} | {v6}
    assert len(listed) > 10
    optout = tmp_path / "optout.txt"
    optout.write_text(f"# asked 2013-09-20\n{net}\n{v6}\n")

    assert _run(raw, out, "--exclude", str(optout)) == EXIT_DAMAGED
    assert not listed & _clean_ips(out)
    excluded = _manifest(out)["totals"]["excluded"]
    assert excluded > 0

    optout.unlink()     # the operator's file is gone: the record in OUT is what counts
    for command, extra in (("run", ("--force",)), ("reprocess", ()), ("weekly", ("--force",))):
        assert _run(raw, out, *extra, command=command) == EXIT_DAMAGED, command
        assert not listed & _clean_ips(out), command
        m = _manifest(out)
        assert m["totals"]["excluded"] == excluded, command
        assert m["run"]["optout_list"] == {"recorded_list": True, "list": "state/optout.txt"}
        assert m["run"]["optout"]["ipv6_ranges"] == 1
    # and nothing looks changed to an incremental run, nor to status (which compares with the record)
    assert _run(raw, out, command="weekly") == EXIT_OK
    capsys.readouterr()
    assert cli.main(["status", "--raw", str(raw), "--out", str(out), "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert [r["changes"] for r in rows] == [[]]
    record = json.loads((out / "state" / "optout.json").read_text())
    assert [h["change"] for h in record["history"]] == ["recorded"]


def test_shrinking_the_recorded_list_needs_a_flag_and_a_hand_edit_is_refused(demo_raw, tmp_path, capsys):
    raw, _ = _raw_copy(demo_raw, tmp_path)
    out = tmp_path / "out"
    assert _run(raw, out) == EXIT_DAMAGED
    ips = sorted(_clean_ips(out))
    a, b = ips[10], ips[20]
    (tmp_path / "ab.txt").write_text(f"{a}\n{b}\n")
    (tmp_path / "b.txt").write_text(f"{b}\n")
    assert _run(raw, out, "--exclude", str(tmp_path / "ab.txt")) == EXIT_DAMAGED
    assert not {a, b} & _clean_ips(out)
    # a smaller --exclude adds nothing and removes nothing
    assert _run(raw, out, "--exclude", str(tmp_path / "b.txt")) == EXIT_OK
    assert not {a, b} & _clean_ips(out)
    # only --drop-optout-entries brings a host back (with a warning in the log)
    assert _run(raw, out, "--drop-optout-entries", str(tmp_path / "b.txt")) == EXIT_DAMAGED
    ips_now = _clean_ips(out)
    assert a not in ips_now and b in ips_now
    log = (out / "logs" / "portcensus.log").read_text()
    assert "shrunk by 1 addresses" in log
    # a hand edit of the recorded list is refused (exit 2), nothing is run
    state = out / "state" / "optout.txt"
    state.write_text(state.read_text().replace(a, "# " + a))
    capsys.readouterr()
    assert _run(raw, out, "--force") == EXIT_USAGE
    assert "changed outside portcensus" in capsys.readouterr().err
    assert a not in _clean_ips(out)
    assert _run(raw, out, "--replace-optout", str(tmp_path / "ab.txt")) == EXIT_DAMAGED
    assert not {a, b} & _clean_ips(out)


def test_opted_out_records_that_fail_validation_are_excluded_not_quarantined(demo_raw, tmp_path):
    raw, _ = _raw_copy(demo_raw, tmp_path)
    out = tmp_path / "out"
    host = "81.2.69.160"    # routed space, not in the demo
    week = raw / DEMO_WEEK
    # one valid record, three that fail validation (outside the week, port, status),
    # and one line the reader cannot parse that still spells the address
    (week / "masscan-extra.list").write_text(
        "#masscan\n"
        f"open tcp 22 {host} 1378782004\n"
        f"open tcp 22 {host} 1000000000\n"
        f"open tcp 70000 {host} 1378782005\n"
        f"ajar tcp 80 {host} 1378782006\n"
        f"open tcp {host} 1378782007 garbled\n"
        "open tcp 22 81.2.69.161 1000000000\n")
    optout = tmp_path / "optout.txt"
    optout.write_text(f"{host}\n")
    _run(raw, out, "--exclude", str(optout))
    m = _manifest(out)
    extra = next(f for f in m["files"] if f["file"] == "masscan-extra.list")
    assert extra["identity_holds"] and m["totals"]["identity_holds"]
    assert extra["read"] == 6
    assert extra["excluded"] == 5 and extra["excluded_reasons"] == {"optout": 5}
    assert extra["quarantined"] == 1                  # the other host's record, outside the week
    quarantine = _quarantine_text(out)
    assert host not in quarantine and "81.2.69.161" in quarantine
    assert host not in _clean_ips(out)


def test_an_optout_added_after_the_raw_files_were_deleted_reaches_data_aggregates_and_pages(demo_raw, tmp_path,
                                                                                            capsys):
    raw, truth = _raw_copy(demo_raw, tmp_path)
    out, site = tmp_path / "out", tmp_path / "site"
    base = ["--raw", str(raw), "--out", str(out), "--site", str(site), "--quiet"]
    assert cli.main(["run", "--week", DEMO_WEEK, *base] + BEAM) == EXIT_DAMAGED
    before = clean_dataset(str(out), DEMO_WEEK).to_table()
    agg_path = os.path.join(out, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet")
    agg_before = pq.read_table(agg_path)
    m_before = _manifest(out)
    page = site / "weeks" / DEMO_WEEK / "index.html"
    page_before = page.read_bytes()

    # the week's raw files are pruned; the RAW root has another week
    kept_raw = tmp_path / "kept"
    shutil.copytree(raw / DEMO_WEEK, kept_raw / DEMO_WEEK)
    shutil.rmtree(raw / DEMO_WEEK)
    (raw / "2013-W38").mkdir()
    net = truth["single_responder"]["network"]
    prefix = net.rsplit(".", 1)[0] + "."
    ssh = before.filter(pc.and_(pc.equal(before.column("port"), 22), pc.equal(before.column("status"), "open")))
    one = sorted(i for i in ssh.column("ip").to_pylist() if not i.startswith(prefix))[0]
    optout = tmp_path / "optout.txt"
    optout.write_text(f"{net}\n{one}\n")
    gone = pc.or_(pc.starts_with(before.column("ip"), prefix), pc.equal(before.column("ip"), one))
    removed = before.filter(gone)
    assert removed.num_rows > 256

    capsys.readouterr()
    assert cli.main(["run", "--week", DEMO_WEEK, *base, "--exclude", str(optout), "--dry-run"]) == EXIT_OK
    assert f"would apply the opt-out list to the published data of {DEMO_WEEK}" in capsys.readouterr().out
    assert not (out / "state").exists()                          # a dry run records nothing
    assert cli.main(["run", "--week", DEMO_WEEK, *base, "--exclude", str(optout)] + BEAM) == EXIT_OK
    after = clean_dataset(str(out), DEMO_WEEK).to_table()
    assert after.num_rows == before.num_rows - removed.num_rows
    assert not pc.any(pc.or_(pc.starts_with(after.column("ip"), prefix), pc.equal(after.column("ip"), one))).as_py()
    m = _manifest(out)
    records = pc.sum(removed.column("records")).as_py()
    assert m["totals"]["excluded"] == m_before["totals"]["excluded"] + records
    assert m["totals"]["read"] == m_before["totals"]["read"] and m["totals"]["identity_holds"]
    assert all(f["identity_holds"] for f in m["files"])
    assert m["observations"]["rows"] == m_before["observations"]["rows"] - removed.num_rows
    assert m["run"]["optout_entries_sha256"] and m["optout_reapplied"][-1]["observations_removed"] == removed.num_rows
    # aggregates recomputed from the filtered rows
    agg = pq.read_table(agg_path)

    def port22_total(t):
        rows = t.filter(pc.and_(pc.equal(t.column("dimension"), "total"), pc.equal(t.column("port"), 22)))
        return pc.sum(rows.column("hosts_raw")).as_py()
    removed_22 = removed.filter(pc.and_(pc.equal(removed.column("port"), 22),
                                        pc.equal(removed.column("status"), "open"))).num_rows
    assert removed_22 >= 1
    assert port22_total(agg) == port22_total(agg_before) - removed_22
    # the site was rebuilt from them
    assert page.read_bytes() != page_before
    total_22 = f"{port22_total(agg):,}"
    assert total_22.encode() in (site / "weeks" / DEMO_WEEK / "port-22-tcp.html").read_bytes()
    # applying the same list again changes nothing
    assert cli.main(["run", "--week", DEMO_WEEK, *base] + BEAM) == EXIT_OK
    assert _manifest(out) == m
    # and the result is what a run from the raw files with the list would have published
    # (the removed /24 is a whole single-responder group, so even adjusted counts agree)
    fresh = tmp_path / "fresh"
    assert _run(kept_raw, fresh, "--exclude", str(optout)) == EXIT_DAMAGED
    assert pq.read_table(os.path.join(fresh, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet")).equals(agg)
    keys = os.path.join("aggregates", "host_keys.json")
    assert (fresh / f"week={DEMO_WEEK}" / keys).read_text() == (out / f"week={DEMO_WEEK}" / keys).read_text()
    assert _manifest(fresh)["totals"] == m["totals"]


def test_render_applies_the_recorded_list_to_published_weeks(demo_raw, tmp_path):
    raw, _ = _raw_copy(demo_raw, tmp_path)
    out, site = tmp_path / "out", tmp_path / "site"
    assert _run(raw, out) == EXIT_DAMAGED
    one = sorted(_clean_ips(out))[3]
    optout = tmp_path / "optout.txt"
    optout.write_text(f"{one}\n")
    assert cli.main(["render", "--out", str(out), "--site", str(site), "--exclude", str(optout)]) == EXIT_OK
    assert one not in _clean_ips(out)
    assert (out / "state" / "optout.txt").exists()
    # the week now matches the recorded list: an incremental run has nothing to do
    assert _run(raw, out) == EXIT_OK


def test_a_run_of_another_week_with_a_new_list_applies_it_to_published_weeks_that_keep_raw_files(demo_raw,
                                                                                               tmp_path):
    raw, _ = _raw_copy(demo_raw, tmp_path)
    out, site = tmp_path / "out", tmp_path / "site"
    base = ["--raw", str(raw), "--out", str(out), "--site", str(site), "--quiet"]
    assert cli.main(["run", "--week", DEMO_WEEK, *base] + BEAM) == EXIT_DAMAGED
    before = clean_dataset(str(out), DEMO_WEEK).to_table()
    ssh = before.filter(pc.and_(pc.equal(before.column("port"), 22), pc.equal(before.column("status"), "open")))
    listed = sorted(set(ssh.column("ip").to_pylist()))[:3]
    agg_path = os.path.join(out, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet")

    def port22_total(t):
        rows = t.filter(pc.and_(pc.equal(t.column("dimension"), "total"), pc.equal(t.column("port"), 22)))
        return pc.sum(rows.column("hosts_raw")).as_py()
    total_before = port22_total(pq.read_table(agg_path))
    # a second week (W1's raw files stay in place), run with a new list naming W1's hosts
    w2 = "2013-W38"
    (raw / w2).mkdir()
    (raw / w2 / "masscan-w2.list").write_text("#masscan\nopen tcp 22 81.2.69.160 1379386804\n")
    optout = tmp_path / "optout.txt"
    optout.write_text("".join(f"{ip}\n" for ip in listed))
    assert cli.main(["run", "--week", w2, *base, "--exclude", str(optout)] + BEAM) in (EXIT_OK, EXIT_DAMAGED)
    assert not set(listed) & _clean_ips(out)
    assert _manifest(out)["run"]["optout_entries_sha256"]
    total = port22_total(pq.read_table(agg_path))
    assert total == total_before - len(listed)
    assert f"{total:,}".encode() in (site / "weeks" / DEMO_WEEK / "port-22-tcp.html").read_bytes()
    for page in site.rglob("*"):
        if page.is_file():
            assert not any(ip.encode() in page.read_bytes() for ip in listed), page


def test_render_refuses_a_published_week_made_with_another_list_than_the_recorded_one(demo_raw, tmp_path):
    from pipelines.config import RunConfig
    from pipelines.optout_state import OptOutStateError, apply
    from pipelines.orchestrate import render
    raw, _ = _raw_copy(demo_raw, tmp_path)
    out = tmp_path / "out"
    assert _run(raw, out) == EXIT_DAMAGED
    optout = tmp_path / "optout.txt"
    optout.write_text(f"{sorted(_clean_ips(out))[3]}\n")
    apply(str(out), str(optout))                 # recorded, but not applied to the week
    with pytest.raises(OptOutStateError, match=DEMO_WEEK):
        render(RunConfig(week=DEMO_WEEK, out=str(out)), str(tmp_path / "site"))
    assert not (tmp_path / "site").exists()
