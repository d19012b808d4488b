"""Release knowledge (scanners/protocols/releases.py + releases.toml)."""
from __future__ import annotations

import datetime

import pytest

from scanners.protocols import releases as R

D = datetime.date(2024, 6, 3)

# products the issue names: each has a table
REQUIRED = ["OpenSSH", "Dropbear SSH", "Apache httpd", "nginx", "IIS", "lighttpd", "Postfix", "Exim",
            "Sendmail", "ProFTPD", "vsftpd", "Pure-FTPd", "MySQL", "MariaDB", "PostgreSQL", "memcached"]


def test_every_required_product_has_dates_and_sources():
    table = R.load_releases()
    for name in REQUIRED:
        assert name in table, name
        assert table[name].sources and all(s.startswith(("http://", "https://")) for s in table[name].sources)
        dates = [d for _, _, d in table[name].releases]
        assert all(datetime.date(1995, 1, 1) < d < datetime.date(2026, 1, 1) for d in dates), name


def test_release_dates_grow_with_versions():
    # within a series a later version never predates an earlier one (across
    # series it may: Apache 2.2.34 came after 2.4.1), and series start in order
    for name, product in R.load_releases().items():
        series: dict = {}
        for key, _, d in product.releases:
            series.setdefault(key[:2], []).append(d)
        assert all(ds == sorted(ds) for ds in series.values()), name
        firsts = [ds[0] for _, ds in sorted(series.items())]
        assert firsts == sorted(firsts), name


@pytest.mark.parametrize("product,version,listed,match,eol_status", [
    ("OpenSSH", "7.4p1", "7.4", "exact", "unknown"),
    ("Apache httpd", "2.4.30", "2.4.29", "at_or_after", "unknown"),
    ("Apache httpd", "2.2.34", "2.2.34", "exact", "end_of_life"),
    ("MySQL", "5.7.44-log", "5.7", "exact", "end_of_life"),
    ("PostgreSQL", "16.2", "16", "exact", "supported"),
    ("IIS", "10.0", "10.0", "exact", "supported"),
    ("nginx", "1.22.1", "1.22.1", "exact", "end_of_life"),
])
def test_release_info_matches(product, version, listed, match, eol_status):
    info = R.release_info(product, version, D)
    assert (info.listed, info.match) == (listed, match)
    assert info.age_days == (D - info.released).days
    assert R.eol_status(info) == eol_status


def test_unknowns_are_none_not_guesses():
    assert R.release_info("MariaDB", "10.7.1", D) is None      # series not listed
    assert R.release_info("nginx", "1.25.3", D) is None        # mainline branch not listed
    assert R.release_info("Unknown", "1.0", D) is None
    assert R.release_info("OpenSSH", "garbage", D) is None
    assert R.release_info("OpenSSH", None, D) is None
    assert R.age_bucket(None) == "unknown" and R.eol_status(None) == "unknown"
    info = R.release_info("OpenSSH", "9.6p1")                  # no scan date: no age
    assert info.age_days is None and R.age_bucket(info) == "unknown"


def test_age_buckets_and_week_start():
    assert R.week_start("2024-W23") == datetime.date(2024, 6, 3)
    assert R.age_bucket(R.release_info("nginx", "1.26.0", datetime.date(2024, 6, 3))) == "<1y"
    assert R.age_bucket(R.release_info("Apache httpd", "1.3.0", D)) == ">=10y"
    with pytest.raises(ValueError):
        R.week_start("2024-23")


@pytest.mark.parametrize("text,message", [
    ('[[product]]\nnames = ["X"]\nsources = ["https://x"]\nreleases = { "1.0" = "2020-13-01" }', "month"),
    ('[[product]]\nnames = ["X"]\nsources = ["https://x"]\nreleases = { "1.0b" = "2020-01-01" }', "dotted"),
    ('[[product]]\nnames = ["X"]\nreleases = { "1.0" = "2020-01-01" }', "sources"),
    ('[[product]]\nnames = ["X"]\nsources = ["s"]\nreleases = { "1.0" = "2020" }', "YYYY-MM"),
    ('[[product]]\nnames = ["X"]\nsources = ["s"]\nreleases = { "1" = "2020-01" }\nseries = { "1" = {} }', "eol"),
    ('[[product]\n', "releases.toml"),
])
def test_malformed_release_data_is_rejected(text, message):
    with pytest.raises(R.ReleaseDataError, match=message):
        R.parse_releases(text)
