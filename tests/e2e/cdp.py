"""A real headless Chromium driven over the DevTools protocol (CDP), for the
tests that read the site as a person would: page width at a phone's and a
desktop's size, screenshots, and axe-core's accessibility audit.

    with Browser(profile_dir) as b:
        b.open(url, width=390)
        b.evaluate("document.documentElement.scrollWidth")
        b.screenshot("home-390.png")

Scripts run through ``Runtime.evaluate``, the debugger's own channel: the
site's Content-Security-Policy forbids every script, and that stays so for
the page itself. Only loopback: Chromium listens on 127.0.0.1 with a random
port, and the site is served from 127.0.0.1.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]
LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, profile: str, timeout: float = 30):
        self.profile, self.timeout = profile, timeout
        self.proc = None
        self.log = None
        self.ws = None
        self._id = 0
        self.events: list[dict] = []   # events received while waiting for a command's answer

    def __enter__(self) -> "Browser":
        try:
            return self._start()
        except BaseException:
            self.__exit__()       # a browser started but not reached must not outlive the test
            raise

    def _start(self) -> "Browser":
        import websocket   # websocket-client (PyPI), a test dependency
        os.makedirs(self.profile, exist_ok=True)
        # stderr to a file, not a pipe: nothing reads a pipe after the DevTools
        # line, and a full one would block Chromium mid-test
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + self.timeout
        port = None
        while port is None and time.monotonic() < deadline:
            self.log.seek(0)
            m = LISTENING.search(self.log.read().decode("utf-8", "replace"))
            if m:
                port = m.group(2)
            elif self.proc.poll() is not None:
                raise CDPError(f"chromium exited with {self.proc.returncode}")
            else:
                time.sleep(0.05)
        if port is None:
            raise CDPError("chromium did not open its DevTools port")
        # the first tab: its own websocket (a page target)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=self.timeout,
                                              suppress_origin=True)
        self.call("Page.enable")
        self.call("Runtime.enable")
        return self

    def __exit__(self, *exc) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def call(self, method: str, **params) -> dict:
        """Send one command; returns its result (events met meanwhile are kept)."""
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float | None = None) -> dict:
        for i, msg in enumerate(self.events):
            if msg.get("method") == event:
                return self.events.pop(i)
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == event:
                return msg
            self.events.append(msg)
        raise CDPError(f"no {event} within {timeout or self.timeout} s")

    def open(self, url: str, width: int, height: int = 900, redirects: int = 0) -> None:
        """Load ``url`` in a viewport ``width`` CSS px wide (a phone below 500),
        and wait for ``redirects`` further loads (a page that sends the reader on)."""
        self.events = []
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=width < 500)
        self.call("Page.navigate", url=url)
        for _ in range(1 + redirects):
            self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str, await_promise: bool = False):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                        awaitPromise=await_promise)
        if "exceptionDetails" in res:
            raise CDPError(f"script failed: {res['exceptionDetails'].get('text')} "
                           f"{res['exceptionDetails'].get('exception', {}).get('description', '')[:500]}")
        return res["result"].get("value")

    def console_problems(self) -> list[str]:
        """Console errors and CSP refusals seen since the last ``open``."""
        out = []
        for msg in self.events:
            if msg.get("method") == "Runtime.consoleAPICalled" and msg["params"].get("type") == "error":
                out.append(str(msg["params"].get("args")))
            if msg.get("method") == "Runtime.exceptionThrown":
                out.append(str(msg["params"]))
        return out

    def screenshot(self, path: str) -> bytes:
        """The whole page (not just the viewport) as PNG."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        png = base64.b64decode(data)
        with open(path, "wb") as f:
            f.write(png)
        return png
