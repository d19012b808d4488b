"""The operator's CLI end to end (issue 15, "What to build" 5 and 6): through
the real entry point ``pipelines.cli.main(argv)`` and the real FnApiRunner on
a tiny week, as cron and an operator use it.

One week is published once (module fixture); each test works on its own copy,
so a test that changes files cannot disturb another."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from pipelines import cli
from pipelines.exits import EXIT_CHECK, EXIT_DAMAGED, EXIT_LEAK, EXIT_OK, EXIT_REGRESSION, EXIT_USAGE
from tests.e2e.opsweek import recent_week, shard_lines, shard_name, tiny_week, tree, write_shard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEEK = recent_week(1)            # ended at most 7 days ago: not stale under the default --max-age 8
OLDER = recent_week(2)
OPTOUT = b"# networks that asked not to be scanned\n203.0.113.0/24\n198.51.100.7\n"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """RAW with one tiny week, and OUT/site after one ``weekly`` run with an opt-out list."""
    base = tmp_path_factory.mktemp("published")
    tiny_week(base / "raw", WEEK)
    (base / "optout.txt").write_bytes(OPTOUT)
    code = cli.main(["weekly", "--raw", str(base / "raw"), "--out", str(base / "out"),
                     "--site", str(base / "site"), "--exclude", str(base / "optout.txt"), "--quiet"])
    assert code == EXIT_OK
    return base


@pytest.fixture
def ws(published, tmp_path):
    """A private copy of the published state (mtimes kept, so checksum caches stay valid)."""
    for name in ("raw", "out", "site", "optout.txt"):
        src = published / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp_path / name)
    return tmp_path


def args(ws, command="weekly", *more, exclude=True):
    a = [command, "--raw", str(ws / "raw"), "--out", str(ws / "out")]
    if command != "status":
        a += ["--site", str(ws / "site")]
    if exclude:
        a += ["--exclude", str(ws / "optout.txt")]
    return a + list(more)


def log_lines(ws):
    return [json.loads(line) for line in (ws / "out" / "logs" / "portcensus.log").read_text().splitlines()]


# -- weekly is loud -----------------------------------------------------------
@pytest.mark.parametrize("make_raw,needle", [
    (lambda raw: None, "no such folder (not mounted?)"),
    (lambda raw: raw.mkdir(), "holds no week folder"),
    (lambda raw: (raw / "2026-w01").mkdir(parents=True), "holds no week folder"),
])
def test_weekly_refuses_a_missing_or_empty_raw(tmp_path, capsys, make_raw, needle):
    raw = tmp_path / "raw"
    make_raw(raw)
    code = cli.main(["weekly", "--raw", str(raw), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert needle in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "out" / "week=").exists()


def test_weekly_goes_on_after_a_failed_week_and_exits_with_the_worst_code(ws, capsys):
    (ws / "raw" / OLDER).mkdir()                 # a week folder whose files never arrived: exit 2
    tiny_week(ws / "raw", recent_week(3))        # a new good week, processed before the failing one
    (ws / "raw" / "2025-w23").mkdir()            # misnamed: warned about, never read
    (ws / "raw" / "2025-w23" / "x.json").write_text("{}")
    shutil.rmtree(ws / "site")
    code = cli.main(args(ws, "weekly", "--quiet"))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "2025-w23 is not named like a week" in err
    assert f"week {OLDER} has no raw files" in err and "nothing of it is published" in err
    assert f"1 processed (0 with damaged inputs), 1 failed ({OLDER}), 1 up to date" in err
    assert "the site was rebuilt for the others" in err and "Traceback" not in err
    assert (ws / "out" / f"week={recent_week(3)}" / "manifest.json").exists()   # the good week published
    assert not (ws / "out" / f"week={OLDER}").exists()
    archive = (ws / "site" / "data" / "all" / "archive.csv").read_text()
    assert recent_week(3) in archive and WEEK in archive
    assert log_lines(ws)[-1]["exit_code"] == EXIT_USAGE


# -- dry runs -------------------------------------------------------------------
@pytest.mark.parametrize("command", ["run", "reprocess", "weekly"])
def test_dry_run_says_what_and_why_and_writes_nothing(ws, capsys, command):
    victim = ws / "raw" / WEEK / shard_name(1, 2)
    write_shard(ws / "raw", WEEK, 1, shard_lines(WEEK, 400, 2, 1)[:-1])   # one record fewer
    before = tree(ws / "out"), tree(ws / "site")
    week = ["--week", WEEK] if command != "weekly" else []
    code = cli.main(args(ws, command, *week, "--dry-run"))
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert f"would process {WEEK}: inputs changed: {victim.name}" in out
    assert "nothing was written" in out and "would rebuild the site" in out
    assert (tree(ws / "out"), tree(ws / "site")) == before      # byte for byte: .lock, .state, logs too
    assert not (ws / "out" / ".staging").exists()
    fresh = ws / "fresh-out"                                     # a first dry run creates nothing at all
    assert cli.main(["weekly", "--raw", str(ws / "raw"), "--out", str(fresh), "--dry-run"]) == EXIT_OK
    assert f"would process {WEEK}: never published" in capsys.readouterr().out
    assert not fresh.exists()


def test_dry_run_of_an_up_to_date_week_and_beams_dry_run_is_refused(ws, capsys):
    assert cli.main(args(ws, "run", "--week", WEEK, "--dry-run")) == EXIT_OK
    assert f"{WEEK}: up to date, would be skipped" in capsys.readouterr().out
    before = tree(ws / "out")
    assert cli.main(args(ws, "run", "--week", WEEK, "--force", "--dry_run", "true")) == EXIT_USAGE
    assert "use --dry-run" in capsys.readouterr().err
    assert tree(ws / "out") == before                 # Beam's flag did not slip through and publish


# -- change detection -----------------------------------------------------------
@pytest.mark.parametrize("change,reason", [
    (lambda ws: (ws / "optout.txt").write_bytes(b"198.51.100.7 ; moved\n\n  203.0.113.0/24  # same\n"), None),
    (lambda ws: (ws / "optout.txt").write_bytes(OPTOUT + b"198.51.100.7\n203.0.113.5\n"), None),
    (lambda ws: (ws / "optout.txt").write_bytes(OPTOUT + b"192.0.2.0/24\n"), "opt-out list changed"),
    (lambda ws: ["-k", "5"], "-k changed (10 -> 5)"),
    (lambda ws: ["--responder-min-hosts", "3"], "responder thresholds changed"),
])
def test_change_detection_looks_at_what_matters(ws, capsys, change, reason):
    extra = change(ws)
    extra = extra if isinstance(extra, list) else []      # the opt-out cases rewrite the file
    assert cli.main(args(ws, "weekly", "--dry-run", *extra)) == EXIT_OK
    out = capsys.readouterr().out
    if reason is None:   # comments, spacing, order, duplicates: the same list
        assert f"{WEEK}: up to date" in out, out
    else:
        assert f"would process {WEEK}: {reason}" in out, out
    code = cli.main(args(ws, "status", "--check", *extra))
    assert code == (EXIT_OK if reason is None else EXIT_CHECK)


def test_weekly_since_leaves_older_weeks_alone(ws, capsys):
    tiny_week(ws / "raw", OLDER)                     # never published
    assert cli.main(args(ws, "weekly", "--dry-run", "--since", WEEK)) == EXIT_OK
    out = capsys.readouterr().out
    assert OLDER not in out and f"{WEEK}: up to date" in out
    assert cli.main(args(ws, "weekly", "--dry-run")) == EXIT_OK
    assert f"would process {OLDER}: never published" in capsys.readouterr().out
    (ws / "raw" / recent_week(3)).mkdir()            # a folder without files: the real run would fail
    assert cli.main(args(ws, "weekly", "--dry-run")) == EXIT_USAGE
    out = capsys.readouterr().out
    assert f"would fail {recent_week(3)}: week {recent_week(3)} has no raw files" in out
    assert "1 of 3 weeks would be processed, 1 would fail" in out
    assert cli.main(args(ws, "weekly", "--since", "2026-W99")) == EXIT_USAGE


# -- status for monitoring --------------------------------------------------------
def test_status_check_is_ok_then_names_what_is_wrong(ws, capsys):
    assert cli.main(args(ws, "status", "--check")) == EXIT_OK
    assert "all whole and up to date" in capsys.readouterr().out
    assert cli.main(args(ws, "status", "--check", "--quiet")) == EXIT_OK
    assert capsys.readouterr().out == ""                                   # cron mails nothing

    write_shard(ws / "raw", WEEK, 2, shard_lines(WEEK, 400, 2, 2), cut=True)   # re-copied, damaged
    assert cli.main(args(ws, "status", "--check", "--quiet")) == EXIT_CHECK
    assert f"{WEEK}: not up to date: inputs changed: {shard_name(2, 2)}" in capsys.readouterr().out
    # publishing the damaged copy is a regression: refused with exit 6, the good week stays
    before = {k: v for k, v in tree(ws / "out").items() if k.startswith("week=")}
    assert cli.main(args(ws, "run", "--week", WEEK, "--quiet", "--no-site")) == EXIT_REGRESSION
    err = capsys.readouterr().err
    assert f"week {WEEK} was not replaced" in err and f"damaged files 0 -> 1 (newly damaged: {shard_name(2, 2)})" in err
    assert "--accept-regression" in err and len(err.strip().splitlines()) == 1
    assert {k: v for k, v in tree(ws / "out").items() if k.startswith("week=")} == before
    # accepted: published; status --check now names the damaged file and shows coverage
    assert cli.main(args(ws, "run", "--week", WEEK, "--quiet", "--no-site", "--accept-regression")) == EXIT_DAMAGED
    capsys.readouterr()
    assert cli.main(args(ws, "status", "--check", "--json")) == EXIT_CHECK
    doc = json.loads(capsys.readouterr().out)
    (row,) = doc["weeks"]
    assert row["damaged_files"][0]["file"] == shard_name(2, 2)
    assert "compression_truncated" in row["damaged_files"][0]["kinds"]
    assert 0.5 <= row["coverage"] < 1 and row["changes"] == []
    assert doc["problems"] == [f"{WEEK}: 1 damaged file: {shard_name(2, 2)} "
                               f"({', '.join(row['damaged_files'][0]['kinds'])})"]
    assert cli.main(args(ws, "status")) == EXIT_OK            # the table still exits 0
    table = capsys.readouterr().out
    assert f"damaged: {shard_name(2, 2)}" in table and "cover." in table


def test_status_check_says_stale_when_the_newest_week_is_old(ws, capsys):
    old = ws / "raw2"
    tiny_week(old, "2013-W37")
    out2 = ws / "out2"
    assert cli.main(["run", "--week", "2013-W37", "--raw", str(old), "--out", str(out2), "--no-site",
                     "--quiet"]) == EXIT_OK
    assert cli.main(["status", "--check", "--raw", str(old), "--out", str(out2)]) == EXIT_CHECK
    assert "stale: the newest published week 2013-W37 ended 2013-09-15" in capsys.readouterr().out
    assert cli.main(["status", "--check", "--max-age", "0", "--raw", str(old), "--out", str(out2)]) == EXIT_OK
    assert cli.main(["status", "--check", "--raw", str(ws / "none"), "--out", str(ws / "none")]) == EXIT_CHECK
    assert "no week is published" in capsys.readouterr().out


# -- the regression guard's threshold ---------------------------------------------------
def test_a_small_drop_within_the_threshold_is_published(ws, capsys):
    lines = shard_lines(WEEK, 400, 2, 1)
    write_shard(ws / "raw", WEEK, 1, lines[:-4])        # 4 of 400 records fewer: 1% < 2%
    assert cli.main(args(ws, "weekly", "--quiet", "--no-site")) == EXIT_OK
    m = json.loads((ws / "out" / f"week={WEEK}" / "manifest.json").read_text())
    assert m["totals"]["accepted"] == 396
    write_shard(ws / "raw", WEEK, 1, lines[:-20])       # 16 of 396 fewer: 4% > 2% ...
    assert cli.main(args(ws, "weekly", "--quiet", "--no-site")) == EXIT_REGRESSION
    assert "usable records 396 -> 380 (-4.04%, threshold 2%)" in capsys.readouterr().err
    assert cli.main(args(ws, "weekly", "--quiet", "--no-site", "--regression-threshold", "0.05")) == EXIT_OK


# -- one typed --config ---------------------------------------------------------------
def write_config(ws, text, name="portcensus.toml"):
    path = ws / name
    path.write_text(f'raw = "{ws / "raw"}"\nout = "{ws / "out"}"\nsite = "{ws / "site"}"\n'
                    f'exclude = "{ws / "optout.txt"}"\nk = 10\n' + text)
    return str(path)


@pytest.mark.parametrize("text,needle", [
    ('force = "no"\n', 'force: expected true or false, not \'no\''),
    ("buckets = 2.5\n", "buckets: expected an integer, not 2.5"),
    ("bukets = 4\n", "bukets: unknown setting"),
    ('shuffle = "disk"\n', "shuffle: must be one of files, beam"),
    ("beam = 3\n", "beam: expected a table"),
    ("max_age = \"8\"\n", "max_age: expected an integer"),      # status's key: checked for weekly too
])
def test_config_values_are_type_checked(ws, capsys, text, needle):
    code = cli.main(["weekly", "--config", write_config(ws, text)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert needle in err and len(err.strip().splitlines()) == 1


def test_one_config_file_serves_weekly_status_and_render_with_beam_options(ws, capsys):
    path = write_config(ws, 'quiet = true\nmax_age = 8\n[beam]\nrunner = "FnApiRunner"\n')
    assert cli.main(["weekly", "--config", path]) == EXIT_OK          # up to date: nothing to do
    assert cli.main(["status", "--check", "--config", path]) == EXIT_OK
    assert cli.main(["render", "--config", path]) == EXIT_OK
    assert cli.main(["plan", "--week", WEEK, "--shards", "2", "--config", path]) == EXIT_OK
    capsys.readouterr()
    bad = write_config(ws, 'shuffle = "beam"\n[beam]\nrunner = "DirectRunner"\ndirect_running_mode = "multi_threading"\n',
                       "bad.toml")
    assert cli.main(["weekly", "--config", bad]) == EXIT_USAGE        # the [beam] table reaches Beam's checks
    assert "multi_threading is refused with --shuffle beam" in capsys.readouterr().err
    typo = write_config(ws, "[beam]\ndirect_num_wrokers = 2\n", "typo.toml")
    assert cli.main(["weekly", "--config", typo]) == EXIT_USAGE
    assert "--direct_num_wrokers" in capsys.readouterr().err
    # the command line wins over the file
    assert cli.main(["weekly", "--config", path, "--raw", str(ws / "nowhere")]) == EXIT_USAGE
    assert "nowhere: no such folder" in capsys.readouterr().err


# -- remote paths, --version, the log ------------------------------------------------------
@pytest.mark.parametrize("flag", ["--out", "--raw"])
def test_remote_paths_are_refused_up_front(ws, capsys, monkeypatch, flag):
    monkeypatch.chdir(ws)
    argv = args(ws, "weekly")
    argv[argv.index(flag) + 1] = "s3://bucket/portcensus"
    assert cli.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{flag} s3://bucket/portcensus: only local paths are supported" in err
    assert len(err.strip().splitlines()) == 1 and not (ws / "s3:").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("portcensus 0.") and "Apache Beam 2." in out


def test_every_run_ends_with_a_logged_finished_line_with_run_id_duration_and_code(ws, capsys):
    assert cli.main(args(ws, "weekly", "--quiet")) == EXIT_OK            # a no-op run
    assert capsys.readouterr() == ("", "")
    last = log_lines(ws)[-1]
    assert last["message"] == "finished weekly: exit 0" and last["exit_code"] == 0
    assert last["duration_s"] >= 0 and len(last["run_id"]) == 12
    ids = {line["run_id"] for line in log_lines(ws) if line.get("run_id")}
    assert len(ids) == 2                       # the fixture's run and this one, each with its own id


def test_quiet_keeps_multi_processing_workers_off_stderr(ws):
    r = subprocess.run([sys.executable, "-m", "pipelines", *args(ws, "run", "--week", WEEK), "--force",
                        "--quiet", "--no-site", "--runner", "DirectRunner",
                        "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stderr == "" and r.stdout == ""
    runner = [line for line in log_lines(ws) if line["message"] == "runner output"]
    assert runner and "sdk_worker" in runner[-1]["text"]     # the workers did talk: into the log


SHARED_GEOIP = "/work/shared/geoip-test/GeoLite2-Country-Test.mmdb"


def test_geoip_is_compared_by_database_build_not_by_file(ws, capsys):
    from pipelines.config import DEFAULT_COUNTRY_DB, DEFAULT_GEOIP_CACHE
    from pipelines.geoip import materialize
    plain = ws / "country.mmdb"                      # the same build, decompressed under another name
    shutil.copy(materialize(DEFAULT_COUNTRY_DB, DEFAULT_GEOIP_CACHE), plain)
    assert cli.main(args(ws, "weekly", "--dry-run", "--geoip-country-db", str(plain))) == EXIT_OK
    assert f"{WEEK}: up to date" in capsys.readouterr().out
    if not os.path.exists(SHARED_GEOIP):
        pytest.skip("no second GeoIP build to compare with (/work/shared absent)")
    assert cli.main(args(ws, "weekly", "--dry-run", "--geoip-country-db", SHARED_GEOIP)) == EXIT_OK
    assert f"would process {WEEK}: GeoIP database build changed: country" in capsys.readouterr().out


def test_a_week_with_a_fifo_is_up_to_date_after_its_run(ws, capsys):
    # The manifest and the change check must record the same token for a problem
    # entry, or the week is reprocessed on every run ("inputs changed: pipe.json").
    os.mkfifo(ws / "raw" / WEEK / "pipe.json")
    cli.main(args(ws, "run", "--week", WEEK, "--accept-regression"))
    manifest = json.loads((ws / "out" / f"week={WEEK}" / "manifest.json").read_text())
    pipe = {f["file"]: f for f in manifest["files"]}["pipe.json"]
    assert pipe["damage"][0]["kind"] == "not_a_regular_file"
    capsys.readouterr()
    assert cli.main(args(ws, "run", "--week", WEEK, "--dry-run")) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{WEEK}: up to date, would be skipped" in out, out


def test_weekly_names_failed_weeks_and_exits_with_the_worst_code_when_the_site_leaks(ws, capsys):
    from pipelines.report.identity import DEMO_SITE_CONFIG, HERE
    # an identifier in text the gate does not rewrite (stored aggregates are
    # gated again at render): the leak check refuses the site
    text = open(DEMO_SITE_CONFIG).read()
    text = text.replace('policy = """\n', 'policy = """\nOur scanner once answered as MAC:00:0c:29:3e:5b:7a.\n', 1)
    text = text.replace('plan = "demo_plan.toml"', f'plan = "{os.path.join(HERE, "demo_plan.toml")}"')
    assert "00:0c:29:3e:5b:7a" in text
    config = ws / "planted_site.toml"
    config.write_text(text)
    (ws / "raw" / OLDER).mkdir()                 # a week folder whose files never arrived: exit 2
    tiny_week(ws / "raw", recent_week(3))        # a new good week, so the site is rebuilt
    code = cli.main(args(ws, "weekly", "--quiet", "--site-config", str(config)))
    err = capsys.readouterr().err
    assert code == EXIT_LEAK, err                # 5 outranks 2 (pipelines/exits.py)
    assert f"week {OLDER} has no raw files" in err
    assert f"1 failed ({OLDER})" in err and "leak" in err.lower()
    assert log_lines(ws)[-1]["exit_code"] == EXIT_LEAK
