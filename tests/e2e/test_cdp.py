"""The DevTools driver itself (tests/e2e/cdp.py): a failed start leaves no browser behind."""
import os
import time

import pytest

from tests.e2e.cdp import CHROMIUM, Browser, CDPError


def _running_with(profile: str) -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f"--user-data-dir={profile}".encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs {CHROMIUM}")
def test_a_start_that_fails_after_launch_ends_the_browser(tmp_path):
    profile = str(tmp_path / "profile")
    b = Browser(profile, timeout=0)      # launched, then no time to see the DevTools line
    with pytest.raises(CDPError):
        b.__enter__()
    deadline = time.monotonic() + 10
    while _running_with(profile) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running_with(profile) == []
