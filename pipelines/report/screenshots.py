"""The README's screenshots: the four evolving demo weeks (what `make
demo-weeks` builds) rendered and photographed by headless Chromium, the home
page at desktop width and the port-22 page at a phone's.

    python -m pipelines.report.golden --screenshots docs/img   # make golden does this

Needs /usr/bin/chromium (`make system-deps`); without it ``NoChromium`` (a
``ScreenshotError``) says so before the demo runs, and nothing is written. The site is served on 127.0.0.1 only, for
the seconds the pictures take. PNG bytes vary with Chromium's version and
fonts, so they are documentation, not golden files.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--hide-scrollbars"]
FIRST_WEEK, WEEKS = "2013-W37", 4
# (file in docs/img, page, window width, window height)
SHOTS = (("home.png", "index.html", 1400, 1700),
         ("port-22.png", "latest/port-22-tcp.html", 390, 1800))


class ScreenshotError(Exception):
    pass


class NoChromium(ScreenshotError):
    """No browser on this machine: the pictures are skipped, not failed."""


def _need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        raise NoChromium(f"no {CHROMIUM}: make system-deps installs Chromium")


def demo_site(base: str) -> str:
    """Four evolving demo weeks through the real pipeline and renderer; returns the site folder."""
    raw, out, site = (os.path.join(base, d) for d in ("raw", "out", "site"))
    cli = [sys.executable, "-m", "pipelines"]
    subprocess.run(cli + ["demo", "--raw", raw, "--week", FIRST_WEEK, "--weeks", str(WEEKS)],
                   check=True, stdout=subprocess.DEVNULL)
    res = subprocess.run(cli + ["weekly", "--raw", raw, "--out", out, "--site", site, "--quiet"])
    if res.returncode not in (0, 3):      # 3: published, with the demo's damaged files counted
        raise ScreenshotError(f"portcensus weekly exited {res.returncode}")
    return site


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def take(site: str, dest: str) -> list[str]:
    """Photograph ``site`` into ``dest``; returns the files written."""
    _need_chromium()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    written = []
    os.makedirs(dest, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as profile:
            for name, page, width, height in SHOTS:
                path = os.path.join(dest, name)
                # an alias page moves on to its target: give Chromium the time to follow
                res = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={path}",
                                      f"--window-size={width},{height}", "--virtual-time-budget=3000",
                                      base + page], capture_output=True, text=True, timeout=120)
                if res.returncode != 0 or not os.path.exists(path):
                    raise ScreenshotError(f"chromium could not photograph {page}: {res.stderr[-500:]}")
                written.append(path)
    finally:
        server.shutdown()
        server.server_close()
    return written


def main(dest: str) -> list[str]:
    _need_chromium()     # before the minutes of the four-week demo pipeline, not after
    base = tempfile.mkdtemp(prefix="portcensus-shots-")
    try:
        return take(demo_site(base), dest)
    finally:
        shutil.rmtree(base, ignore_errors=True)
