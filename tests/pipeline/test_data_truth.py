"""What is published is true (issue 15), through the real Beam pipeline:
ports from evidence, the week window, public Internet only."""
import datetime as dt
import json
import os

from tests.pipeline.conftest import REAL, clean_rows, copy_real, run_week

WEEK = "2026-W48"                  # the real fixtures' week (2026-11-25)
MON = int(dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc).timestamp())


def _zgrab2_line(ip, module, ts, **mod):
    return json.dumps({"ip": ip, "data": {module: {"status": "success", "protocol": module,
                                                    "timestamp": ts, "result": {}, **mod}}}) + "\n"


def test_zgrab2_ports_from_evidence_and_assumed_ports_counted(week_dir, tmp_path):
    raw, d = week_dir
    ts = "2026-11-25T10:00:00Z"
    http = lambda host, scheme="http": {"result": {"response": {"status_code": 200, "request": {  # noqa: E731
        "url": {"scheme": scheme, "host": host, "path": "/"}}, "headers": {"server": ["nginx"]}}}}
    (d / "web.jsonl").write_text(
        _zgrab2_line("198.18.0.1", "http", ts, **http("198.18.0.1", "https"))
        + _zgrab2_line("198.18.0.1", "http", ts, **http("198.18.0.1:8080"))
        + _zgrab2_line("198.18.0.2", "smtp", ts, result={"banner": "220 mail ESMTP"}))
    # The same smtp scan landed with its port: the sidecar says 587.
    (d / "smtp587.jsonl").write_text(_zgrab2_line("198.18.0.3", "smtp", ts, result={"banner": "220 x"}))
    (d / "smtp587.jsonl.meta.json").write_text(json.dumps({"port_hint": 587}))
    m = run_week(raw, tmp_path / "out")
    rows = {(r["ip"], r["port"]): r["port_source"] for r in clean_rows(tmp_path / "out").to_pylist()}
    assert rows == {("198.18.0.1", 443): "record", ("198.18.0.1", 8080): "record",
                    ("198.18.0.2", 25): "assumed", ("198.18.0.3", 587): "sidecar"}
    pe = m["port_evidence"]
    assert pe["records_port_assumed"] == 1 and pe["files_port_assumed"] == {"web.jsonl": 1}
    assert {f["file"]: f["facts"].get("ports_assumed") for f in m["files"]} == {
        "web.jsonl": 1, "smtp587.jsonl": None}


def test_records_outside_the_week_and_without_time_are_quarantined(week_dir, tmp_path):
    raw, d = week_dir
    inside, edge = "2026-11-25T10:00:00Z", "2026-11-30T23:30:00Z"     # Monday after, within the slack
    old = "2020-03-01T00:00:00Z"
    (d / "z.jsonl").write_text(
        _zgrab2_line("8.8.8.1", "ftp", inside, result={"banner": "220 a"})
        + _zgrab2_line("8.8.8.2", "ftp", edge, result={"banner": "220 b"})
        + _zgrab2_line("8.8.8.3", "ftp", old, result={"banner": "220 c"})
        + _zgrab2_line("8.8.8.4", "ftp", None, result={"banner": "220 d"}))
    # A bare zmap list has no time: its sidecar's scan start is the file's time.
    (d / "list_p22.txt").write_text("8.8.4.4\n8.8.4.5\n")
    (d / "list_p22.txt.meta.json").write_text(json.dumps({"scan_start_us": (MON + 3600) * 1_000_000}))
    (d / "bare_p23.txt").write_text("8.8.4.6\n")            # no sidecar: no time at all
    m = run_week(raw, tmp_path / "out", allow_special_purpose=False)
    assert m["totals"]["identity_holds"]
    f = {x["file"]: x for x in m["files"]}
    assert f["z.jsonl"]["quarantine_reasons"] == {"missing_timestamp": 2, "outside_week": 2}
    assert f["list_p22.txt"]["accepted"] == 2 and f["bare_p23.txt"]["quarantine_reasons"] == {
        "missing_timestamp": 1}
    assert m["time"]["first_seen"] == "2026-11-23T01:00:00Z"
    assert m["time"]["last_seen"] == "2026-11-30T23:30:00Z"
    assert m["time"]["window"] == {"start": "2026-11-22T00:00:00Z", "end": "2026-12-01T00:00:00Z",
                                   "slack_hours": 24}
    # No slack: the Monday-after record is outside too.
    m0 = run_week(raw, tmp_path / "out0", allow_special_purpose=False, week_slack_hours=0)
    assert {x["file"]: x for x in m0["files"]}["z.jsonl"]["quarantine_reasons"]["outside_week"] == 4
    assert m0["time"]["last_seen"] == "2026-11-25T10:00:00Z"


def test_special_purpose_space_is_excluded_by_reason_unless_allowed(week_dir, tmp_path):
    raw, d = week_dir
    copy_real(d, "masscan_shard1of2.json")       # a test network: 198.18.0.0/15
    (d / "public.jsonl").write_text(_zgrab2_line("8.8.8.8", "ftp", "2026-11-25T10:00:00Z",
                                                 result={"banner": "220 x"}))
    m = run_week(raw, tmp_path / "out", allow_special_purpose=False)
    assert m["totals"]["identity_holds"]
    f = {x["file"]: x for x in m["files"]}["masscan_shard1of2.json"]
    assert f["accepted"] == 0 and f["excluded"] == f["read"] > 0
    assert f["excluded_reasons"] == {"special_purpose": f["read"]}
    assert m["excluded_reasons"] == {"special_purpose": f["read"]}
    assert {r["ip"] for r in clean_rows(tmp_path / "out").to_pylist()} == {"8.8.8.8"}
    assert m["run"]["special_purpose"]["excluded"] is True
    kept = run_week(raw, tmp_path / "kept", allow_special_purpose=True)
    assert kept["totals"]["excluded"] == 0 and kept["run"]["special_purpose"]["excluded"] is False
    assert len({r["ip"] for r in clean_rows(tmp_path / "kept").to_pylist()}) > 1


def test_site_says_which_ports_were_assumed_and_what_was_excluded(week_dir, tmp_path):
    from pipelines.report.pages import quality
    raw, d = week_dir
    (d / "z.jsonl").write_text(_zgrab2_line("8.8.8.8", "ftp", "2026-11-25T10:00:00Z",
                                            result={"banner": "220 x"})
                               + _zgrab2_line("10.0.0.1", "ftp", "2026-11-25T10:00:00Z"))
    m = run_week(raw, tmp_path / "out", allow_special_purpose=False)
    q = quality(WEEK, m)
    assert q.ports_assumed == 2 and q.excluded_special == 1 and not q.special_allowed
