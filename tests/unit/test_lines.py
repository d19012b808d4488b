"""scanners.lines: line blocks with byte offsets, the oversized-line limit,
cut-off last lines, JSON Lines and ISO times, against a plain-Python oracle."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from pipelines.schema import DamageKind
from scanners import base, lines
from scanners.base import ReadContext


def oracle(data: bytes, max_record: int, skip_empty: bool = False):
    """(lines, oversized offsets, damage offsets, partial) by bytes.find, line by
    line; ``skip_empty``: as iter_lines, which hands on no empty line."""
    out, big, damage, partial, pos = [], [], [], None, 0
    while (nl := data.find(b"\n", pos)) >= 0:
        if nl - pos > max_record:
            big.append(pos)
        elif nl > pos or not skip_empty:
            out.append((pos, data[pos:nl]))
        pos = nl + 1
    if pos < len(data):
        if len(data) - pos > max_record:
            big.append(pos)
            damage.append(pos)
        else:
            partial = (pos, data[pos:])
    return out, big, damage, partial


def cut(data: bytes, points) -> list[bytes]:
    points = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def quarantined(ctx: ReadContext) -> list[tuple[int, str]]:
    q = ctx.take_quarantine()
    return [] if q is None else [(r["source_offset"], r["reason"]) for r in q.to_pylist()]


def run_lines(chunks, max_record: int, block_bytes: int):
    ctx, partial = ReadContext(source="t"), []
    got = list(lines.iter_lines(iter(chunks), ctx, lambda o, d: partial.append((o, d)),
                                max_record=max_record, block_bytes=block_bytes))
    return got, quarantined(ctx), [d.offset for d in ctx.damages], (partial or [None])[0], ctx


def test_offsets_are_exact():
    data = b"a\r\n\nbbb\nlonger line\ncc"
    got, q, damage, partial, ctx = run_lines([data[:3], data[3:9], data[9:]], max_record=100, block_bytes=4)
    assert got == [(0, b"a\r"), (4, b"bbb"), (8, b"longer line")]   # the empty line is skipped
    assert partial == (20, b"cc") and q == [] and damage == [] and ctx.records_read == 0
    assert list(lines.iter_lines([data], ReadContext(source="t"), max_record=100))[-1] == (20, b"cc")


def test_line_spans():
    for data, spans in [(b"", []), (b"ab", [(0, 2)]), (b"\n", [(0, 0)]), (b"a\n\nbc\nd", [(0, 1), (2, 2), (3, 5), (6, 7)])]:
        starts, ends = lines.line_spans(data)
        assert list(zip(starts.tolist(), ends.tolist())) == spans


_PIECES = st.sampled_from([b"\n", b"a", b"bc", b"\r", b"x" * 7, b"y" * 30, b"\n\n"])


@settings(max_examples=300, deadline=None)
@given(data=st.lists(_PIECES, max_size=40).map(b"".join), points=st.lists(st.integers(0, 10_000), max_size=12),
       max_record=st.integers(0, 40), block_bytes=st.integers(1, 64))
def test_chunking_and_block_size_do_not_change_lines(data, points, max_record, block_bytes):
    want_lines, want_big, want_damage, want_partial = oracle(data, max_record, skip_empty=True)
    got, q, damage, partial, ctx = run_lines(cut(data, points), max_record, block_bytes)
    assert got == want_lines and partial == want_partial
    assert q == [(o, "oversized_record") for o in want_big] and damage == want_damage
    assert ctx.records_read == len(want_big)
    assert ctx.facts["record_bytes"] == len(data)    # no damage: every byte is in a line handed on


@settings(max_examples=200, deadline=None)
@given(data=st.lists(_PIECES, max_size=40).map(b"".join), points=st.lists(st.integers(0, 10_000), max_size=12),
       max_record=st.integers(0, 40), block_bytes=st.integers(1, 64))
def test_blocks_are_whole_lines_at_their_offsets(data, points, max_record, block_bytes):
    told: list[int] = []
    ctx = ReadContext(source="t")
    blocks = list(lines.iter_blocks(iter(cut(data, points)), ctx, max_record=max_record,
                                    block_bytes=block_bytes, on_oversized=told.append))
    seen = []
    for b in blocks:
        assert data[b.offset:b.offset + len(b.data)] == b.data and b.data
        assert b.data.endswith(b"\n") == b.complete
        assert b.complete or b is blocks[-1]
        starts, ends = lines.line_spans(b.data)
        assert starts.tolist() == b.starts.tolist() and ends.tolist() == b.ends.tolist()
        seen += [(b.offset + s, b.data[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]
    want_lines, want_big, _, want_partial = oracle(data, max_record)
    assert seen == want_lines + ([want_partial] if want_partial else [])
    assert told == want_big == [o for o, _ in quarantined(ctx)]


def test_oversized_lines_are_quarantined_once_and_neighbours_kept():
    ok = b"ok\n"
    data = ok + b"A" * 50 + b"\n" + ok + b"B" * 50 + b"\n" + ok + b"C" * 50
    for chunk in (1, 7, len(data)):
        got, q, damage, partial, ctx = run_lines(cut(data, range(0, len(data), chunk)), 10, 16)
        assert [o for o, _ in got] == [0, 54, 108] and all(line == b"ok" for _, line in got)
        assert q == [(3, "oversized_record"), (57, "oversized_record"), (111, "oversized_record")]
        assert damage == [111] and partial is None     # the file ends inside the last one
        assert ctx.damages[0].kind == DamageKind.PARTIAL_LAST_RECORD


def test_an_endless_line_is_dropped_as_it_streams():
    """Memory stays bounded: the reader gives up on a line once it is known to be
    too long, long before its end, and skips the rest unread."""
    ctx = ReadContext(source="t")
    asked = []

    def chunks():
        for i in range(1000):                 # 64 MB without a newline, then one line
            asked.append(ctx.quarantined)
            yield b"z" * 65536
        yield b"\nlast\n"

    got = list(lines.iter_lines(chunks(), ctx, max_record=1 << 20, block_bytes=1 << 20))
    assert got == [(1000 * 65536 + 1, b"last")] and quarantined(ctx) == [(0, "oversized_record")]
    assert asked.index(1) <= 2 * (1 << 20) // 65536 + 1


def test_base_lines_with_offsets_uses_the_shared_splitter(monkeypatch):
    monkeypatch.setattr(base, "MAX_RECORD_BYTES", 3)
    ctx = ReadContext(source="t")
    assert list(base.lines_with_offsets([b"ab\nlong\ncd"], ctx)) == [(0, b"ab"), (8, b"cd")]
    assert quarantined(ctx) == [(3, "oversized_record")]


def test_truncated_ignores_blank_tails():
    ctx = ReadContext(source="t")
    lines.truncated(ctx, 5, b" \r ")
    assert ctx.records_read == 0 and not ctx.damages
    lines.truncated(ctx, 9, b"{\"ip\": ")
    assert quarantined(ctx) == [(9, "truncated_record")]
    assert [(d.kind, d.offset) for d in ctx.damages] == [(DamageKind.PARTIAL_LAST_RECORD, 9)]


def test_json_objects():
    data = b'{"a": 1}\n\n  \n[1]\n{bad\n{"b": 2}\n{"c": 3}'
    ctx = ReadContext(source="t")
    got = list(lines.json_objects([data], ctx, max_record=100))
    assert got == [(0, b'{"a": 1}', {"a": 1}), (22, b'{"b": 2}', {"b": 2}), (31, b'{"c": 3}', {"c": 3})]
    q = ctx.take_quarantine().to_pylist()
    assert [(r["source_offset"], r["detail"]) for r in q] == [
        (13, "line is not a JSON object"), (17, "line is not valid JSON")]
    ctx = ReadContext(source="t")
    assert list(lines.json_objects([data[:-1]], ctx, max_record=100))[-1][0] == 22   # '{"c": 3' is cut off
    assert quarantined(ctx)[-1] == (31, "truncated_record") and len(ctx.damages) == 1


def _us(*args, tz=dt.timezone.utc) -> int:
    return round(dt.datetime(*args, tzinfo=tz).timestamp() * 1_000_000)


@pytest.mark.parametrize("text,expected", [
    ("2018-04-06 19:42:32,5z", _us(2018, 4, 6, 19, 42, 32, 500000)),
    ("1969-12-31T23:59:59.999999Z", -1),
    (" 2026-11-25T00:38:14.798-0530 ", _us(2026, 11, 25, 6, 8, 14, 798000)),
    ("2026-11-25T00:38:14+24:00", None), ("2026-02-30T00:00:00Z", None), ("2026-11-25T00:38:14.Z", None),
])
def test_parse_iso_us(text, expected):
    assert lines.parse_iso_us(text) == expected
