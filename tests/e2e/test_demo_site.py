"""The demo week's public site: nothing of any scanned host leaks into it,
and the port-22 page shows the counts the clean data holds."""
import collections
import html
import ipaddress
import os
import re

import pyarrow.compute as pc
import pytest

from pipelines.report.render import render_site
from pipelines.summary import clean_dataset
from tests.e2e.conftest import DEMO_WEEK

pytestmark = pytest.mark.slow

V4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
V6 = re.compile(r"(?<![0-9a-fA-F:])[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![0-9a-fA-F:])")


@pytest.fixture(scope="module")
def site(demo_run, tmp_path_factory):
    out, manifest, truth = demo_run
    path = tmp_path_factory.mktemp("demo-site") / "site"
    render_site(str(out), str(path))
    files = {}
    for d, _, names in os.walk(path):
        for n in names:
            p = os.path.join(d, n)
            files[os.path.relpath(p, path)] = open(p, "rb").read().decode("latin-1")
    return out, truth, files


def test_no_address_or_host_name_of_the_demo_week_anywhere_on_the_site(site):
    out, truth, files = site
    ips = set(clean_dataset(str(out), DEMO_WEEK).to_table(columns=["ip"]).column("ip").to_pylist())
    v6 = {ipaddress.ip_address(i) for i in ips if ":" in i}
    assert len(ips) > 10_000 and v6
    for name, text in files.items():
        found = set(V4.findall(text)) & ips
        assert not found, (name, sorted(found)[:3])
        for tok in V6.findall(text):
            try:
                assert ipaddress.ip_address(tok) not in v6, (name, tok)
            except ValueError:
                pass   # "12:30:00" and friends are not addresses
        low = text.lower()
        leaked = [h for h in truth["banner_hostnames"] + truth["banner_emails"] if h.lower() in low]
        assert not leaked, (name, leaked[:3])


def test_port_22_top20_matches_the_clean_data(site):
    out, truth, files = site
    t = clean_dataset(str(out), DEMO_WEEK).to_table(columns=["port", "transport", "status", "banner_public"])
    ssh = t.filter(pc.and_(pc.and_(pc.equal(t.column("port"), 22), pc.equal(t.column("transport"), "tcp")),
                           pc.equal(t.column("status"), "open")))
    counts = collections.Counter(v for v in ssh.column("banner_public").to_pylist() if v)
    page = files[f"weeks/{DEMO_WEEK}/port-22-tcp.html"]
    rows = re.findall(r'<td class="count num">([\d,]+)</td>\s*<td class="banner"><code>([^<]*)</code>', page)
    assert len(rows) == 20
    for count, banner in rows:
        assert int(count.replace(",", "")) == counts[html.unescape(banner)], banner
    assert [b for _, b in rows][:2] == ["SSH-2.0-OpenSSH_4.3", "SSH-2.0-OpenSSH_5.3"]
    assert "Host keys" in page
