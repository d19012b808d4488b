"""The leak check's scanner (pipelines/leakcheck.py): every spelling of a
week's address is found, the general shapes are found, the allow-list holds,
and ordinary site text (versions, dates, counts, CSS) is not a hit."""
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from pipelines.leakcheck import (DEFAULT_ALLOWLIST, Allowlist, LeakError, Shape, WeekAddresses, find_leaks,
                                 load_allowlist, scan_text)

WEEK = WeekAddresses.from_texts(["10.20.5.40", "10.20.7.41", "2001:db8:77:a::40", "1.2.3.4",
                                 "ip='81.2.69.160' port=22 transport='tcp' banner=x"])
NONE = Allowlist()


def shapes(text, week=WEEK, allow=NONE):
    return [h.shape for h in scan_text("f.html", text, week, allow)]


@pytest.mark.parametrize("spelling", [
    "10.20.5.40", "ip10.20.5.40", "10.20.5.40.21", "ec2-10-20-5-40", "dynamic-ip-10-20-5-40.corp",
    "ip_10_20_5_40", "0x0a140528", "0x0a.0x14.0x05.0x28", "169084200", "0010.0020.0005.0040",
    "40.5.20.10.in-addr.arpa", "\uff11\uff10.20.5.40", "2001:db8:77:a::40", "host:2001:db8:77:a::40",
    "v2001:db8:77:a::40", "2001:0db8:0077:000a:0000:0000:0000:0040", "2001-db8-77-a--40",
    "::ffff:10.20.5.40", "81.2.69.160", "Server at 1.2.3.4!",
])
def test_every_spelling_of_a_week_address_is_found(spelling):
    assert Shape.WEEK_ADDRESS in shapes(f"<td>SSH-2.0 {spelling} ready</td>")


@pytest.mark.parametrize("text,shape", [
    ("relay 192.0.2.77 ok", Shape.IPV4),
    ("host 2a00:1450:4001:80b::200e", Shape.IPV6),
    ("MAC:00:0c:29:ab:cd:ef", Shape.MAC),
    ("mac 00-0C-29-AB-CD-EF.", Shape.MAC),
    ("cisco 000c.29ab.cdef", Shape.MAC),
    ("vendorVersion CN=dc01,OU=Servers,DC=corp,DC=example", Shape.DN),
])
def test_general_shapes_are_found_without_the_week(text, shape):
    assert shapes(text, WeekAddresses()) == [shape]


@pytest.mark.parametrize("text", [
    "5.5.31-0ubuntu0.12.04.1", "OpenSSH_5.3p1 Debian-3ubuntu7", "2013-09-09T00:00:00Z",
    "a::before { color: #fff }", "hosts_raw,hosts_adjusted\n16909,1369", "0.076155",
    "Apache/2.2.22 (Ubuntu)", "1,234,567 open hosts", "id urn:portcensus:week:2013-W37",
    "sha256 3f2a9c0d1e4b5a6f", "ports 22/tcp, 443/tcp", "{\"value\": \"other\", \"port\": 22}",
    "550e8400-e29b-41d4-a716-446655440000", "12:34:56",
])
def test_ordinary_site_text_is_no_hit(text):
    assert shapes(text) == []


def test_the_reviewed_allowlist_admits_the_scanner_ranges_only():
    allow = load_allowlist(DEFAULT_ALLOWLIST)
    text = "Our probes come from 198.51.100.0/24 (198.51.100.7) and 2001:db8::/32 (2001:db8:0:1::5)."
    assert shapes(text, WeekAddresses(), allow) == []
    assert shapes("scanned 192.0.2.1", WeekAddresses(), allow) == [Shape.IPV4]
    # a week address inside an allowed network is allowed too (it is the documented range)
    week = WeekAddresses.from_texts(["198.51.100.9"])
    assert shapes("198.51.100.9", week, allow) == []


def test_allowlist_needs_a_reason(tmp_path):
    bad = tmp_path / "allow.toml"
    bad.write_text('[[allow]]\ntoken = "192.0.2.0/24"\n')
    with pytest.raises(ValueError, match="reason"):
        load_allowlist(str(bad))
    good = tmp_path / "ok.toml"
    good.write_text('[[allow]]\ntoken = "CN=Example CA,O=Example"\nreason = "a CA we name"\n')
    assert shapes("issuer CN=Example CA,O=Example", WeekAddresses(), load_allowlist(str(good))) == []


