"""The operator's decisions as pure functions: the regression guard, status
--check, change detection, the config file's types and the worst exit code."""
import datetime

import pytest

from pipelines import cli
from pipelines.config_file import ConfigFileError, defaults_for
from pipelines.exits import EXIT_DAMAGED, EXIT_FAILED, EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, worst
from pipelines.health import check
from pipelines.regression import RegressionError, check_regression, regression_diff
from pipelines.state import optout_digest, settings_changes


def manifest(accepted=1000, excluded=0, damaged=(), coverage=1.0):
    return {"week": "2013-W37", "totals": {"accepted": accepted, "excluded": excluded},
            "files": [{"file": f, "damaged": True} for f in damaged] + [{"file": "ok.gz", "damaged": False}],
            "coverage": {"fraction": coverage}}


# -- regression guard ----------------------------------------------------------
def test_fewer_usable_records_beyond_the_threshold_is_a_regression():
    old = manifest(1000)
    assert regression_diff(old, manifest(981), 0.02) == []                 # -1.9%
    assert regression_diff(old, manifest(979), 0.02) == ["usable records 1,000 -> 979 (-2.10%, threshold 2%)"]
    assert regression_diff(old, manifest(900, excluded=100), 0.02) == []   # an opt-out grew: not damage
    assert regression_diff(None, manifest(1), 0.02) == []                  # nothing published yet


def test_more_damaged_files_or_lower_coverage_is_a_regression():
    old = manifest(damaged=["a.gz"])
    assert regression_diff(old, manifest(damaged=["b.gz"]), 0.02) == []    # as many as before
    diff = regression_diff(old, manifest(damaged=["a.gz", "b.gz"], coverage=0.9), 0.02)
    assert diff == ["damaged files 1 -> 2 (newly damaged: b.gz)", "coverage 1.0000 -> 0.9000"]
    with pytest.raises(RegressionError, match=r"2013-W37 was not replaced.*--accept-regression"):
        check_regression(old, manifest(damaged=["a.gz", "b.gz"]), 0.02, accept=False)
    assert check_regression(old, manifest(damaged=["a.gz", "b.gz"]), 0.02, accept=True) == diff[:1]


# -- status --check ------------------------------------------------------------------
def row(week, published=True, changes=(), damaged=()):
    return {"week": week, "published": published, "changes": list(changes),
            "damaged_files": [{"file": f, "kinds": ["compression_truncated"]} for f in damaged]}


def test_check_names_damage_changes_and_staleness():
    today = datetime.date(2013, 9, 20)         # 2013-W37 ended on Sunday the 15th
    assert check([row("2013-W37")], 8, today) == []
    assert check([row("2013-W37", changes=["raw files gone"])], 8, today) == []   # retention is fine
    assert check([row("2013-W37")], 4, today) == [
        "stale: the newest published week 2013-W37 ended 2013-09-15, 5 days ago (--max-age 4)"]
    assert check([row("2013-W37")], 0, datetime.date(2020, 1, 1)) == []           # 0: not checked
    problems = check([row("2013-W36", damaged=["x.gz"]), row("2013-W37", False, ["never published"])], 14, today)
    assert problems == ["2013-W36: 1 damaged file: x.gz (compression_truncated)",
                        "2013-W37: not up to date: never published"]
    assert check([row("2013-W37", False, ["never published"])], 8, today)[-1] == "stale: no week is published"


# -- change detection -------------------------------------------------------------------
def run_info(**over):
    base = {"optout_entries_sha256": "o", "exclude_sha256": "f", "k": 10, "code_sha256": "c",
            "responder_thresholds": {"min_hosts": 4}, "geoip": {"country": {
                "database_type": "DBIP-Country-Lite", "build_epoch": 1700000000, "sha256": "aaa"}}}
    return {**base, **over}


CURRENT = {"optout": "o", "exclude": "f2", "k": 10, "code": "c", "responders": {"min_hosts": 4},
           "geoip_builds": {"country": ("DBIP-Country-Lite", 1700000000)}}


