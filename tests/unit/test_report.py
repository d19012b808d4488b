"""The site renderer on hand-made published weeks: filters, charts, escaping
of hostile banners, k-suppression, no address or host name anywhere, the
folder swap and the CLI."""
import argparse
import csv
import datetime
import html
import html.parser
import io
import json
import os
import re
import xml.etree.ElementTree as ET

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, strategies as st

from pipelines import aggregate as agg
from pipelines import cli_report
from pipelines.report import charts, filters
from pipelines.report.context import Column, DataTable
from pipelines.report.load import ReportError
from pipelines.report.identity import strip_allowed
from pipelines.report.render import MARKER, build_site, environment, load_plan, write_site

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
REDACTED = "<redacted>"      # what the gate publishes for a value of the wrong shape
SECRET_IP, SECRET_HOST = "192.0.2.55", "scanner-target.example.net"


# -- filters ---------------------------------------------------------------------

def test_number_filters():
    assert filters.intcomma(1730887) == "1,730,887"
    assert filters.intcomma(None) == "\u2014"
    assert filters.pct(0.1234) == "12.3%"
    assert filters.pct(0.00001) == "<0.1%"
    assert filters.pct(0) == "0.0%" and filters.pct(1) == "100.0%"
    assert filters.pct(0.9, 0) == "90%"
    assert filters.signed(1234) == "+1,234"
    assert filters.signed(-56) == "\u221256"
    assert filters.signed(0) == "\u00b10"
    assert filters.share(1, 4) == 0.25 and filters.share(1, 0) is None
    assert filters.cell(1730887, "count") == "1730887"     # the 2013 listing: plain digits
    assert filters.cell(1730887, "int") == "1,730,887"
    assert filters.cell(None, "pct") == "\u2014"
    assert filters.clip("x" * 300).endswith("\u2026") and len(filters.clip("x" * 300)) == 200
    assert filters.clip("short") == "short"


def test_week_filters():
    assert filters.week_days("2013-W37") == (datetime.date(2013, 9, 9), datetime.date(2013, 9, 15))
    assert filters.week_range("2013-W37") == "9\u201315 Sep 2013"
    assert filters.week_range("2013-W40") == "30 Sep \u2013 6 Oct 2013"
    assert filters.week_range("2014-W01") == "30 Dec 2013 \u2013 5 Jan 2014"
    assert filters.atom_date("2013-W37") == "2013-09-16T00:00:00Z"
    assert filters.atom_date("2020-W53") == "2021-01-04T00:00:00Z"


def test_href_filter_keeps_links_relative():
    assert filters.href("static/style.css", "../../") == "../../static/style.css"
    assert filters.href("index.html", "") == "index.html"
    assert filters.href("https://db-ip.com", "../../") == "https://db-ip.com"


def test_charts_are_deterministic_scalable_svg_with_text_as_text():
    from pipelines.report import plots
    series = [(SCRIPT, [0.3, None]), (IMG, [None, 0.1]), ("costs $5 and $6", [0.2, 0.25])]
    svg = plots.lines(["2013-W36", "2013-W37"], series, "t<i>")
    assert svg == plots.lines(["2013-W36", "2013-W37"], series, "t<i>")   # byte for byte
    root = ET.fromstring(svg)                                  # well-formed XML
    assert root.get("viewBox") and root.get("width") is None   # scales to its box
    text = svg.decode()
    assert "<script" not in text and "<img" not in text and "<i>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text     # labels are text, escaped
    assert "costs $5 and $6" in text                           # no mathtext
    assert "<title>t&lt;i&gt;</title>" in text and "dc:date" not in text
    assert "<style" not in text      # no stylesheet to leak into a page the SVG is pasted into
    bidi = plots.lines(["W1"], [("evil\u202egnp.exe\x1b[31m", [0.5])], "t")
    assert "\u202e" not in bidi.decode() and "\\u202e" in bidi.decode() and ET.fromstring(bidi) is not None
    bars = plots.bars([(IMG, 5), ("22/tcp", 10)], "bars")
    assert b"<img" not in bars and ET.fromstring(bars) is not None


def test_map_classes_and_geometry():
    from pipelines.report import world
    assert charts._bounds([12, 40, 300, 5000]) == [12, 40, 130, 450, 1500]
    assert charts._bounds([7, 7]) == [7]
    shapes = world.projected()
    assert {"DE", "US", "CN", "BR", "XK", "AU"} <= set(shapes) and "AQ" not in shapes
    assert world.equal_earth(0, 0) == (0.0, 0.0)
    # Equal Earth's extent on the unit sphere: x = 2π/(√3·A1) at the equator, y = 1.3174 at the pole
    assert world.equal_earth(180, 0) == (2.7066, 0.0) and world.equal_earth(0, 90) == (0.0, 1.3174)


