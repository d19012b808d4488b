"""Real scanner output -> real pipeline -> aggregates -> site, end to end:
the Beam Aggregate stage equals the pure functions, two renders are
byte-identical, the site equals tests/golden/site/, nothing on it names a
scanned host, and a real headless Chromium loads every page cleanly.

The weeks are pipelines/report/golden.py's (two small weeks of masscan 1.3.2
output plus hostile banners), so this test and `python -m
pipelines.report.golden` always build the same thing.
"""
import concurrent.futures
import functools
import html.parser
import http.server
import io
import os
import re
import subprocess
import threading
import urllib.parse
import urllib.request

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import aggregate as agg
from pipelines.report import golden
from pipelines.report.load import aggregates_from_clean
from pipelines.report.identity import strip_allowed
from pipelines.report.render import write_site
from pipelines.layout import clean_files
from pipelines.schema import CLEAN_SCHEMA
from pipelines.summary import clean_dataset
from pipelines.transforms.aggregate import Aggregate

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
# Host names the real fixtures' banners carry (tests/fixtures/real/README.md).
FIXTURE_HOSTNAMES = ("fixture-a.test", "fixture-host-7", "localhost")


@pytest.fixture(scope="module")
def published(golden_published):
    return golden_published       # tests/e2e/conftest.py: built once, shared with test_site_reader.py


@pytest.fixture(scope="module")
def site_files(golden_site_files):
    return golden_site_files


def clean_parts(out: str, week: str) -> list[tuple[int, pa.Table]]:
    """The week's clean files, one (bucket, table) element each. A file is one
    bucket and one port, and responder groups never span ports, so each file
    is a valid input of the stage (and there are several to combine)."""
    parts = []
    for path in clean_files(out, week):
        bucket = int(re.search(r"part-(\d+)\.parquet$", path).group(1))
        parts.append((bucket, pq.read_table(path, schema=CLEAN_SCHEMA)))
    return parts


def test_aggregate_stage_writes_what_the_pure_functions_compute(published, tmp_path):
    week = "2026-W48"
    buckets = clean_parts(published, week)
    assert len(buckets) > 5   # several partials really are combined
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = p | beam.Create(buckets) | "Aggregate" >> Aggregate(str(tmp_path), week, golden.GOLDEN_K)
    expected = agg.serialise(agg.suppress(
        agg.combine(agg.partial_aggregates(t, week) for _, t in buckets), golden.GOLDEN_K))
    for name in agg.AGG_FILES:
        assert (tmp_path / agg.AGG_DIR / name).read_bytes() == expected[name], name
    # bucket partials add up to the whole week, and match what the site publishes
    whole = agg.serialise(agg.suppress(aggregates_from_clean(published, week), golden.GOLDEN_K))
    assert whole == expected
    table = pq.read_table(io.BytesIO(expected["aggregates.parquet"]))
    status = clean_dataset(published, week).to_table(columns=["status"]).column("status")
    totals = {(r["port"], r["transport"]): r["hosts_raw"] for r in table.to_pylist() if r["dimension"] == "total"}
    assert sum(totals.values()) == pc.sum(pc.equal(status, "open")).as_py()
    assert totals[(22, "tcp")] == 6   # 2 real sshd + 4 hostile banners


def test_rendering_twice_gives_identical_files(published, site_files, tmp_path):
    again = golden.build_golden_site(published)
    assert again == site_files
    write_site(site_files, str(tmp_path / "a"))
    write_site(again, str(tmp_path / "b"))
    for path in site_files:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()


def read_tree(root: str) -> dict[str, bytes]:
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            full = os.path.join(dirpath, n)
            with open(full, "rb") as f:
                files[os.path.relpath(full, root).replace(os.sep, "/")] = f.read()
    return files


def test_site_matches_the_golden_files(site_files):
    assert os.path.isdir(golden.GOLDEN_DIR), "no golden site: run python -m pipelines.report.golden"
    want = read_tree(golden.GOLDEN_DIR)
    assert sorted(site_files) == sorted(want), "file list changed: regenerate and review"
    changed = sorted(p for p in site_files if site_files[p] != want[p])
    assert not changed, (f"{len(changed)} files differ from tests/golden/site (first: {changed[:5]}); "
                         "if intended, run python -m pipelines.report.golden and review the diff")


def test_no_chart_names_the_matplotlib_release(site_files):
    # a "Matplotlib v3.x.y" creator would change every chart's bytes with a patch release
    svgs = [p for p in site_files if p.endswith(".svg")]
    assert svgs
    assert [p for p in svgs if b"Matplotlib v" in site_files[p]] == []


