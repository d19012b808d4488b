"""The leak check before publishing, end to end: the demo site passes (its
documented scanner ranges are on the allow-list), a planted identifier
blocks the build with exit 5 and leaves the previous site as it was, and the
log names the file and the shape, never the value."""
import hashlib
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines import cli
from pipelines.exits import EXIT_DAMAGED, EXIT_LEAK, EXIT_OK
from pipelines.leakcheck import Allowlist, Shape, WeekAddresses, find_leaks
from pipelines.report.render import build_site
from pipelines.summary import clean_dataset
from tests.e2e.conftest import DEMO_WEEK

pytestmark = pytest.mark.slow


def _tree(site) -> dict:
    out = {}
    for d, _, files in os.walk(site):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, site)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def published(demo_raw, tmp_path_factory):
    raw, _ = demo_raw
    root = tmp_path_factory.mktemp("leak")
    out, site = root / "out", root / "site"
    assert cli.main(["run", "--week", DEMO_WEEK, "--raw", str(raw), "--out", str(out), "--site", str(site),
                     "--quiet", "--runner=FnApiRunner"]) == EXIT_DAMAGED
    return out, site


def test_the_demo_site_passes_because_its_scanner_ranges_are_allowed(published):
    out, site = published
    assert b"198.51.100.0/24" in (site / "optout.html").read_bytes()
    files = build_site(str(out))
    week = WeekAddresses.from_out(str(out), [DEMO_WEEK])
    assert len(week.v4) > 10_000 and week.v6
    # without the reviewed allow-list the documented ranges are hits; with it, nothing is
    hits = find_leaks(files, week, Allowlist())
    assert {h.file for h in hits} >= {"optout.html"} and {h.shape for h in hits} == {Shape.IPV4, Shape.IPV6}
    from pipelines.leakcheck import load_allowlist
    assert find_leaks(files, week, load_allowlist()) == []


def _plant(out, value: str) -> None:
    """A banner that got past redaction, as if the stage had written it."""
    path = os.path.join(out, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet")
    t = pq.read_table(path)
    banner22 = pc.and_(pc.equal(t.column("dimension"), "banner"), pc.equal(t.column("port"), 22))
    first = pc.index(banner22, True).as_py()
    values = t.column("value").to_pylist()
    values[first] = value
    pq.write_table(t.set_column(t.schema.get_field_index("value"), "value", pa.array(values, pa.string())), path)


@pytest.mark.parametrize("spelling", ["ec2-{d}", "SSH-2.0-OpenSSH_5.3 {hex}", "host {rdns}.in-addr.arpa"])
def test_a_planted_address_of_the_week_blocks_the_build_and_keeps_the_previous_site(published, spelling,
                                                                                     tmp_path, capsys):
    out, site = published
    before = _tree(site)
    ip = sorted(i for i in clean_dataset(str(out), DEMO_WEEK).to_table(columns=["ip"]).column("ip").to_pylist()
                if ":" not in i)[100]
    o = [int(x) for x in ip.split(".")]
    planted = spelling.format(d="-".join(map(str, o)), hex="0x%02x%02x%02x%02x" % tuple(o),
                              rdns=".".join(map(str, reversed(o))))
    agg = os.path.join(out, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet")
    original = open(agg, "rb").read()
    try:
        _plant(out, planted)
        capsys.readouterr()
        assert cli.main(["render", "--out", str(out), "--site", str(site)]) == EXIT_LEAK
        err = capsys.readouterr().err
        assert "weeks/2013-W37/port-22-tcp.html" in err and Shape.WEEK_ADDRESS.value in err
        assert planted not in err and ip not in err
        log = (out / "logs" / "portcensus.log").read_text() if (out / "logs" / "portcensus.log").exists() else ""
        assert planted not in log and ip not in log
        assert _tree(site) == before          # not one file of the previous site changed
    finally:
        with open(agg, "wb") as f:
            f.write(original)
    assert cli.main(["render", "--out", str(out), "--site", str(site)]) == EXIT_OK


def test_a_planted_mac_or_dn_blocks_the_build_too(published, capsys):
    out, site = published
    agg = os.path.join(out, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet")
    original = open(agg, "rb").read()
    try:
        for planted, shape in (("MAC:00:0c:29:3e:5b:7a", Shape.MAC), ("CN=dc01,OU=Servers,DC=corp", Shape.DN)):
            _plant(out, planted)
            capsys.readouterr()
            assert cli.main(["render", "--out", str(out), "--site", str(site)]) == EXIT_LEAK
            assert shape.value in capsys.readouterr().err
            with open(agg, "wb") as f:
                f.write(original)
    finally:
        with open(agg, "wb") as f:
            f.write(original)