# -- a published data root made by hand -------------------------------------------

def manifest(week, damaged_file=None, coverage=None):
    files = [{"file": "masscan-tcp-shard01of02.ndjson.gz", "damaged": False, "damage": [],
              "tool": "masscan", "format": "masscan-ndjson", "compression": "gzip",
              "accepted": 50, "merged": 10}]
    if damaged_file:
        files.append({"file": damaged_file, "damaged": True, "damage": [{"kind": "missing_footer", "offset": 9}],
                      "tool": "masscan", "format": "masscan-list", "compression": "none",
                      "accepted": 7, "merged": 0})
    m = {"manifest_version": 1, "week": week,
         "totals": {"read": 70, "accepted": 57, "quarantined": 3, "excluded": 0, "merged": 10,
                    "identity_holds": True},
         "files_read": len(files), "files_damaged": int(bool(damaged_file)),
         "quarantine_reasons": {"invalid_ip": 2, "truncated_record": 1},
         "observations": {"rows": 57, "by_port": {"22": 57}},
         "run": {"pipeline_version": "0.1.0", "buckets": 16, "max_banner_bytes": 65536, "optout": None,
                 "responder_thresholds": {"min_hosts": 32, "min_share": 0.9, "many_ports": 8},
                 "geoip": {"country": {"database_type": "DBIP-Country-Lite",
                                       "build_date": "2026-09-01T01:32:45Z", "sha256": "d284" * 16}}},
         "files": files}
    if coverage is not None:
        m["coverage"] = {"fraction": coverage}
    return m


def agg_rows(week, rows):
    return agg.sort(pa.Table.from_pylist(
        [dict(zip(agg.AGG_SCHEMA.names, (week,) + r)) for r in rows], schema=agg.AGG_SCHEMA))


def publish(root, week, rows, **kw):
    d = root / f"week={week}"
    (d / "aggregates").mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps(manifest(week, **kw)))
    for name, data in agg.serialise(agg_rows(week, rows)).items():
        (d / "aggregates" / name).write_bytes(data)


W1 = [(22, "tcp", "total", "open", 60, 50), (22, "tcp", "banner", SCRIPT, 20, 20),
      (22, "tcp", "banner", "SSH-2.0-OpenSSH_4.3", 30, 21), (22, "tcp", "banner", "rare-banner-q7", 3, 3),
      (22, "tcp", "version", "OpenSSH 4.3", 30, 21), (22, "tcp", "country", "US", 40, 35),
      (22, "tcp", "asn", "AS7018 AT&T Enterprises, LLC", 25, 20),
      (80, "tcp", "total", "open", 4, 4)]
W2 = [(22, "tcp", "total", "open", 80, 70), (22, "tcp", "banner", SCRIPT, 12, 12),
      (22, "tcp", "banner", IMG, 15, 15), (22, "tcp", "banner", "SSH-2.0-OpenSSH_4.3", 45, 36),
      (22, "tcp", "version", "OpenSSH 4.3", 45, 36), (22, "tcp", "version", IMG, 15, 15),
      (22, "tcp", "country", "US", 50, 40)]


