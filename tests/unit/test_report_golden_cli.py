"""`make golden` on a machine without Chromium (pipelines/report/golden.py)."""
import os

from pipelines.report import golden, screenshots


def test_golden_without_chromium_writes_the_site_and_skips_the_pictures(tmp_path, monkeypatch, capsys):
    # the machine's browser, if any, is not looked at: the path says where it would be
    monkeypatch.setattr(screenshots, "CHROMIUM", str(tmp_path / "no-such-chromium"))
    dest, shots = tmp_path / "site", tmp_path / "img"
    assert golden.main(["--dest", str(dest), "--screenshots", str(shots)]) == 0
    assert "screenshots skipped: no Chromium" in capsys.readouterr().out
    assert os.path.exists(dest / "index.html")
    assert not shots.exists()        # checked before the four-week demo, which never ran


def test_screenshots_say_no_chromium_before_running_the_demo(tmp_path, monkeypatch):
    monkeypatch.setattr(screenshots, "CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setattr(screenshots, "demo_site", None)     # calling it would raise TypeError
    try:
        screenshots.main(str(tmp_path / "img"))
    except screenshots.NoChromium as exc:
        assert "no-such-chromium" in str(exc)
    else:
        raise AssertionError("no NoChromium")
