"""GeoLookup must answer exactly what geoip2 answers for the same address text.

References are computed with geoip2 row by row; the vectorized tables are
never used to compute an expected value (only to pick interesting addresses:
range boundaries)."""
from __future__ import annotations

import ipaddress
import pickle
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from pipelines.geoip import (GeoIPError, GeoLookup, build_tables, database_info, ip16_to_hilo,
                             load_tables, materialize, open_database, search_last_le)

ROOT = Path(__file__).resolve().parents[2]
DBIP_COUNTRY = ROOT / "geoip" / "dbip-country-lite.mmdb.xz"
DBIP_ASN = ROOT / "geoip" / "dbip-asn-lite.mmdb.xz"
MAXMIND = Path("/work/shared/geoip-test")
needs_maxmind = pytest.mark.skipif(not MAXMIND.is_dir(), reason="MaxMind test DBs not available")


# -- helpers -------------------------------------------------------------------
def columns(texts: list[str]) -> tuple[pa.Array, pa.Array]:
    """ip16/ip_version columns as the pipeline builds them; an IPv6 text stays IPv6."""
    packed, vers = [], []
    for t in texts:
        a = ipaddress.ip_address(t)
        packed.append(b"\0" * 10 + b"\xff\xff" + a.packed if a.version == 4 else a.packed)
        vers.append(a.version)
    return pa.array(packed, pa.binary(16)), pa.array(vers, pa.int8())


def ref_country(reader: geoip2.database.Reader, text: str):
    method = reader.city if "City" in reader.metadata().database_type else reader.country
    try:
        return method(text).country.iso_code
    except geoip2.errors.AddressNotFoundError:
        return None


def ref_asn(reader: geoip2.database.Reader, text: str):
    method = reader.isp if "ISP" in reader.metadata().database_type else reader.asn
    try:
        r = method(text)
    except geoip2.errors.AddressNotFoundError:
        return None, None
    return r.autonomous_system_number, r.autonomous_system_organization


