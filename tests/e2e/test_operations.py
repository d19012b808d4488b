"""Operating portcensus the way cron and an operator do, through the real CLI
in subprocesses: crashes at the worst moments, two runs at once, nothing to
do, and a damaged file repaired and reprocessed."""
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from scanners.synth.demo import write_demo_week

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
W1, W2 = "2013-W37", "2013-W38"


def cli(*args, env=None, **kw):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=600, **kw)


def start(*args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "pipelines", *args], cwd=ROOT, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def tree(path):
    """{relative file: sha256} of everything published under ``path``."""
    out = {}
    for d, dirs, files in os.walk(path):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, path)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def published(out):
    return {k: v for k, v in tree(out).items() if k.startswith("week=")}


@pytest.fixture(scope="module")
def weeks(tmp_path_factory):
    raw = tmp_path_factory.mktemp("ops") / "raw"
    write_demo_week(str(raw), W1, 2013)
    write_demo_week(str(raw), W2, 2014)
    return raw


def _archive(site):
    import csv
    with open(site / "data" / "all" / "archive.csv") as f:
        return {r["week"].split(",")[0]: r for r in csv.DictReader(f)}


def wait_for(path, proc, seconds=240):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.returncode} {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("pause point never reached")
        time.sleep(0.1)


@pytest.mark.parametrize("point", ["read", "publish", "render"])
def test_sigkill_leaves_published_state_and_rerun_is_identical(weeks, tmp_path, point):
    out, site = tmp_path / "out", tmp_path / "site"
    common = ("--week", W1, "--raw", str(weeks), "--out", str(out), "--site", str(site), "--quiet")
    first = cli("run", *common)
    assert first.returncode == 3, first.stderr          # the demo week has damaged files on purpose
    before, site_before = published(out), tree(site)
    assert any(k.endswith("manifest.json") for k in before) and "index.html" in site_before

    marker = tmp_path / "paused"
    p = start("run", *common, "--force", env={"PORTCENSUS_PAUSE_AT": f"{point}:{marker}"})
    wait_for(marker, p)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert published(out) == before                      # data exactly as before the killed run
    assert tree(site) == site_before                     # and so is the site

    again = cli("run", *common, "--force")
    assert again.returncode == 3, again.stderr
    assert published(out) == before                      # byte-identical to the undisturbed run
    assert tree(site) == site_before
    assert not os.path.exists(out / ".staging")          # the dead run's staging is gone
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".site.new-")]  # nor its half site


