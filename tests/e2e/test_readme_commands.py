"""Every command README.md shows, run as the README shows it.

The README's fenced ``sh`` and ``cron`` blocks and its inline `portcensus ...`
spans are collected in document order and run by bash in a scratch folder
that looks like the README's world: ``.venv/bin/portcensus`` (and
``portcensus`` on the PATH) start this checkout's CLI, ``data/raw`` holds a
tiny real week ``2013-W37``, the ``/srv`` and ``/etc`` paths of the cron
section point into the scratch folder, and the ``[toml]`` block is the config
file the cron lines name. Placeholders (``W``, ``N``, ``FILES...``) get real
values; a placeholder this test does not know fails it, so a new README
command cannot go untested. ``make`` lines are checked against the Makefile's
targets (running them would rebuild the venv).
"""
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.e2e.opsweek import shard_lines, tiny_week

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")
WEEK = "2013-W37"
# The newest week a README example can name is from 2013: status --check says
# "stale" (exit 7), which is exactly what it is for. Everything else exits 0.
EXPECTED = {"status --check": 7}
PLACEHOLDERS = {" --week W": f" --week {WEEK}", " --shards N": " --shards 2", "FILES...": "SPOOL_FILE"}


def readme_items():
    """[(kind, text)] in document order: kind is sh, cron, toml or inline."""
    text = open(README, encoding="utf-8").read()
    items = []
    for m in re.finditer(r"```(\w+)\n(.*?)```|`((?:\.venv/bin/)?portcensus [^`]+|make [a-z-]+)`", text, re.S):
        if m.group(1):
            items.append((m.group(1), m.group(2)))
        else:
            items.append(("inline", m.group(3)))
    return items


def commands():
    """The shell command lines to run, and the make targets named."""
    runs, makes, toml = [], [], None
    for kind, body in readme_items():
        if kind == "toml":
            toml = body
            continue
        lines = body.splitlines() if kind in ("sh", "cron") else [body]
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if kind == "cron":
                line = line.split(None, 5)[5]          # minute hour day month weekday COMMAND
            if kind == "sh":
                line = line.split("  #")[0].strip()
            if line.startswith("make "):
                makes.append(line.split()[1])
            elif "portcensus" in line:
                runs.append(line)
    return runs, makes, toml


def test_readme_names_only_real_make_targets():
    _, makes, _ = commands()
    targets = set(re.findall(r"^([a-z][a-z-]*):", open(os.path.join(ROOT, "Makefile")).read(), re.M))
    assert makes and set(makes) <= targets, set(makes) - targets


@pytest.fixture
def world(tmp_path):
    """The scratch folder the README's commands run in."""
    bindir = tmp_path / ".venv" / "bin"
    bindir.mkdir(parents=True)
    wrapper = bindir / "portcensus"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m pipelines \"$@\"\n")
    wrapper.chmod(0o755)
    tiny_week(tmp_path / "data" / "raw", WEEK)
    (tmp_path / "optout.txt").write_text("192.0.2.0/24\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "exclude.conf").write_text("# opted out\n198.51.100.0/24\n")
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "masscan-p22-extra.ndjson").write_bytes(b"".join(shard_lines(WEEK, 40, 1, 1)))
    return tmp_path


def localise(line: str, world) -> str:
    line = line.replace("/srv/portcensus/data", str(world / "data" / "out"))
    line = line.replace("/srv/portcensus/site", str(world / "site"))
    line = line.replace("/srv/scans/raw", str(world / "data" / "raw"))
    line = line.replace("/srv/portcensus", str(world))
    line = line.replace("/etc/portcensus/exclude.conf", str(world / "etc" / "exclude.conf"))
    line = line.replace("/etc/portcensus/portcensus.toml", str(world / "etc" / "portcensus.toml"))
    for k, v in PLACEHOLDERS.items():
        line = line.replace(k, v)
    line = line.replace("SPOOL_FILE", str(world / "spool" / "masscan-p22-extra.ndjson"))
    line = re.sub(r"\[(--[^\]]+)\]", r"\1", line)          # an optional flag shown in brackets: use it
    return line


def test_every_readme_command_runs_as_shown(world):
    runs, _, toml = commands()
    assert toml and len(runs) >= 15, runs                  # the README has its cron, table and repair steps
    (world / "etc" / "portcensus.toml").write_text(localise(toml, world))
    env = dict(os.environ, PATH=f"{world / '.venv' / 'bin'}:{os.environ['PATH']}", PYTHONPATH=ROOT)
    for line in runs:
        cmd = localise(line, world)
        leftover = re.findall(r"(?<![\w-])(W|N|[A-Z]+\.\.\.)(?![\w-])", cmd)
        assert not leftover, f"unknown placeholder {leftover} in README command: {line}"
        r = subprocess.run(["bash", "-c", cmd], cwd=world, env=env, capture_output=True, text=True, timeout=600)
        want = next((code for key, code in EXPECTED.items() if key in cmd), 0)
        assert r.returncode == want, f"{line}\n-> {cmd}\nexit {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
        assert "Traceback" not in r.stderr, line
        if want == 7:
            assert "stale: the newest published week 2013-W37" in r.stdout
    # the commands did what the README says: the landed file is published (weekly and the last
    # reprocess saw it), and the site was built where the config file and the default say
    manifest = json.loads((world / "data" / "out" / f"week={WEEK}" / "manifest.json").read_text())
    assert "masscan-p22-extra.ndjson" in {f["file"] for f in manifest["files"]}
    assert manifest["totals"]["read"] == 440
    assert (world / "site" / "index.html").exists()
