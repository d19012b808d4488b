"""The golden site: two small weeks of real scanner output through the real
pipeline, aggregated and rendered with a fixed build date.

    python -m pipelines.report.golden      # rewrite tests/golden/site/
    python -m pipelines.report.golden --screenshots docs/img   # and the README's pictures (make golden)

tests/e2e/test_site.py builds the same site and compares it file by file, so
any change to what the site shows appears as a reviewable golden diff
(Pelican's practice). Inputs: tests/fixtures/real/ (masscan 1.3.2 output of a
private test network) plus one hand-written ndjson file in masscan's format
with hostile banners, a bad address and a cut-off last line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

from pipelines import aggregate as agg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL = os.path.join(REPO, "tests", "fixtures", "real")
GOLDEN_DIR = os.path.join(REPO, "tests", "golden", "site")
GOLDEN_K = 2
GOLDEN_BUILD_DATE = "2026-11-30"
HOSTILE_NAME = "masscan-hostile.ndjson"
WEEKS = {
    "2026-W47": ("masscan_shard1of2.json", "masscan_udp11211.json"),
    "2026-W48": ("masscan_shard1of2.json", "masscan_shard2of2.json", "masscan_udp11211.json", HOSTILE_NAME),
}
# The fixtures were scanned in 2026-W48; the earlier golden week gets the same
# records a week earlier, so each record lies inside its week's window.
SHIFT_DAYS = {"2026-W47": -7}
SCRIPT = "<script>alert(1)</script>"


def shift_masscan_json(data: bytes, days: int) -> bytes:
    """masscan -oJ with every ``"timestamp": "<epoch>"`` moved by ``days``."""
    import re
    return re.sub(rb'("timestamp": *")(\d+)"',
                  lambda m: m.group(1) + str(int(m.group(2)) + days * 86400).encode() + b'"', data)
IMG = '"><img src=x onerror=alert(1)>'


def _rec(ip: str, port: int, rec_type: str, data: dict, ts: int = 1795567001) -> bytes:
    return json.dumps({"ip": ip, "timestamp": str(ts), "port": port, "proto": "tcp",
                       "rec_type": rec_type, "data": data}, separators=(",", ":")).encode() + b"\n"


def hostile_ndjson() -> bytes:
    """Banners written to break a page, each on two hosts (so k=2 shows them)."""
    out = []
    for host, ssh in ((20, "SSH-2.0-" + SCRIPT), (21, "SSH-2.0-" + SCRIPT),
                      (22, "SSH-2.0-" + IMG), (23, "SSH-2.0-" + IMG)):
        ip = f"198.18.0.{host}"
        out.append(_rec(ip, 22, "status", {"status": "open", "reason": "syn-ack", "ttl": 64}))
        out.append(_rec(ip, 22, "banner", {"service_name": "ssh", "banner": ssh}, 1795567007))
    for host, title in ((20, SCRIPT), (21, SCRIPT), (22, IMG), (23, IMG)):
        ip = f"198.18.0.{host}"
        out.append(_rec(ip, 80, "status", {"status": "open", "reason": "syn-ack", "ttl": 64}))
        out.append(_rec(ip, 80, "banner", {"service_name": "title", "banner": title}, 1795567008))
    out.append(_rec("198.18.0.299", 22, "status", {"status": "open", "reason": "syn-ack", "ttl": 64}))
    out.append(b'{"ip":"198.18.0.24","timestamp":"17955670')   # the scanner died mid-line
    return b"".join(out)


def publish_weeks(base: str) -> str:
    """Run the pipeline on the golden weeks under ``base``; returns OUT."""
    from pipelines.config import RunConfig
    from pipelines.week import process_week
    raw, out = os.path.join(base, "raw"), os.path.join(base, "out")
    for week, names in WEEKS.items():
        d = os.path.join(raw, week)
        os.makedirs(d, exist_ok=True)
        for name in names:
            if name == HOSTILE_NAME:
                with open(os.path.join(d, name), "wb") as f:
                    f.write(hostile_ndjson())
            elif week in SHIFT_DAYS:
                with open(os.path.join(REAL, name), "rb") as f:
                    data = f.read()
                with open(os.path.join(d, name), "wb") as f:
                    f.write(shift_masscan_json(data, SHIFT_DAYS[week]))
            else:
                shutil.copy(os.path.join(REAL, name), os.path.join(d, name))
        # The fixtures come from a test network (198.18.0.0/15): kept explicitly,
        # and the site says these are not Internet counts.
        cfg = RunConfig(week=week, raw=raw, out=out, allow_special_purpose=True).validate()
        process_week(cfg, ["--runner=FnApiRunner"])
    return out


def write_aggregates(out: str, k: int = GOLDEN_K) -> None:
    """Each week's aggregates, as the Aggregate stage writes them with k
    (tests/e2e/test_site.py checks the stage gives these bytes). Rewritten
    even where the pipeline already wrote some, so the golden site does not
    depend on the stage's configured k."""
    from pipelines.report.load import aggregates_from_clean
    from pipelines.week import published_weeks, week_path
    for week in published_weeks(out):
        folder = os.path.join(week_path(out, week), agg.AGG_DIR)
        os.makedirs(folder, exist_ok=True)
        for name, data in agg.serialise(agg.suppress(aggregates_from_clean(out, week), k)).items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)


def golden_identity():
    """The demo's fictional identity without its scan plan (the golden weeks
    are real fixture files, not the demo plan's jobs)."""
    import dataclasses
    from pipelines.report.identity import load_site_config
    return dataclasses.replace(load_site_config(), plan=None)


def build_golden_site(out: str) -> dict[str, bytes]:
    from pipelines.report.render import build_site
    return build_site(out, GOLDEN_BUILD_DATE, GOLDEN_K, identity=golden_identity())


def build_golden(base: str) -> dict[str, bytes]:
    out = publish_weeks(base)
    write_aggregates(out)
    return build_golden_site(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.report.golden", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", default=GOLDEN_DIR, help=f"where to write (default: {GOLDEN_DIR})")
    parser.add_argument("--screenshots", metavar="DIR",
                        help="also photograph the four evolving demo weeks' home and port-22 pages into DIR "
                             "(the README's docs/img; needs /usr/bin/chromium, skipped without it)")
    args = parser.parse_args(argv)
    from pipelines.report.render import write_site
    with tempfile.TemporaryDirectory() as base:
        files = build_golden(base)
    write_site(files, args.dest)
    print(f"wrote {len(files)} golden files to {args.dest}; review the diff before committing")
    if args.screenshots:
        from pipelines.report.screenshots import NoChromium, ScreenshotError, main as screenshots
        try:
            shots = screenshots(args.screenshots)
        except NoChromium:
            # the golden site is written and is what the tests need; the README's
            # pictures wait for a machine with a browser
            print("screenshots skipped: no Chromium")
            return 0
        except ScreenshotError as exc:
            print(f"no screenshots: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {', '.join(shots)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
