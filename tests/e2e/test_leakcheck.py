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


def _plant(tmp_path, value: str) -> str:
    """A site config whose policy text spells ``value``: text the gate does not
    rewrite (stored aggregates are gated again at render, so a value planted
    there would be redacted before the leak check saw it). Its path."""
    from pipelines.report.identity import DEMO_SITE_CONFIG, HERE
    text = open(DEMO_SITE_CONFIG).read()
    text = text.replace('policy = """\n', f'policy = """\nOur scanners once answered as {value}.\n', 1)
    text = text.replace('plan = "demo_plan.toml"', f'plan = "{os.path.join(HERE, "demo_plan.toml")}"')
    assert value in text
    path = tmp_path / "planted_site.toml"
    path.write_text(text)
    return str(path)


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
    config = _plant(tmp_path, planted)
    capsys.readouterr()
    assert cli.main(["render", "--out", str(out), "--site", str(site), "--site-config", config]) == EXIT_LEAK
    err = capsys.readouterr().err
    assert ".html" in err and Shape.WEEK_ADDRESS.value in err
    assert planted not in err and ip not in err
    log = (out / "logs" / "portcensus.log").read_text() if (out / "logs" / "portcensus.log").exists() else ""
    assert planted not in log and ip not in log
    assert _tree(site) == before          # not one file of the previous site changed
    assert cli.main(["render", "--out", str(out), "--site", str(site)]) == EXIT_OK


def test_a_planted_mac_or_dn_blocks_the_build_too(published, tmp_path, capsys):
    out, site = published
    for planted, shape in (("MAC:00:0c:29:3e:5b:7a", Shape.MAC), ("CN=dc01,OU=Servers,DC=corp", Shape.DN)):
        config = _plant(tmp_path, planted)
        capsys.readouterr()
        assert cli.main(["render", "--out", str(out), "--site", str(site), "--site-config", config]) == EXIT_LEAK
        assert shape.value in capsys.readouterr().err


def test_stored_aggregate_values_pass_the_gate_before_they_are_published(published, tmp_path):
    """An aggregates.parquet written before the gate (or by an older writer)
    holds an ungated product: render publishes it <redacted>, never as stored."""
    out, _ = published
    path = os.path.join(out, f"week={DEMO_WEEK}", "aggregates", "aggregates.parquet")
    original = open(path, "rb").read()
    planted = "OpenSSH bastion.corp.example"
    try:
        t = pq.read_table(path)
        prod = pc.equal(t.column("dimension"), "product")
        first = pc.index(prod, True).as_py()
        values = t.column("value").to_pylist()
        values[first] = planted
        pq.write_table(t.set_column(t.schema.get_field_index("value"), "value", pa.array(values, pa.string())),
                       path)
        site = tmp_path / "site"
        assert cli.main(["render", "--out", str(out), "--site", str(site)]) == EXIT_OK
        hits = [p for p in site.rglob("*") if p.is_file() and b"bastion.corp.example" in p.read_bytes()]
        assert hits == []
        data = next(p for p in site.rglob("aggregates.parquet"))
        products = pq.read_table(data).filter(pc.equal(pq.read_table(data).column("dimension"), "product"))
        assert "<redacted>" in products.column("value").to_pylist()
        assert planted not in products.column("value").to_pylist()
    finally:
        with open(path, "wb") as f:
            f.write(original)