def v6_text(hi: int, lo: int) -> str:
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def sample_addresses(rng, tables: list[dict], n_random: int) -> list[str]:
    """Random IPv4/IPv6 addresses, every kind of IPv4 alias written as IPv6,
    and addresses on both sides of range boundaries taken from the tables."""
    r32 = lambda k: rng.integers(0, 2**32, k, dtype=np.uint64).tolist()  # noqa: E731
    out = [str(ipaddress.IPv4Address(x)) for x in r32(n_random)]
    out += [v6_text(0, 0xFFFF << 32 | x) for x in r32(n_random // 8)]                 # ::ffff:a.b.c.d
    out += [v6_text(0, x) for x in r32(n_random // 16)]                               # ::a.b.c.d
    out += [v6_text(0x2002 << 48 | x << 16, int(y)) for x, y in zip(r32(n_random // 16), r32(n_random // 16))]
    out += [v6_text(0x20010000 << 32 | x, int(y)) for x, y in zip(r32(n_random // 16), r32(n_random // 16))]
    hi = rng.integers(0x2000 << 48, 0x2C10 << 48, n_random // 2, dtype=np.uint64).tolist()
    out += [v6_text(h, int(x) << 32 | int(y)) for h, x, y in zip(hi, r32(len(hi)), r32(len(hi)))]
    out += [v6_text(int(a) << 32 | int(b), int(c) << 32 | int(d))
            for a, b, c, d in zip(*(r32(n_random // 16) for _ in range(4)))]
    for t in tables:
        v4 = t["v4_start"].astype(np.int64)
        pick = rng.choice(v4.size, min(v4.size, n_random // 8), replace=False)
        out += [str(ipaddress.IPv4Address(int(s) + d)) for s in v4[pick] for d in (0, -1) if int(s) + d >= 0]
        pick = rng.choice(t["v6_start_hi"].size, min(t["v6_start_hi"].size, n_random // 8), replace=False)
        for h, lo in zip(t["v6_start_hi"][pick].tolist(), t["v6_start_lo"][pick].tolist()):
            start = (h << 64) | lo
            out += [str(ipaddress.IPv6Address(a)) for a in (start, start - 1) if a >= 0]
    return out


def check_equal(lookup: GeoLookup, texts, country_reader=None, asn_reader=None):
    ip16, ver = columns(texts)
    got = lookup.lookup(ip16, ver).to_pydict()
    bad = []
    for i, t in enumerate(texts):
        if country_reader is not None and got["country"][i] != ref_country(country_reader, t):
            bad.append((t, "country", got["country"][i], ref_country(country_reader, t)))
        if asn_reader is not None and (got["asn"][i], got["as_org"][i]) != ref_asn(asn_reader, t):
            bad.append((t, "asn", got["asn"][i], got["as_org"][i], ref_asn(asn_reader, t)))
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"
    return got


# -- DB-IP (real data) ------------------------------------------------------------
@pytest.fixture(scope="session")
def dbip(tmp_path_factory):
    cache = tmp_path_factory.mktemp("geoip-cache")
    lookup = GeoLookup(str(DBIP_COUNTRY), str(DBIP_ASN), str(cache))
    lookup.setup()
    c_mmdb, a_mmdb = materialize(DBIP_COUNTRY, cache), materialize(DBIP_ASN, cache)
    with geoip2.database.Reader(str(c_mmdb)) as c, geoip2.database.Reader(str(a_mmdb)) as a:
        yield {"lookup": lookup, "cache": cache, "country_reader": c, "asn_reader": a,
               "tables": [load_tables(c_mmdb, "country", cache), load_tables(a_mmdb, "asn", cache)]}


def test_dbip_documented_answers(dbip):
    ip16, ver = columns(["8.8.8.8", "1.1.1.1", "193.0.6.139"])
    got = dbip["lookup"].lookup(ip16, ver).to_pydict()
    assert got == {"country": ["US", "AU", "NL"], "asn": [15169, 13335, 3333],
                   "as_org": ["Google LLC", "Cloudflare, Inc.",
                              "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)"]}


def test_dbip_equals_geoip2_on_many_addresses(dbip):
    texts = sample_addresses(np.random.default_rng(20260901), dbip["tables"], 40_000)
    assert len(texts) >= 100_000
    got = check_equal(dbip["lookup"], texts, dbip["country_reader"], dbip["asn_reader"])
    # The sample is informative: most addresses resolve, and aliases of IPv4 do too.
    assert sum(c is not None for c in got["country"]) > len(texts) // 2
    assert any(t.startswith("2002:") for t, c in zip(texts, got["country"]) if c)


def test_ipv4_aliases_written_as_ipv6(dbip):
    texts = ["8.8.8.8", "::ffff:8.8.8.8", "::8.8.8.8", "2002:808:808::1", "2001:0:808:808::1"]
    got = check_equal(dbip["lookup"], texts, dbip["country_reader"], dbip["asn_reader"])
    assert got["asn"] == [15169] * 5


def test_cache_is_reused_and_lookup_pickles(dbip):
    files = sorted(p.name for p in dbip["cache"].glob("geoip-*.npz"))
    assert len(files) == 2 and files[0].startswith("geoip-asn-") and files[1].startswith("geoip-country-")
    clone = pickle.loads(pickle.dumps(dbip["lookup"]))  # state is only paths
    assert clone._country is None
    ip16, ver = columns(["193.0.6.139", "2001:67c:2e8::1"])
    assert clone.lookup(ip16, ver).equals(dbip["lookup"].lookup(ip16, ver))


def test_worker_threads_share_one_load_until_a_database_changes(tmp_path, monkeypatch):
    # each worker thread's DoFn has its own GeoLookup; the tables are loaded once
    import os
    import shutil
    import threading
    from pipelines import geoip
    monkeypatch.setattr(geoip, "_SETTLED_NS", 0)    # the copy below is not 2 s old
    country = tmp_path / "country.mmdb.xz"
    shutil.copy(DBIP_COUNTRY, country)
    lookups = [GeoLookup(str(country), str(DBIP_ASN), str(tmp_path / "cache")) for _ in range(4)]
    workers = [threading.Thread(target=g.setup) for g in lookups]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(g._country is lookups[0]._country and g._orgs is lookups[0]._orgs for g in lookups)
    ip16, ver = columns(["8.8.8.8"])
    assert lookups[3].lookup(ip16, ver).to_pydict()["country"] == ["US"]
    # a database replaced between runs of one process (weekly) is loaded again
    os.utime(country, ns=(1, 1))
    again = GeoLookup(str(country), str(DBIP_ASN), str(tmp_path / "cache"))
    again.setup()
    assert again._country is not lookups[0]._country
    assert again.lookup(ip16, ver).equals(lookups[0].lookup(ip16, ver))


def test_nulls_and_odd_versions(dbip):
    ip16 = pa.array([b"\0" * 10 + b"\xff\xff" + bytes([8, 8, 8, 8])] * 4 + [None], pa.binary(16))
    ver = pa.array([4, None, 5, 4, 4], pa.int8())
    got = dbip["lookup"].lookup(ip16, ver).to_pydict()
    assert got["country"] == ["US", None, None, "US", None]
    assert got["asn"] == [15169, None, None, 15169, None]
    sliced = dbip["lookup"].lookup(ip16.slice(3), ver.slice(3)).to_pydict()
    assert sliced["country"] == ["US", None]


def test_version4_row_must_be_mapped(dbip):
    ip16, _ = columns(["2001:db8::1"])
    with pytest.raises(ValueError, match="IPv4-mapped"):
        dbip["lookup"].lookup(ip16, pa.array([4], pa.int8()))


def test_database_info_matches_readme(dbip):
    info = database_info(DBIP_COUNTRY, dbip["cache"])
    assert info["sha256"] == "d284ae2e7427fe33d83465e1506b2b21aae47eb8a9b099f8f4dac6a98c99f041"
    assert info["database_type"] == "DBIP-Country-Lite"
    assert info["build_date"].startswith("2026-09-01T") and info["ip_version"] == 6
    assert info["node_count"] == 1381760


# -- MaxMind test databases -------------------------------------------------------------
@needs_maxmind
@pytest.mark.parametrize("country_db, asn_db", [("GeoIP2-Country-Test.mmdb", "GeoLite2-ASN-Test.mmdb"),
                                                ("GeoLite2-Country-Test.mmdb", "GeoIP2-ISP-Test.mmdb")])
def test_maxmind_test_dbs_equal_geoip2(tmp_path, country_db, asn_db):
    c_path, a_path = MAXMIND / country_db, MAXMIND / asn_db
    lookup = GeoLookup(str(c_path), str(a_path), str(tmp_path))
    texts = ["81.2.69.142", "89.160.20.128", "2001:218::1", "214.1.1.1", "8.8.8.8", "1.128.0.0",
             "12.81.92.1", "149.101.100.1", "2001:1700::1", "2600:6000::1", "::ffff:81.2.69.142",
             "2002:5102:458e::1"]
    for path in (c_path, a_path):  # every network edge, from maxminddb's own iteration
        with maxminddb.open_database(str(path)) as reader:
            for net, _ in reader:
                first, last = int(net.network_address), int(net.broadcast_address)
                cls = type(net.network_address)
                texts += [str(cls(a)) for a in (first - 1, first, last, last + 1) if 0 <= a < 2**net.max_prefixlen]
    texts += sample_addresses(np.random.default_rng(7), [build_tables(c_path, "country")], 2_000)
    with maxmind_reader(c_path) as c, maxmind_reader(a_path) as a:
        check_equal(lookup, texts, c, a)


def maxmind_reader(path):
    return geoip2.database.Reader(str(path))


@needs_maxmind
def test_maxmind_readme_values(tmp_path):
    lookup = GeoLookup(str(MAXMIND / "GeoIP2-Country-Test.mmdb"), str(MAXMIND / "GeoIP2-ISP-Test.mmdb"))
    ip16, ver = columns(["81.2.69.142", "2001:218::1", "214.1.1.1", "8.8.8.8", "1.128.0.0"])
    got = lookup.lookup(ip16, ver).to_pydict()
    assert got["country"] == ["GB", "JP", None, None, None]
    assert got["asn"][4] == 1221 and got["as_org"][4] == "Telstra Pty Ltd"
    assert got["asn"][3] is None


# -- clear errors ---------------------------------------------------------------------
def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(GeoIPError) as exc:
        open_database(tmp_path / "nope.mmdb", "country")
    assert "not found" in one_line(exc)
    with pytest.raises(GeoIPError):
        GeoLookup(str(tmp_path / "nope.mmdb")).setup()


def test_text_file_is_not_a_database(tmp_path):
    p = tmp_path / "GeoLite2-Country.mmdb"
    p.write_text("this is not a database\n")
    with pytest.raises(GeoIPError) as exc:
        open_database(p, "country")
    assert "not a readable MaxMind DB" in one_line(exc)


def test_wrong_role(dbip):
    with pytest.raises(GeoIPError) as exc:
        open_database(DBIP_COUNTRY, "asn", dbip["cache"])
    assert "not a asn database -- it looks like a country database" in one_line(exc)
    with pytest.raises(GeoIPError) as exc:
        GeoLookup(str(DBIP_ASN), None, str(dbip["cache"])).setup()
    assert "DBIP-ASN-Lite" in one_line(exc)


@needs_maxmind
def test_wrong_role_maxmind():
    with pytest.raises(GeoIPError):
        open_database(MAXMIND / "GeoIP2-Country-Test.mmdb", "asn")
    open_database(MAXMIND / "GeoIP2-ISP-Test.mmdb", "asn").close()


def test_xz_needs_cache_dir_and_must_be_valid(tmp_path):
    with pytest.raises(GeoIPError) as exc:
        open_database(DBIP_COUNTRY, "country")
    assert "cache directory" in one_line(exc)
    bad = tmp_path / "broken.mmdb.xz"
    bad.write_bytes(DBIP_COUNTRY.read_bytes()[:5000])
    with pytest.raises(GeoIPError) as exc:
        open_database(bad, "country", tmp_path / "c")
    assert "xz" in one_line(exc)
    assert not list((tmp_path / "c").glob("*"))  # no half-written file left behind


@needs_maxmind
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12_652), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupt_database_raises_only_geoiperror(tmp_path_factory, edits):
    """A damaged .mmdb either still flattens or fails with GeoIPError."""
    data = bytearray((MAXMIND / "GeoLite2-ASN-Test.mmdb").read_bytes())
    for pos, val in edits:
        data[pos] = val
    p = tmp_path_factory.mktemp("fuzz") / "x.mmdb"
    p.write_bytes(bytes(data))
    try:
        open_database(p, "asn").close()
        build_tables(p, "asn")
    except GeoIPError:
        pass


# -- building blocks -----------------------------------------------------------------------
def test_ip16_to_hilo_respects_slices():
    vals = [(i * 0x0123456789ABCDEF0123456789ABCDEF) % 2**128 for i in range(1, 6)]
    arr = pa.array([v.to_bytes(16, "big") for v in vals], pa.binary(16)).slice(2)
    hi, lo = ip16_to_hilo(arr)
    assert [(int(h) << 64) | int(l) for h, l in zip(hi, lo)] == vals[2:]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=40, unique=True),
       st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=40), st.integers(0, 3))
def test_search_last_le_matches_brute_force(starts, keys, squash):
    # squash > 0 gives the starts only `squash` distinct high words (the bisection path)
    if squash:
        sq = lambda x: ((x >> 64) % squash) << 64 | (x & (2**64 - 1))  # noqa: E731
        starts, keys = [sq(s) for s in starts], [sq(k) for k in keys]
    starts = sorted(set(starts) | {0})
    split = lambda xs: (np.array([x >> 64 for x in xs], np.uint64),  # noqa: E731
                        np.array([x & (2**64 - 1) for x in xs], np.uint64))
    s_hi, s_lo = split(starts)
    k_hi, k_lo = split(keys)
    got = search_last_le(s_hi, s_lo, k_hi, k_lo).tolist()
    assert got == [max(i for i, s in enumerate(starts) if s <= k) for k in keys]


@pytest.mark.parametrize("record_size, node, left, right", [
    (24, bytes.fromhex("abcdef123456"), 0xABCDEF, 0x123456),
    # 28-bit: the middle byte's high nibble tops the left record, its low nibble the right one
    (28, bytes.fromhex("bcdef1a2345678"), 0xABCDEF1, 0x2345678),
    (32, bytes.fromhex("89abcdef01234567"), 0x89ABCDEF, 0x01234567),
])
def test_node_records_follow_the_mmdb_spec(record_size, node, left, right):
    from pipelines.geoip_tables import _node_records
    lefts, rights = _node_records(bytes(node_size := len(node)) + node, 2, record_size)
    assert node_size == record_size // 4
    assert (int(lefts[1]), int(rights[1])) == (left, right) and (int(lefts[0]), int(rights[0])) == (0, 0)


@needs_maxmind
def test_unreadable_cache_is_rebuilt(tmp_path):
    db = MAXMIND / "GeoLite2-ASN-Test.mmdb"
    first = load_tables(db, "asn", tmp_path)
    (cache,) = tmp_path.glob("geoip-asn-*.npz")
    cache.write_bytes(b"not an npz")
    again = load_tables(db, "asn", tmp_path)
    assert again.keys() == first.keys() and all(np.array_equal(again[k], first[k]) for k in first)
    with np.load(cache) as npz:  # and the cache file was replaced by a good one
        assert np.array_equal(npz["v4_start"], first["v4_start"])


def test_a_database_digest_is_remembered_only_while_the_file_is_the_same(tmp_path, monkeypatch):
    import hashlib
    from pipelines import geoip
    # a file written just now is never remembered: rewritten in place within one
    # timestamp tick, with the same size, it could keep every stat field
    fresh = tmp_path / "fresh.mmdb"
    fresh.write_bytes(b"first")
    assert geoip._sha256(fresh) == hashlib.sha256(b"first").hexdigest()
    assert not any(k[0] == str(fresh) for k in geoip._DIGESTS)
    fresh.write_bytes(b"other")
    assert geoip._sha256(fresh) == hashlib.sha256(b"other").hexdigest()
    monkeypatch.setattr(geoip, "_SETTLED_NS", 0)    # from here: files count as settled
    f = tmp_path / "x.mmdb"
    f.write_bytes(b"first")
    first = geoip._sha256(f)
    assert geoip._sha256(f) == first and any(k[0] == str(f) for k in geoip._DIGESTS)
    new = tmp_path / "x.new"
    new.write_bytes(b"other")        # same size, new content, put in place as updates are
    new.replace(f)
    assert geoip._sha256(f) != first
    assert geoip._sha256(f) == hashlib.sha256(b"other").hexdigest()