def test_two_weekly_runs_one_works_the_other_exits_busy(weeks, tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "paused"
    site = ("--site", str(tmp_path / "site"))
    holder = start("weekly", "--raw", str(weeks), "--out", str(out), *site, "--quiet",
                   env={"PORTCENSUS_PAUSE_AT": f"read:{marker}"})
    wait_for(marker, holder)
    second = cli("weekly", "--raw", str(weeks), "--out", str(out), *site)
    assert second.returncode == 4, second.stderr
    assert "another portcensus run holds" in second.stderr
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # the lock died with its holder: the next run takes it and does the work
    third = cli("weekly", "--raw", str(weeks), "--out", str(out), *site, "--quiet")
    assert third.returncode == 3, third.stderr
    assert sorted(k.split("/")[0] for k in published(out) if k.endswith("manifest.json")) == \
        [f"week={W1}", f"week={W2}"]
    # nothing new: exit 0 without running anything (the log shows no processing)
    log_before = (out / "logs" / "portcensus.log").read_text()
    idle = cli("weekly", "--raw", str(weeks), "--out", str(out), *site)
    assert idle.returncode == 0, idle.stderr
    assert "nothing to do" in idle.stdout
    assert "processing week" not in (out / "logs" / "portcensus.log").read_text()[len(log_before):]


def test_repair_and_reprocess_grows_by_the_recovered_records(weeks, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(weeks, raw)
    out = tmp_path / "out"
    victim = raw / W1 / "masscan-p22-shard1of3.ndjson.gz"
    original = victim.read_bytes()
    lines = gzip.decompress(original).splitlines(keepends=True)
    keep = len(lines) // 2
    victim.write_bytes(gzip.compress(b"".join(lines[:keep]), mtime=0)[:-8])   # a cut gzip
    site = tmp_path / "site"
    assert cli("weekly", "--raw", str(raw), "--out", str(out), "--site", str(site), "--quiet").returncode == 3
    feed_before = (site / "feed.xml").read_text()
    archive_before = _archive(site)
    w1_page = site / "weeks" / W1 / "index.html"
    w1_before = w1_page.read_text()
    w2_pages_before = {k: v for k, v in tree(site).items() if k.startswith(f"weeks/{W2}/")}
    damaged = json.loads((out / f"week={W1}" / "manifest.json").read_text())
    other_before = {k: v for k, v in published(out).items() if k.startswith(f"week={W2}")}

    status = cli("status", "--raw", str(raw), "--out", str(out))
    assert status.returncode == 0 and "up to date" in status.stdout

    victim.write_bytes(original)                                              # the repair
    status = cli("status", "--raw", str(raw), "--out", str(out))
    assert "inputs changed: masscan-p22-shard1of3.ndjson.gz" in status.stdout
    assert cli("reprocess", "--week", W1, "--raw", str(raw), "--out", str(out), "--site", str(site),
               "--quiet").returncode == 3
    repaired = json.loads((out / f"week={W1}" / "manifest.json").read_text())

    f_before = {f["file"]: f for f in damaged["files"]}["masscan-p22-shard1of3.ndjson.gz"]
    f_after = {f["file"]: f for f in repaired["files"]}["masscan-p22-shard1of3.ndjson.gz"]
    assert f_after["read"] == len(lines) and not f_after["damaged"]
    recovered = f_after["read"] - (f_before["read"] - f_before["quarantined"])
    assert repaired["totals"]["read"] - repaired["totals"]["quarantined"] == \
        damaged["totals"]["read"] - damaged["totals"]["quarantined"] + recovered
    assert repaired["files_damaged"] == damaged["files_damaged"] - 1
    # the other week's data was not touched
    assert {k: v for k, v in published(out).items() if k.startswith(f"week={W2}")} == other_before
    # the site followed: the repaired week's page and the feed changed (fewer damaged files)
    assert w1_page.read_text() != w1_before and (site / "feed.xml").read_text() != feed_before
    archive = _archive(site)                                     # the archive shows the repair
    assert archive[W1]["damaged"] == str(int(archive_before[W1]["damaged"]) - 1)
    assert int(archive[W1]["open_raw"]) > int(archive_before[W1]["open_raw"])
    assert archive[W2] == archive_before[W2]
    # W38's pages compare with W37 (risers/fallers), so some may change; its week page must exist
    assert set(k for k in tree(site) if k.startswith(f"weeks/{W2}/")) == set(w2_pages_before)


def test_the_command_ends_with_its_exit_code_its_output_and_its_last_log_line(weeks, tmp_path):
    # pipelines.cli.entry leaves without the interpreter's teardown: what the
    # command printed, wrote and logged must all be there, and its exit code
    out = tmp_path / "out"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}   # stdout a buffered pipe
    r = subprocess.run([sys.executable, "-m", "pipelines", "run", "--week", W1, "--raw", str(weeks),
                        "--out", str(out), "--no-site"], cwd=ROOT, env=buffered, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 3, r.stderr            # published; the demo week damages two files on purpose
    assert r.stdout.rstrip().endswith("(docs/DATA.md)") and "top SSH identification strings" in r.stdout
    assert (out / f"week={W1}" / "manifest.json").is_file()
    last = json.loads((out / "logs" / "portcensus.log").read_text().splitlines()[-1])
    assert last["message"] == "finished run: exit 3" and last["exit_code"] == 3
    # a reader that stops early (portcensus ... | head) costs the command nothing
    p = subprocess.run(f"{sys.executable} -m pipelines run --week {W1} --raw {weeks} --out {out} --no-site --force"
                       f" | head -c 10; exit ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash",
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 3 and len(p.stdout) == 10, p.stderr
    # a reader gone before the first line, stdout unbuffered: every print would
    # meet the closed pipe (the case above hits it only when head wins the race)
    gone = subprocess.Popen([sys.executable, "-m", "pipelines", "run", "--week", W1, "--raw", str(weeks),
                             "--out", str(out), "--no-site", "--force"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    gone.stdout.close()
    err = gone.communicate(timeout=600)[1].decode()
    assert gone.returncode == 3 and "BrokenPipe" not in err, err
    # --dry-run prints on the same path: its exit code is still its own
    dry = subprocess.Popen([sys.executable, "-m", "pipelines", "run", "--week", W1, "--raw", str(weeks),
                            "--out", str(out), "--no-site", "--force", "--dry-run"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    dry.stdout.close()
    err = dry.communicate(timeout=600)[1].decode()
    assert dry.returncode == 0 and "BrokenPipe" not in err, err
    # and the read-only commands: status ends with its own code too
    status = subprocess.Popen([sys.executable, "-m", "pipelines", "status", "--raw", str(weeks), "--out", str(out)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    status.stdout.close()
    err = status.communicate(timeout=600)[1].decode()
    assert status.returncode == 0 and "BrokenPipe" not in err, err