def test_nothing_on_the_site_names_a_scanned_host(published, site_files):
    ips = set()
    for week in golden.WEEKS:
        ips |= set(clean_dataset(published, week).to_table(columns=["ip"]).column("ip").to_pylist())
    assert "198.18.0.20" in ips and len(ips) >= 10
    ipv4 = re.compile(rb"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
    for path, data in site_files.items():
        if path.endswith(".parquet"):
            data = repr(pq.read_table(io.BytesIO(data)).to_pylist()).encode()
        data = strip_allowed(data)   # our scanner ranges, published on purpose (opt-out page)
        assert not ipv4.search(data), (path, ipv4.search(data))
        for name in FIXTURE_HOSTNAMES:
            assert name.encode() not in data, (path, name)
    ssh, web = site_files["weeks/2026-W48/port-22-tcp.html"], site_files["weeks/2026-W48/port-80-tcp.html"]
    assert b"SSH-2.0-&lt;script&gt;alert(1)&lt;/script&gt;" in ssh
    assert b"<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in web
    assert b"<code>&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</code>" in web
    chart_img = re.compile(rb'<img class="chart" src="(?:\.\./)*charts/[\w./-]+\.svg" alt="[^"<>]+" '
                           rb'width="\d+" height="\d+">')
    for path, data in site_files.items():
        if path.endswith((".html", ".xml")):
            # our charts are the only images; a banner's <img> is text
            assert b"<script" not in data and b"<img" not in chart_img.sub(b"", data), path
        if path.endswith(".svg"):
            assert b"<script" not in data and b"<img" not in data and b"onerror" not in data.replace(
                b"onerror=alert(1)&gt;", b""), path


# -- a real browser ---------------------------------------------------------------

class _Recorder(http.server.SimpleHTTPRequestHandler):
    log: list = []

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code) if str(code).isdigit() else code))

    def log_message(self, *args):
        pass   # keep the test output quiet; log_request records what matters


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("href", "src") and v]


def chromium(args: list[str], profile: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"] + args
    return subprocess.run(cmd, capture_output=True, timeout=120, text=True)


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="needs the Debian package chromium (/usr/bin/chromium): apt-get install -y chromium")
def test_chromium_loads_every_page_cleanly(site_files, tmp_path):
    site = tmp_path / "site"
    write_site(site_files, str(site))
    _Recorder.log = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Recorder, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    # latest/ pages only send the reader on (test_site_reader.py follows them)
    pages = sorted(p for p in site_files if p.endswith(".html") and not p.startswith("latest/"))
    try:
        def load(i_page):
            i, page = i_page
            return page, chromium(["--dump-dom", base + page], str(tmp_path / f"profile{i}"))

        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            results = dict(pool.map(load, enumerate(pages)))
        refs = set()
        for page, res in results.items():
            assert res.returncode == 0, (page, res.stderr[-2000:])
            console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Refused to" in ln]
            assert not console, (page, console)
            dom = res.stdout
            assert "<main>" in dom and "</html>" in dom, page
            # every table and chart of the source is in the browser's DOM
            source = site_files[page].decode()
            assert dom.count("<table") == source.count("<table"), page
            assert dom.count('<img class="chart"') == source.count('<img class="chart"'), page
            if page in ("index.html", "methodology.html", "optout.html") or page.endswith("/index.html") \
                    or page.endswith("port-22-tcp.html"):
                assert "<table" in dom, page
            if page == "index.html" or page.startswith("weeks/") and page.endswith("/index.html") \
                    or page == "weeks/2026-W48/port-22-tcp.html":
                assert '<img class="chart"' in dom, page
            parser = _Refs()
            parser.feed(dom)
            for ref in parser.refs:
                url = urllib.parse.urljoin(base + page, ref)
                if url.startswith(base):
                    refs.add(url.split("#")[0])
                else:
                    # credits link out, and the operator's contact is a mailto:; nothing else may
                    assert url.startswith(("https://", "mailto:")), (page, ref)
        broken = []
        for url in sorted(refs):
            with urllib.request.urlopen(url) as resp:   # raises on 4xx/5xx
                if resp.status != 200:
                    broken.append((url, resp.status))
        assert not broken
        assert base + "static/style.css" in refs and base + "data/2026-W48/aggregates.parquet" in refs
        failed = [(path, code) for path, code in _Recorder.log if not isinstance(code, int) or code >= 400]
        assert not failed, failed   # includes what the browser itself fetched (CSS, icon)
        SCREENSHOT = str(tmp_path / "port-22.png")   # docs/img/port-22.png is the demo week's, see docs/SITE.md
        shot = chromium(["--hide-scrollbars", "--window-size=1200,1500", f"--screenshot={SCREENSHOT}",
                         base + "weeks/2026-W48/port-22-tcp.html"], str(tmp_path / "profile-shot"))
        assert shot.returncode == 0, shot.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()
    with open(SCREENSHOT, "rb") as f:
        png = f.read()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