def test_hits_name_file_line_and_shape_never_the_value():
    files = {"a.html": b"<p>fine</p>\n<p>ec2-10-20-5-40</p>\n", "b.csv": b"x\n", "c.json": b"[\"10.20.7.41\"]"}
    hits = find_leaks(files, WEEK, NONE)
    assert [(h.file, h.line, h.shape) for h in hits] == [("a.html", 2, Shape.WEEK_ADDRESS),
                                                         ("c.json", 1, Shape.WEEK_ADDRESS)]
    err = LeakError(hits)
    text = str(err)
    assert "a.html: an address of the week's input (line 2)" in text and "c.json:" in text
    assert "10.20.7.41" not in text and "10-20-5-40" not in text and "0a14" not in text


def test_parquet_downloads_are_scanned_by_their_cells():
    import io
    import pyarrow as pa
    import pyarrow.parquet as pq
    buf = io.BytesIO()
    pq.write_table(pa.table({"value": ["OpenSSH 5.3", "IIS SMTP 10.20.5.40"], "n": [1, 2]}), buf,
                   compression="zstd")
    hits = find_leaks({"data/aggregates.parquet": buf.getvalue()}, WEEK, NONE)
    assert [h.shape for h in hits] == [Shape.WEEK_ADDRESS]


_octet = st.integers(0, 255)


@settings(max_examples=300, deadline=None)
@given(st.tuples(_octet, _octet, _octet, _octet),
       st.sampled_from(["dotted", "dashed", "underscored", "zeros", "hex", "hexdots", "int", "rdns", "glued",
                        "port"]),
       st.sampled_from(["", "x", "ip", "host-", "<b>", " "]))
def test_generated_spellings_of_week_addresses_are_found(octets, spelling, prefix):
    value = octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]
    if value < 1 << 24 and spelling == "int":
        return    # a small integer is a count, not an address spelling we can tell apart
    o = [str(x) for x in octets]
    text = {"dotted": ".".join(o), "dashed": "-".join(o), "underscored": "_".join(o),
            "zeros": ".".join(f"{x:04d}" for x in octets), "hex": f"0x{value:08x}",
            "hexdots": ".".join(f"0x{x:02x}" for x in octets), "int": str(value),
            "rdns": ".".join(reversed(o)) + ".in-addr.arpa", "glued": "ip" + ".".join(o),
            "port": ".".join(o) + ".8080"}[spelling]
    week = WeekAddresses(frozenset([value]))
    assert Shape.WEEK_ADDRESS in shapes(f"{prefix}{text} tail", week)


@settings(max_examples=200, deadline=None)
@given(st.integers(1 << 96, (1 << 128) - 1), st.sampled_from(["compressed", "exploded", "dashed", "glued"]))
def test_generated_ipv6_spellings_are_found(value, spelling):
    a = ipaddress.IPv6Address(value)
    text = {"compressed": a.compressed, "exploded": a.exploded, "dashed": a.compressed.replace(":", "-"),
            "glued": "host:" + a.compressed}[spelling]
    if spelling == "dashed" and "--" not in text and text.count("-") != 7:
        return
    assert Shape.WEEK_ADDRESS in shapes(f"x {text} y", WeekAddresses(v6=frozenset([value])))


def test_week_addresses_from_out_reads_ip_bytes_vectorised(tmp_path):
    import ipaddress

    import pyarrow as pa
    import pyarrow.parquet as pq

    addrs = ["198.18.7.9", "203.0.113.77", "2001:db8::40"]
    raw = [ipaddress.ip_address(a) for a in addrs]
    ip16 = [ipaddress.IPv6Address(f"::ffff:{a}").packed if a.version == 4 else a.packed for a in raw]
    folder = tmp_path / "week=2013-W37" / "clean" / "port-22"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"ip": addrs, "ip_bytes": pa.array(ip16, pa.binary(16))}), folder / "part-0000.parquet")
    old = tmp_path / "week=2013-W36" / "clean" / "port=22"          # a week written before ip_bytes
    old.mkdir(parents=True)
    pq.write_table(pa.table({"ip": ["192.0.2.200"]}), old / "part-0000.parquet")
    week = WeekAddresses.from_out(str(tmp_path), ["2013-W37", "2013-W36"])
    for a in addrs + ["192.0.2.200"]:
        ip = ipaddress.ip_address(a)
        assert (ip.version, int(ip)) in week, a
    for a in ("198.18.7.10", "2001:db8::41", "0.0.0.0"):
        ip = ipaddress.ip_address(a)
        assert (ip.version, int(ip)) not in week, a