def make_root(out):
    publish(out, "2013-W36", W1, damaged_file=f"scan-{SECRET_IP}-{SECRET_HOST}.list")
    publish(out, "2013-W37", W2, coverage=0.987)
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Shared and read-only; a test that changes inputs makes its own (make_root)."""
    return make_root(tmp_path_factory.mktemp("published") / "out")


@pytest.fixture(scope="module")
def files(root):
    return build_site(str(root), "2013-09-20", k=10)


class Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        # our charts are the one kind of image: an SVG file of ours, with a text alternative
        if tag == "img" and a.get("class") == "chart" and re.fullmatch(r"(\.\./)*charts/[\w./-]+\.svg",
                                                                      a.get("src", "")) and a.get("alt"):
            tag = "chart-img"
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]

    def handle_data(self, data):
        self.text.append(data)


def parse(data: bytes) -> Tags:
    p = Tags()
    p.feed(data.decode("utf-8"))
    return p


def test_hostile_banners_show_as_text_everywhere(files):
    port = files["weeks/2013-W37/port-22-tcp.html"]
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in port
    assert b"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in port
    text = "".join(parse(port).text)
    assert SCRIPT in text and IMG in text        # readable as the text it is
    for path, data in files.items():
        if path.endswith((".html", ".xml")):
            p = parse(data)
            assert "script" not in p.tags and "img" not in p.tags, path
            assert not [a for a in p.attrs if a.startswith("on")], path
    # the trend chart's labels (SVG drawn by matplotlib) are escaped text too; its
    # planted hostile version was gated to <redacted> before it was drawn
    assert "chart-img" in parse(port).tags
    svg = files["charts/2013-W37/port-22-tcp-version-shares.svg"]
    assert b"<script" not in svg and b"<img" not in svg and b"&lt;redacted&gt;" in svg


def test_k_suppression_is_visible_and_complete(files, root):
    for path, data in files.items():
        assert b"rare-banner-q7" not in data, path
    w36 = files["weeks/2013-W36/port-22-tcp.html"].decode()
    assert "Another 3 hosts (3 adjusted) sent strings each seen on fewer than 10 hosts" in w36
    # the stage wrote the rare value (k=1); the downloaded Parquet is re-suppressed
    stored = pq.read_table(root / "week=2013-W36" / "aggregates" / "aggregates.parquet")
    assert "rare-banner-q7" in stored.column("value").to_pylist()
    site = pq.read_table(io.BytesIO(files["data/2013-W36/aggregates.parquet"]))
    assert "rare-banner-q7" not in site.column("value").to_pylist()
    assert site.equals(agg.suppress(stored, 10))
    # a port with fewer than k hosts gets no page, but is counted on the week page
    assert "weeks/2013-W36/port-80-tcp.html" not in files
    assert "1 more port had fewer than 10 open hosts each (4 in all)" in \
        files["weeks/2013-W36/index.html"].decode()


def test_published_aggregates_are_the_stored_ones_through_the_gate(files, root):
    """Stored aggregates are never published byte for byte: whatever wrote
    them, their values pass the gate again (pipelines/report/regate.py) and the
    published files are that table serialised."""
    from pipelines.report.regate import gate_stored
    stored = pq.read_table(root / "week=2013-W37" / "aggregates" / "aggregates.parquet")
    site = pq.read_table(io.BytesIO(files["data/2013-W37/aggregates.parquet"]))
    assert site.equals(agg.suppress(gate_stored(stored), 10))
    published = agg.serialise(site)
    for name in agg.AGG_FILES:
        assert files[f"data/2013-W37/{name}"] == published[name], name
    versions = [r["value"] for r in site.to_pylist() if r["dimension"] == "version"]
    assert IMG not in versions and REDACTED in versions      # a hostile "version" is not version-shaped


def test_no_address_or_host_name_anywhere(files):
    ipv4 = re.compile(rb"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
    for path, data in files.items():
        assert SECRET_IP.encode() not in data and SECRET_HOST.encode() not in data, path
        if not path.endswith(".parquet"):
            # our own scanner ranges (opt-out page) are published on purpose
            assert not ipv4.search(strip_allowed(data)), (path, ipv4.search(strip_allowed(data)))
    week = files["weeks/2013-W36/index.html"].decode()
    assert "missing_footer" in week and "masscan-list" in week   # the damage is shown, by number


def test_week_page_numbers_and_changes(files):
    w37 = files["weeks/2013-W37/index.html"].decode()
    assert "This week covers 98.7% of the targeted addresses; no input file was damaged." in w37
    w36 = files["weeks/2013-W36/index.html"].decode()
    assert "Coverage is unknown for this week" in w36 and "1 file was damaged" in w36
    ports = json.loads(files["data/2013-W37/ports.json"])
    assert ports["rows"] == [{"port": "22/tcp", "hosts_raw": 80, "hosts_adjusted": 70,
                              "hosts_previous": 60, "change": 20, "coverage": None, "coverage_differs": None}]
    reasons = files["data/2013-W36/quarantine-reasons.csv"].decode().splitlines()
    assert reasons == ["reason,records", "invalid_ip,2", "truncated_record,1"]


def test_port_page_top20_risers_fallers_and_trend(files):
    top = json.loads(files["data/2013-W37/port-22-tcp-top20.json"])["rows"]
    assert [(r["hosts_raw"], r["banner"]) for r in top] == [
        (45, "SSH-2.0-OpenSSH_4.3"), (15, IMG), (12, SCRIPT)]
    assert top[0]["share"] == round(45 / 80, 6) and top[0]["hosts_adjusted"] == 36
    page = files["weeks/2013-W37/port-22-tcp.html"].decode()
    assert '<td class="count num">45</td><td class="banner"><code>SSH-2.0-OpenSSH_4.3</code>' in page
    risers = json.loads(files["data/2013-W37/port-22-tcp-risers.json"])["rows"]
    fallers = json.loads(files["data/2013-W37/port-22-tcp-fallers.json"])["rows"]
    assert [(r["banner"], r["change"]) for r in risers] == [(IMG, 15), ("SSH-2.0-OpenSSH_4.3", 15)]
    assert [(r["banner"], r["change"]) for r in fallers] == [(SCRIPT, -8)]
    trend = json.loads(files["data/2013-W37/port-22-tcp-trend.json"])["rows"]
    # the planted hostile version is not version-shaped: the gate publishes it as <redacted>
    assert trend == [{"value": "OpenSSH 4.3", "hosts_2013-W36": 30, "hosts_2013-W37": 45},
                     {"value": REDACTED, "hosts_2013-W36": None, "hosts_2013-W37": 15}]
    # the trend chart draws shares of the port's open hosts (80 in W37, 60 in W36)
    shares = json.loads(files["data/2013-W37/port-22-tcp-version-shares.json"])["rows"]
    assert [(r["week"], r["value"], r["hosts_raw"], r["share"]) for r in shares] == [
        ("2013-W36", "OpenSSH 4.3", 30, 0.5), ("2013-W37", "OpenSSH 4.3", 45, round(45 / 80, 6)),
        ("2013-W36", REDACTED, None, None), ("2013-W37", REDACTED, 15, round(15 / 80, 6))]
    spec = json.loads(files["charts/2013-W37/port-22-tcp-version-shares.json"])
    assert spec["data"]["url"] == "https://census.example.org/data/2013-W37/port-22-tcp-version-shares.csv"
    assert '<img class="chart" src="../../charts/2013-W37/port-22-tcp-version-shares.svg" alt="Line chart' in page
    assert "weeks/2013-W36/port-22-tcp.html" in files
    assert 'href="../2013-W36/port-22-tcp.html"' not in page   # links go through the site root
    assert 'href="../../weeks/2013-W36/port-22-tcp.html"' in page


def test_feed_and_attribution(files):
    feed = ET.fromstring(files["feed.xml"])
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert [e.find("a:id", ns).text for e in entries] == [
        "https://census.example.org/weeks/2013-W37/index.html", "https://census.example.org/weeks/2013-W36/index.html"]
    assert [e.find("a:link", ns).get("href") for e in entries] == [e.find("a:id", ns).text for e in entries]
    assert "Biggest change since 2013-W36" in entries[0].find("a:summary", ns).text \
        or "No port changed beyond noise" in entries[0].find("a:summary", ns).text
    assert [e.find("a:updated", ns).text for e in entries] == ["2013-09-16T00:00:00Z", "2013-09-09T00:00:00Z"]
    assert feed.find("a:updated", ns).text == "2013-09-16T00:00:00Z"
    for path, data in files.items():
        if path.endswith(".html"):
            assert b'<a href="https://db-ip.com">IP Geolocation by DB-IP</a>' in data, path
    assert b"IP Geolocation by DB-IP (<a href=\"https://db-ip.com\">https://db-ip.com</a>)" in files["methodology.html"]


def test_same_inputs_same_bytes_and_no_clock(root, files):
    again = build_site(str(root), "2013-09-20", k=10)
    assert again == files
    dated = build_site(str(root), None, k=10)       # no date given: derived from the data
    assert b"Built 2013-09-16 " in dated["index.html"]


def test_bad_inputs_raise_report_errors(tmp_path):
    root = make_root(tmp_path / "out")
    with pytest.raises(ReportError, match="does not exist"):
        build_site(str(tmp_path / "nope"))
    with pytest.raises(ReportError, match="YYYY-MM-DD"):
        build_site(str(root), "20.09.2013")
    with pytest.raises(ReportError, match="not a real date"):
        build_site(str(root), "2013-02-30")
    os.remove(root / "week=2013-W37" / "aggregates" / "aggregates.parquet")
    with pytest.raises(ReportError, match="--from-clean"):
        build_site(str(root), "2013-09-20")


def test_write_site_swaps_whole_folder_and_refuses_foreign_folders(tmp_path, files):
    site = tmp_path / "site"
    site.mkdir()
    (site / "README.md").write_text("generated output only\n")
    write_site(files, str(site))
    assert (site / MARKER).exists() and (site / "README.md").read_text() == "generated output only\n"
    (site / "stale.html").write_text("old")
    write_site(files, str(site))
    assert not (site / "stale.html").exists()
    assert (site / "index.html").read_bytes() == files["index.html"]
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="refusing to replace"):
        write_site(files, str(foreign))
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(ReportError, match="outside"):
        write_site({"../x.html": b""}, str(tmp_path / "new"))


def test_cli_render(tmp_path, root, capsys):
    parser = argparse.ArgumentParser()
    cli_report.add_parsers(parser.add_subparsers(dest="command"))
    site = tmp_path / "public"
    args = parser.parse_args(["render", "--out", str(root), "--site", str(site),
                              "--build-date", "2013-09-20", "-k", "10"])
    assert cli_report.dispatch(args) == 0
    assert (site / "weeks" / "2013-W37" / "port-22-tcp.html").exists()
    bad = parser.parse_args(["render", "--out", str(root), "--site", str(site), "--build-date", "soon"])
    assert cli_report.dispatch(bad) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert cli_report.dispatch(parser.parse_args(["render", "--out", str(tmp_path / "none")])) == 2
    assert cli_report.dispatch(argparse.Namespace(command="run")) is None
    with pytest.raises(SystemExit):
        parser.parse_args(["render", "-k", "0"])


def test_scan_plan_states_ports_rate_and_shards(root):
    plan = load_plan(os.path.join(os.path.dirname(agg.__file__), "..", "scanners", "scanplan.toml"))
    files = build_site(str(root), "2013-09-20", k=10, plan=plan)
    method = files["methodology.html"].decode()
    assert f"{plan.rate:,} packets per second per shard" in method
    assert f"{plan.shards} machines" in method and "22/tcp" in method and "11211/udp" in method
    assert "Ports probed (from the scan plan): TCP 21, 22," in files["weeks/2013-W37/index.html"].decode()
    with pytest.raises(ReportError, match="scan plan"):
        load_plan(str(root / "missing.toml"))


TABLE = environment().from_string('{% from "_table.html" import data_table %}{{ data_table(t, "") }}')


@given(st.text(max_size=60))
def test_any_banner_text_renders_as_exactly_that_text(text):
    t = DataTable("s", "t", (Column("banner", "B", "banner"),), ((text,),), "all")
    out = TABLE.render(t=t)
    p = parse(out.encode())
    assert p.tags.count("code") == 1 and "script" not in p.tags
    shown = out.split("<code>", 1)[1].split("</code>", 1)[0]
    assert html.unescape(shown) == filters.clip(text)


def test_opt_out_page_footer_and_methodology_name_operator_contact_and_ranges(files):
    optout, method = files["optout.html"].decode(), files["methodology.html"].decode()
    for page in (optout, method):
        assert '<a href="mailto:optout@example.org">optout@example.org</a>' in page
        assert "<code>198.51.100.0/24</code>" in page and "<code>2001:db8::/32</code>" in page
        assert "demonstration site" in page
    assert "0000 1111 2222 3333 4444 5555 6666 7777 8888 9999" in optout
    for path, data in files.items():
        if path.endswith(".html"):
            assert b"Run by Example Port Census (demonstration). Contact: <a href=\"mailto:" in data, path


def test_downloads_index_all_weeks_files_and_no_empty_tables(files):
    pkg = json.loads(files["data/datapackage.json"])
    assert pkg["licenses"][0]["name"] == "CC-BY-4.0" and "DB-IP" in pkg["description"]
    for res in pkg["resources"]:
        assert len(files["data/" + res["path"]]) == res["bytes"], res["path"]
    paths = {"data/" + r["path"] for r in pkg["resources"]}
    assert {p for p in files if p.startswith("data/") and p.endswith(".csv")} <= paths
    rows = list(csv.DictReader(io.StringIO(files["data/all-weeks/ports.csv"].decode())))
    assert {r["week"] for r in rows} == {"2013-W36", "2013-W37"}
    archive = list(csv.DictReader(io.StringIO(files["data/all/archive.csv"].decode())))
    assert all(r["coverage"] == "" or 0 <= float(r["coverage"]) <= 1 for r in archive)
    assert any(r["coverage"] for r in archive)
    for path, data in files.items():
        if path.startswith("data/") and path.endswith(".csv"):
            assert data.count(b"\n") >= 2, f"{path} is an empty download"
    page = files["downloads.html"].decode()
    assert "CC BY 4.0" in page and re.search(r"</a> \d+(\.\d)? (B|kB|MB)", page)
    # link text says which file, not just "CSV" (visually hidden beyond the short label)
    assert ">CSV<span class=\"visually-hidden\">: " in page and ">CSV</a>" not in page
