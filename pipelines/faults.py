"""A fault-injection seam for the crash tests (issue: atomic publish).

``pause_at(point, spec)``: when ``spec`` is ``"<point>:<marker file>"`` and
names this point, write the marker (so the test knows where the process is)
and sleep until killed. ``spec`` comes from the ``PORTCENSUS_PAUSE_AT``
environment variable, read once by the CLI and passed inward in RunConfig;
with it unset (always, outside the tests) this does nothing.

Points: ``read`` (a file is half read), ``publish`` (a week is staged, not yet
swapped in), ``render`` (the site is half written).
"""
from __future__ import annotations

import time

POINTS = ("read", "publish", "render")
ENV = "PORTCENSUS_PAUSE_AT"


def pause_at(point: str, spec: str | None) -> None:
    if not spec:
        return
    name, _, marker = spec.partition(":")
    if name != point:
        return
    with open(marker, "w") as f:
        f.write(point)
    while True:  # the test sends SIGKILL
        time.sleep(1)