def test_settings_changes_compare_meaning_not_bytes():
    assert settings_changes(run_info(), CURRENT) == []     # opt-out file bytes and mmdb sha differ: no matter
    assert settings_changes(run_info(optout_entries_sha256="x"), CURRENT) == ["opt-out list changed"]
    old = run_info()
    del old["optout_entries_sha256"]                        # a manifest from before: its file checksum decides
    assert settings_changes(old, CURRENT) == ["opt-out list changed"]
    assert settings_changes(old, {**CURRENT, "exclude": "f"}) == []
    newer = {**CURRENT, "geoip_builds": {"country": ("DBIP-Country-Lite", 1710000000)}}
    assert settings_changes(run_info(), newer) == ["GeoIP database build changed: country"]
    assert settings_changes(run_info(), {**CURRENT, "k": 5}) == ["-k changed (10 -> 5)"]
    assert settings_changes(run_info(), {**CURRENT, "responders": {"min_hosts": 3}}) == \
        ["responder thresholds changed"]


def test_optout_digest_ignores_comments_order_and_duplicates(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_bytes(b"10.0.0.0/8\n2001:db8::/32\n")
    b.write_bytes(b"# list\n2001:db8::/32 ; v6\n10.0.0.0-10.255.255.255, 10.1.2.3\n\n")
    c.write_bytes(b"10.0.0.0/8\n2001:db8::/33\n")
    assert optout_digest(str(a)) == optout_digest(str(b)) != optout_digest(str(c))
    assert optout_digest(None) is None


# -- the config file -------------------------------------------------------------------
def parsers():
    p = cli.build_parser()
    choices = p._subparsers._group_actions[0].choices
    return choices


@pytest.mark.parametrize("values,message", [
    ({"force": "no"}, "force: expected true or false, not 'no'"),
    ({"force": 1}, "force: expected true or false, not 1"),
    ({"buckets": True}, "buckets: expected an integer, not True"),
    ({"responder_min_share": "0.5"}, "responder_min_share: expected a number"),
    ({"shuffle": "disk"}, "shuffle: must be one of files, beam, not 'disk'"),
    ({"exlcude": "x"}, "exlcude: unknown setting (no portcensus command has --exlcude)"),
    ({"beam": {"runner": {"x": 1}}}, "beam.runner: expected a string, number or true/false"),
    ({"replace_optout": "list.txt"}, "replace_optout: only on the command line (--replace-optout)"),
    ({"drop-optout-entries": "gone.txt"}, "drop-optout-entries: only on the command line (--drop-optout-entries)"),
])
def test_config_values_must_have_their_flags_types(values, message):
    choices = parsers()
    with pytest.raises(ConfigFileError) as e:
        defaults_for(choices["weekly"], choices, values, takes_beam=True)
    assert str(e.value).startswith(message)


def test_config_values_typed_and_beam_table_as_flags():
    choices = parsers()
    typed, beam = defaults_for(choices["weekly"], choices, {
        "force": False, "responder-min-share": 1, "k": 5, "max_age": 3,
        "beam": {"runner": "DirectRunner", "direct_num_workers": 2, "save_main_session": True,
                 "experiments": ["a", "b"], "no_pipeline_type_check": False}}, takes_beam=True)
    assert typed == {"force": False, "responder_min_share": 1.0, "k": 5}   # max_age is status's: left alone
    assert beam == ["--runner=DirectRunner", "--direct_num_workers=2", "--save_main_session",
                    "--experiments=a", "--experiments=b"]
    typed, beam = defaults_for(choices["render"], choices, {"k": 3, "beam": {"runner": "x"}}, takes_beam=False)
    assert typed == {"k": 3} and beam == []
    with pytest.raises(ConfigFileError, match="k: must be at least 1"):     # render's own -k type judges
        defaults_for(choices["render"], choices, {"k": 0}, takes_beam=False)


def test_every_command_takes_config_and_version():
    for name, p in parsers().items():
        assert any(a.dest == "config" for a in p._actions), name


def test_worst_exit_code():
    assert worst([]) == EXIT_OK
    assert worst([EXIT_OK, EXIT_DAMAGED]) == EXIT_DAMAGED
    assert worst([EXIT_DAMAGED, EXIT_REGRESSION]) == EXIT_REGRESSION
    assert worst([EXIT_REGRESSION, EXIT_USAGE, EXIT_DAMAGED]) == EXIT_USAGE
    assert worst([EXIT_USAGE, EXIT_FAILED]) == EXIT_FAILED
