import pytest

from pipelines import cli
from pipelines.cli_beam import DASK_RUNNER, beam_args_for
from pipelines.config import ConfigError


def test_beam_args_default_runner_and_refusals():
    assert beam_args_for([]) == ["--runner=FnApiRunner"]
    assert beam_args_for(["--runner", "DaskRunner"])[:2] == ["--runner", DASK_RUNNER]
    threads = ["--direct_running_mode", "multi_threading", "--direct_num_workers", "2"]
    # the file shuffle runs it guarded (pipelines/beam_guard.py); the beam shuffle is refused
    assert beam_args_for(threads) == ["--runner=FnApiRunner", *threads]
    assert beam_args_for(threads, "files") == ["--runner=FnApiRunner", *threads]
    with pytest.raises(ConfigError, match="multi_threading is refused with --shuffle beam"):
        beam_args_for(threads, "beam")
    with pytest.raises(ConfigError, match="multi_threading"):
        beam_args_for(["--direct_running_mode=multi_threading"], "beam")
    assert beam_args_for(["--direct_running_mode", "multi_processing"], "beam")[0] == "--runner=FnApiRunner"
    with pytest.raises(ConfigError, match="--exlcude"):
        beam_args_for(["--exlcude", "optout.txt"])          # a typo is refused, not ignored


@pytest.mark.parametrize("argv,needle", [
    (["run", "--week", "2013-W99"], "not an ISO week"),
    (["run", "--week", "2013-W37", "--raw", "/nonexistent"], "no raw folder"),
    (["run", "--week", "2013-W37", "--exlcude", "x"], "unknown option"),
    (["verify", "--week", "2013-W37", "--raw", "/nonexistent"], "no raw folder"),
])
def test_errors_are_one_line_and_exit_2(argv, needle, capsys, tmp_path):
    code = cli.main(argv + (["--out", str(tmp_path)] if argv[0] == "run" else []))
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_bad_beam_value_is_one_line_not_beams_whole_usage(capsys):
    with pytest.raises(ConfigError, match="direct_running_mode"):
        beam_args_for(["--direct_running_mode", "foo"])
    assert "usage:" not in capsys.readouterr().err
