"""HTTP Server values: RFC 9110 product tokens and comments, products in any
position, the OS from any comment (scanners/protocols/http.py)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from scanners.protocols import http
from scanners.protocols.identify import identify_parsed


def ident(value: str, banner_type: str = "http.server"):
    return identify_parsed("http", http.parse(value, banner_type))


def test_split_server_tokens_and_nested_quoted_comments():
    tokens, comments = http.split_server(r"Apache/2.4.6 (CentOS (x\) y)) OpenSSL/1.0.2k-fips Jetty(9.4)")
    assert [t for _, t in tokens] == ["Apache/2.4.6", "OpenSSL/1.0.2k-fips", "Jetty"]
    assert comments == ("CentOS (x) y)", "9.4")
    assert http.split_server("a (open comment")[1] == ("open comment",)
    assert http.split_server("") == ((), ())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab/1.() \t\\,")), max_size=60) | st.text(max_size=60))
def test_split_server_offsets_point_at_their_tokens(value):
    tokens, comments = http.split_server(value)
    for offset, token in tokens:
        assert token and value[offset:].startswith(token)
    parsed = http.parse(value, "http.server")
    assert len(parsed.starts) <= http.MAX_STARTS
    assert all(0 <= p <= len(parsed.subject) for p in parsed.starts)


def test_product_in_second_position_and_first_named_token_wins():
    assert ident("Stronghold/3.0 Apache/1.3.19").product == "Stronghold"
    got = ident("FooServer/2.0 Apache/2.4.41 (Unix)")
    assert (got.product, got.version, got.os_family) == ("Apache httpd", "2.4.41", "Unix")
    got = ident("Linux/4.14.98 UPnP/1.0 MiniUPnPd/2.1")
    assert (got.product, got.version, got.os_family) == ("MiniUPnPd", "2.1", "Linux")
    # module tokens alone are not products
    assert ident("PHP/7.4.3 OpenSSL/1.1.1").product is None


def test_os_from_any_comment_not_stopping_at_unix():
    got = ident("Apache/1.3.27 (Unix) (Red-Hat/Linux) mod_ssl/2.8.12")
    assert (got.os_family, got.os_release) == ("Linux", "Red Hat")
    assert ident("Apache/2.2.22 (Linux/SUSE)").os_release == "SUSE"
    assert ident("Apache/2.4.58 (Win64) OpenSSL/3.1.3").os_family == "Windows"
    assert ident("Apache/2.4.41 (Unix)").os_family == "Unix"
    # an OS without a known product is still said
    got = ident("Unknown/1.0 (Debian)")
    assert (got.product, got.os_release) == (None, "Debian")
    # a rule's own OS is not overridden by the comments
    assert ident("Apache/2.4.29 (Ubuntu)").os_release == "Ubuntu 18.04"


def test_header_block_uses_the_same_parse():
    block = "HTTP/1.1 200 OK\r\nServer: Oracle-Application-Server-10g/10.1.3.1.0 Oracle-HTTP-Server\r\n\r"
    got = ident(block, "http")
    assert (got.product, got.version) == ("Oracle Application Server", "10.1.3.1.0")
    assert got.cpe == "cpe:2.3:a:oracle:application_server:10.1.3.1.0:*:*:*:*:*:*:*"


def test_hostile_value_is_bounded():
    value = "x " * 3000 + "nginx/1.0"
    parsed = http.parse(value, "http.server")
    assert len(parsed.starts) == http.MAX_STARTS
    assert ident(value).product is None          # past the tried positions
