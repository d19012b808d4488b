"""scanners.escapes: masscan banner escapes back to the original bytes."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from scanners import escapes
from scanners.escapes import (banner_text, banner_text_column, decode_column_backslash_x,
                              decode_column_latin1, latin1_to_bytes, unescape_backslash_x)

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
TITLE = 'Fixture A &amp; "quoted" café'.encode()


def _masscan_safe(b: int) -> bool:
    # The rule of masscan's normalize_string / normalize_json_string (isprint in the C locale).
    return 0x20 <= b < 0x7F and chr(b) not in "<>&\\\"'"


def masscan_backslash_x(data: bytes) -> bytes:
    """What masscan -oL/-oG/-oX write for a banner (test-side re-implementation)."""
    return b"".join(bytes((b,)) if _masscan_safe(b) else b"\\x%02x" % b for b in data)


def masscan_json_string(data: bytes) -> str:
    """The JSON string literal masscan -oJ/ndjson write for a banner."""
    return '"' + "".join(chr(b) if _masscan_safe(b) else "\\u00%02x" % b for b in data) + '"'


# -- scalar helpers ------------------------------------------------------------

def test_latin1_mojibake_becomes_the_original_utf8_bytes():
    decoded = json.loads(r'"Fixture A \u0026amp; \u0022quoted\u0022 caf\u00c3\u00a9"')
    assert decoded.endswith("cafÃ©")  # what a plain JSON decoder hands us
    assert latin1_to_bytes(decoded) == TITLE


def test_latin1_code_points_above_ff_fall_back_to_utf8():
    assert latin1_to_bytes("snow ☃") == "snow ☃".encode("utf-8")
    assert latin1_to_bytes("\ud800") == b"\xed\xa0\x80"  # lone surrogate: no exception


def test_backslash_x_as_masscan_writes_it():
    assert unescape_backslash_x(rb"Fixture A \x26amp; \x22quoted\x22 caf\xc3\xa9") == TITLE
    assert unescape_backslash_x(rb"HTTP/1.0 200 OK\x0d\x0aServer: x\x0d\x0a\x0d") == \
        b"HTTP/1.0 200 OK\r\nServer: x\r\n\r"
    assert unescape_backslash_x(rb"a\x5cb") == b"a\\b"


def test_backslash_x_edge_cases():
    assert unescape_backslash_x(rb"a\\b") == b"a\\b"             # '\\' if some writer uses it
    assert unescape_backslash_x(rb"\xC3\xA9") == "é".encode()      # upper-case hex (nmap style)
    assert unescape_backslash_x(rb"\xzz \x4 end\\") == b"\\xzz \\x4 end\\"  # junk kept as is
    assert unescape_backslash_x(r"caf\xc3\xa9") == "café".encode()  # str input
    assert unescape_backslash_x(b"plain") == b"plain"


def test_banner_text():
    assert banner_text("café".encode()) == ("café", False)
    assert banner_text(b"ok\xff\xfe") == ("ok\\xff\\xfe", True)
    assert banner_text(b"") == ("", False)


@given(st.binary(max_size=200))
def test_backslash_x_round_trips_masscan_escaping(data):
    assert unescape_backslash_x(masscan_backslash_x(data)) == data


@given(st.binary(max_size=200))
def test_json_round_trips_masscan_escaping(data):
    assert latin1_to_bytes(json.loads(masscan_json_string(data))) == data


@given(st.binary(max_size=100))
def test_unescape_never_raises(data):
    assert isinstance(unescape_backslash_x(data), bytes)


def test_real_files_list_and_ndjson_banners_agree():
    """masscan_readscan.list (\\xNN) and .ndjson (\\u00NN) come from the same scan."""
    from_list = []
    for line in (REAL / "masscan_readscan.list").read_bytes().splitlines():
        if line.startswith(b"banner "):
            f = line.split(b" ", 6)
            from_list.append((f[3].decode(), int(f[2]), f[1].decode(), f[5].decode(),
                              unescape_backslash_x(f[6])))
    from_ndjson = []
    for line in (REAL / "masscan_readscan.ndjson").read_text().splitlines():
        r = json.loads(line)
        if r["rec_type"] == "banner":
            d = r["data"]
            from_ndjson.append((r["ip"], r["port"], r["proto"], d["service_name"],
                                latin1_to_bytes(d["banner"])))
    assert len(from_list) == 22
    assert sorted(from_list) == sorted(from_ndjson)
    assert ("198.18.0.1", 80, "tcp", "title", TITLE) in from_list


# -- Arrow columns ---------------------------------------------------------------

def test_decode_column_latin1_values_and_nulls():
    col = pa.array(["caf\u00c3\u00a9", None, "plain\r\n", "caf\u00c3\u00a9", "☃"])
    out = decode_column_latin1(col)
    assert out.type == pa.binary()
    assert out.to_pylist() == ["café".encode(), None, b"plain\r\n", "café".encode(), "☃".encode()]


def test_decode_column_latin1_converts_each_distinct_value_once(monkeypatch):
    calls = []
    real = escapes.latin1_to_bytes
    monkeypatch.setattr(escapes, "latin1_to_bytes", lambda s: calls.append(s) or real(s))
    values = ["caf\u00c3\u00a9", "\u00ff\u00fe", "x\u00e9"] * 400
    out = decode_column_latin1(pa.chunked_array([values[:500], values[500:]]))
    assert len(out) == 1200 and out[1].as_py() == b"\xff\xfe"
    assert sorted(calls) == sorted(set(values))


def test_decode_column_backslash_x():
    col = pa.array([r"caf\xc3\xa9", None, "no escapes", r"a\x5cb"])
    assert decode_column_backslash_x(col).to_pylist() == ["café".encode(), None, b"no escapes", b"a\\b"]
    binary = pa.array([b"plain", None])
    assert decode_column_backslash_x(binary).to_pylist() == [b"plain", None]


def test_banner_text_column():
    col = pa.array(["café".encode(), None, b"\xff", b"ok"], pa.binary())
    text, fallback = banner_text_column(col)
    assert text.to_pylist() == ["café", None, "\\xff", "ok"]
    assert fallback.to_pylist() == [False, None, True, False]
    text, fallback = banner_text_column(pa.array([b"a", None], pa.binary()))
    assert text.to_pylist() == ["a", None] and fallback.to_pylist() == [False, None]


@pytest.mark.parametrize("fn", [decode_column_latin1, decode_column_backslash_x])
def test_empty_and_all_null_columns(fn):
    assert fn(pa.array([], pa.string())).to_pylist() == []
    assert fn(pa.array([None, None], pa.string())).to_pylist() == [None, None]


@settings(max_examples=60)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=30))
def test_latin1_column_matches_scalar(values):
    assert decode_column_latin1(pa.array(values, pa.string())).to_pylist() == \
        [None if v is None else latin1_to_bytes(v) for v in values]


@settings(max_examples=60)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=12)), max_size=30))
def test_backslash_and_text_columns_match_scalar(values):
    escaped = [None if v is None else masscan_backslash_x(v) for v in values]
    assert decode_column_backslash_x(pa.array(escaped, pa.binary())).to_pylist() == values
    text, fallback = banner_text_column(pa.array(values, pa.binary()))
    expected = [None if v is None else banner_text(v) for v in values]
    assert text.to_pylist() == [None if e is None else e[0] for e in expected]
    assert fallback.to_pylist() == [None if e is None else e[1] for e in expected]
