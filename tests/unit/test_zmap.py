"""zmap readers against the real zmap 2.1.1 outputs in tests/fixtures/real/
(expected values from its README.md), plus hostile input."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipelines.schema import DamageKind
from scanners import registry
from scanners.base import ReadContext
from scanners.formats import zgrab2, zmap, zmap_common, zmap_csv
from tests.helpers import read_in_chunks

REAL = Path(__file__).parents[1] / "fixtures" / "real"
FMT = {f.name: f for f in zmap.FORMATS}
UTC = dt.timezone.utc


def us(*args) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp() * 1_000_000)


def run(fmt: str, data: bytes, source: str = "x", chunk: int | None = None, **facts):
    ctx = ReadContext(source=source, facts=dict(facts))
    return ctx, read_in_chunks(FMT[fmt].read, data, ctx, chunk)


def quarantine(ctx) -> list[dict]:
    q = ctx.take_quarantine()
    return q.to_pylist() if q is not None else []


def fixture(name: str) -> bytes:
    return (REAL / name).read_bytes()


RESULT_FILES = {
    "zmap_p22.csv": "zmap-csv", "zmap_p80_all_responses.csv": "zmap-csv", "zmap_icmp.csv": "zmap-csv",
    "zmap_p22.json": "zmap-json", "zmap_p80_default_fields.csv": "zmap-list",
    "zmap_p80_default_module.txt": "zmap-list",
}
NOT_RESULTS = ["zmap_p22.metadata.json", "zmap_p22.status.csv", "zmap_p22.log",
               "zmap_allowlist.txt", "zmap_blocklist.txt"]


@pytest.mark.parametrize("name,fmt", sorted(RESULT_FILES.items()))
def test_fixture_sniffed_and_read_cleanly(name, fmt):
    head = fixture(name)[:registry.SNIFF_BYTES]
    assert [f.name for f in zmap.FORMATS if f.sniff(head)][0] == fmt
    assert not zgrab2.sniff(head)
    assert registry.sniff_format(head).name == fmt      # masscan sniffers must not steal it
    # A bare list's port is the sidecar's (its name does not end in _p<port>).
    hint = {"port_hint": 80} if fmt == "zmap-list" else {}
    ctx, t = run(fmt, fixture(name), source=str(REAL / name), **hint)
    assert ctx.quarantined == 0 and not ctx.damages and t.num_rows > 0
    assert set(t["tool"].to_pylist()) == {"zmap"}


@pytest.mark.parametrize("name", NOT_RESULTS)
def test_non_result_files_are_not_claimed(name):
    head = fixture(name)[:registry.SNIFF_BYTES]
    assert not any(f.sniff(head) for f in zmap.FORMATS)
    assert not zgrab2.sniff(head)


def _by_status(t):
    rows = t.to_pylist()
    return ({r["ip"] for r in rows if r["status"] == "open"},
            [r for r in rows if r["status"] == "closed"])


@pytest.mark.parametrize("name", ["zmap_p22.csv", "zmap_p22.json"])
def test_p22_two_open_ten_rst(name):
    ctx, t = run(RESULT_FILES[name], fixture(name), source=name)
    opened, closed = _by_status(t)
    assert opened == {"198.18.0.1", "198.18.0.2"}
    assert len(closed) == 10 and {r["reason"] for r in closed} == {"rst"}
    assert set(t["port"].to_pylist()) == {22} and set(t["transport"].to_pylist()) == {"tcp"}
    assert set(t["ttl"].to_pylist()) == {64}


def test_p22_csv_values_and_offsets():
    data = fixture("zmap_p22.csv")
    _, t = run("zmap-csv", data)
    lines = data.split(b"\n")[1:-1]
    starts = [data.index(line) for line in lines]
    assert t["source_offset"].to_pylist() == starts
    first = t.slice(0, 1).to_pylist()[0]
    assert first["ip"] == "198.18.0.3" and first["status"] == "closed"
    assert first["timestamp"] == dt.datetime(2026, 11, 25, 0, 38, 14, 798708, tzinfo=UTC)
    synack = [r for r in t.to_pylist() if r["ip"] == "198.18.0.1"][0]
    assert synack["reason"] == "synack" and synack["status"] == "open"
    assert int(synack["timestamp"].timestamp() * 1e6) == 1795567094 * 1_000_000 + 798778


def test_all_responses_keeps_repeats_as_open():
    _, t = run("zmap-csv", fixture("zmap_p80_all_responses.csv"))
    rows = t.to_pylist()
    assert len(rows) == 24
    opened = [r for r in rows if r["status"] == "open"]
    assert len(opened) == 6 and {r["ip"] for r in opened} == {"198.18.0.1", "198.18.0.3", "198.18.0.6"}
    assert sum(r["status"] == "closed" and r["reason"] == "rst" for r in rows) == 18
    assert set(t["port"].to_pylist()) == {80}


def test_icmp_echo_rows():
    _, t = run("zmap-csv", fixture("zmap_icmp.csv"))
    assert t.num_rows == 12
    assert set(t["transport"].to_pylist()) == {"icmp"} and set(t["port"].to_pylist()) == {0}
    assert set(t["reason"].to_pylist()) == {"echoreply"} and set(t["status"].to_pylist()) == {"open"}
    assert set(t["timestamp"].to_pylist()) == {dt.datetime(2026, 11, 25, 0, 38, 32, 735000, tzinfo=UTC)}


def test_bare_lists_take_port_from_file_name():
    ctx, t = run("zmap-list", fixture("zmap_p80_default_module.txt"), source="land/zmap_p80.txt")
    assert set(t["ip"].to_pylist()) == {"198.18.0.1", "198.18.0.3", "198.18.0.6"}
    assert set(t["port"].to_pylist()) == {80} and t["timestamp"].null_count == 3
    assert ctx.facts["open_only_unverified"] and ctx.facts["timestamps_missing"]
    assert ctx.facts["port_source"] == "filename" and set(t["port_source"].to_pylist()) == {"filename"}
    ctx, t = run("zmap-list", fixture("zmap_p80_default_fields.csv"), source="zmap_p80.csv")
    assert t.num_rows == 12 and set(t["status"].to_pylist()) == {"open"}


def test_bare_list_sidecar_hints_win():
    start = us(2026, 11, 25, 0, 38)
    ctx, t = run("zmap-list", fixture("zmap_p80_default_module.txt"), source="scan_p80.txt",
                 port_hint="8080", transport_hint="udp", scan_start_us=start)
    assert set(t["port"].to_pylist()) == {8080} and set(t["transport"].to_pylist()) == {"udp"}
    assert {int(x.timestamp() * 1e6) for x in t["timestamp"].to_pylist()} == {start}
    assert ctx.facts["port_source"] == "sidecar" and "timestamps_missing" not in ctx.facts


def test_bare_list_without_port_is_quarantined_not_dropped():
    ctx, t = run("zmap-list", fixture("zmap_p80_default_module.txt"), source="results.txt")
    assert t.num_rows == 0 and ctx.records_read == ctx.quarantined == 3
    q = quarantine(ctx)
    assert {r["reason"] for r in q} == {"missing_field"}
    assert "sidecar giving the port" in q[0]["detail"]


@pytest.mark.parametrize("source,port", [
    ("zmap_p443.csv", 443), ("a/b/scan-port8080.txt.gz", 8080), ("p25.txt", 25), ("x_p80_p443.txt", 443),
    # Only the end of the stem counts: a _p<n> anywhere else is not a port.
    ("a/b/zmap_p22_2026.txt", None), ("zmap_p80_default_module.txt", None), ("top80.txt", None),
    ("x_p99999.txt", None), ("a_p22/list.txt", None), ("scan_p22x.csv", None)])
def test_port_from_file_name(source, port):
    assert zmap_common.port_hint(ReadContext(source=source))[0] == port


def test_header_spellings_are_equivalent():
    data = fixture("zmap_p22.csv")
    header, rest = data.split(b"\n", 1)
    _, base = run("zmap-csv", data)
    _, under = run("zmap-csv", header.replace(b"-", b"_") + b"\n" + rest)   # zmap >= 3.0
    _, spaced = run("zmap-csv", data.replace(b",", b", "))                 # old ", " separators
    cols = ["ip", "port", "status", "reason", "ttl", "timestamp"]
    assert base.select(cols).equals(under.select(cols)) and base.select(cols).equals(spaced.select(cols))


def test_chunking_and_block_size_do_not_change_output(monkeypatch):
    data = fixture("zmap_p80_all_responses.csv")
    _, whole = run("zmap-csv", data)
    monkeypatch.setattr(zmap_csv, "BLOCK_BYTES", 200)
    _, small = run("zmap-csv", data, chunk=7)
    assert whole.equals(small)
    _, lst = run("zmap-list", fixture("zmap_p80_default_fields.csv"), source="p80.txt", chunk=3)
    assert lst.num_rows == 12


def test_batch_rows_respected():
    ctx = ReadContext(source="x", batch_rows=5)
    batches = list(FMT["zmap-csv"].read(iter([fixture("zmap_p80_all_responses.csv")]), ctx))
    assert [b.num_rows for b in batches] == [5, 5, 5, 5, 4]


def test_bad_lines_in_the_middle_keep_the_rest():
    lines = fixture("zmap_p22.csv").split(b"\n")
    bad = [b"garbage", b"198.18.0.99,198.18.0.200,abc" + lines[5].split(b",22", 1)[1],
           lines[6].replace(b",22,", b",70000,", 1), lines[7].replace(b"198.18.0.", b"999.18.0.", 1),
           lines[8].replace(b"1795567094", b"", 1), lines[9].replace(b"\r", b"").replace(b",64,", b",6\r4,", 1)]
    data = b"\n".join(lines[:3] + bad + lines[3:])
    ctx, t = run("zmap-csv", data)
    reasons = sorted(r["reason"] for r in quarantine(ctx))
    assert reasons == sorted(["malformed_record", "malformed_record", "malformed_record", "invalid_port",
                              "invalid_ip", "invalid_timestamp"])
    assert t.num_rows == 12          # the bad lines were inserted copies; every original is kept
    good_offsets = [data.rindex(line + b"\n") for line in lines[1:-1]]
    assert t["source_offset"].to_pylist() == good_offsets


def test_bad_ip_line_in_bare_list():
    data = b"198.18.0.1\nnot an ip\n198.18.0.300\n2001:db8::1\n198.18.0.3\n"
    ctx, t = run("zmap-list", data, source="p80.txt")
    assert t["ip"].to_pylist() == ["198.18.0.1", "2001:db8::1", "198.18.0.3"]
    assert t["source_offset"].to_pylist() == [0, 34, 46]
    assert [r["reason"] for r in quarantine(ctx)] == ["invalid_ip", "invalid_ip"]


@pytest.mark.parametrize("fmt,name", [("zmap-csv", "zmap_p22.csv"), ("zmap-json", "zmap_p22.json"),
                                      ("zmap-list", "zmap_p80_default_fields.csv")])
def test_truncated_last_line(fmt, name):
    data = fixture(name)
    cut = data[:-6]
    ctx, t = run(fmt, cut, source="p80.txt")
    total = len(data.rstrip(b"\n").split(b"\n")) - (fmt == "zmap-csv")
    assert t.num_rows == total - 1
    q = quarantine(ctx)
    assert [r["reason"] for r in q] == ["truncated_record"]
    assert q[0]["source_offset"] == cut.rindex(b"\n") + 1
    assert [d.kind for d in ctx.damages] == [DamageKind.PARTIAL_LAST_RECORD]


def test_json_last_line_without_newline_but_complete_is_kept():
    ctx, t = run("zmap-json", fixture("zmap_p22.json").rstrip(b"\n"))
    assert t.num_rows == 12 and ctx.quarantined == 0 and not ctx.damages


def test_json_bad_lines_and_bool_fields():
    line = b'{"saddr": "198.18.0.1", "sport": 22, "classification": "synack", "success": true, "repeat": false, "timestamp_ts": 1795567094, "timestamp_us": 5}'
    data = line + b"\n{broken\n[1,2]\n" + line.replace(b'"sport": 22', b'"sport": "22"') + b"\n" + line + b"\n"
    ctx, t = run("zmap-json", data)
    assert t.num_rows == 2 and set(t["status"].to_pylist()) == {"open"}
    assert [r["reason"] for r in quarantine(ctx)] == ["malformed_record"] * 3


def test_udp_module_null_sport_uses_hint_or_quarantines():
    # Fields as module_udp.c writes them; an icmp-unreach reply has no sport.
    data = (b"saddr,sport,classification,success,udp_pkt_size,timestamp_ts,timestamp_us\n"
            b"198.18.0.3,11211,udp,1,842,1795567094,1\n198.18.0.4,,icmp-unreach,0,,1795567094,2\n")
    ctx, t = run("zmap-csv", data, source="scan.csv")
    assert t["transport"].to_pylist() == ["udp"] and ctx.quarantined == 1
    assert quarantine(ctx)[0]["reason"] == "missing_field"
    _, t = run("zmap-csv", data, source="scan_p11211.csv")
    assert t["port"].to_pylist() == [11211, 11211] and t["status"].to_pylist() == ["open", "closed"]


def test_oversized_line_quarantined(monkeypatch):
    monkeypatch.setattr(zmap_csv, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(zmap_csv, "BLOCK_BYTES", 4000)
    lines = fixture("zmap_p22.csv").split(b"\n")
    huge = b"198.18.0.77," + b"x" * 10_000
    data = b"\n".join(lines[:4] + [huge] + lines[4:])
    ctx, t = run("zmap-csv", data, chunk=512)
    assert t.num_rows == 12 and [r["reason"] for r in quarantine(ctx)] == ["oversized_record"]


@pytest.mark.parametrize("text,expected", [
    ("2026-11-25T00:38:32.735+0000", us(2026, 11, 25, 0, 38, 32, 735000)),
    ("2018-04-06T19:42:32Z", us(2018, 4, 6, 19, 42, 32)),
    ("2018-04-06T21:42:32.123456789+02:00", us(2018, 4, 6, 19, 42, 32, 123456)),
    ("2018-04-06T19:42:32", None), ("2018-13-06T19:42:32Z", None), ("yesterday", None),
])
def test_parse_iso_us(text, expected):
    assert zmap_common.parse_iso_us(text) == expected


HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HOSTILE
@given(st.binary(max_size=600), st.sampled_from(sorted(FMT)), st.integers(1, 64))
def test_arbitrary_bytes_never_raise(data, fmt, chunk):
    run(fmt, data, source="p80.txt", chunk=chunk)


@HOSTILE
@given(st.lists(st.sampled_from(fixture("zmap_p22.csv").split(b"\n")[1:-1]) |
                st.binary(max_size=60), max_size=12), st.integers(1, 64))
def test_mutated_csv_accounting(lines, chunk):
    header = fixture("zmap_p22.csv").split(b"\n")[0]
    ctx, t = run("zmap-csv", b"\n".join([header] + lines) + b"\n", chunk=chunk)
    good = [ln for ln in lines if ln in fixture("zmap_p22.csv").split(b"\n")[1:-1]]
    assert t.num_rows >= len(good)


def test_single_field_header_is_a_headered_bare_list():
    # zmap >= 3 writes a header even for one field (-f saddr); the port must come from outside.
    data = b"saddr\n198.18.0.1\n198.18.0.3\n"
    assert [f.name for f in zmap.FORMATS if f.sniff(data)] == ["zmap-csv"]
    ctx, t = run("zmap-csv", data, source="scan_p443.csv")
    assert t["port"].to_pylist() == [443, 443] and t["source_offset"].to_pylist() == [6, 17]
    assert ctx.facts["open_only_unverified"] and ctx.facts["port_source"] == "filename"


def test_header_without_saddr_quarantines_every_line_and_never_raises():
    from scanners.base import ReadContext
    from scanners.formats import zmap as z
    data = b"foo,bar\n1,2\n1,2,3\nx,2026-11-25T00:38:14.798+0000\n"
    ctx = ReadContext("odd.csv")
    rows = sum(b.num_rows for b in z.FORMATS[1].read(iter([data]), ctx))
    q = ctx.take_quarantine().to_pydict()
    assert rows == 0 and ctx.records_read == ctx.quarantined == 3
    assert set(q["reason"]) == {"missing_field"}
