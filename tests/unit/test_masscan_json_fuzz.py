"""masscan ndjson / -oJ readers under arbitrary and mutated input (property
tests): nothing raises, the accounting holds, and pyarrow's fast path agrees
with the line-by-line one. Helpers and real fixtures: test_masscan_json.py."""
from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from scanners.formats import masscan_json as mj
from tests.unit.test_masscan_json import REAL, oracle, read


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), oj=st.booleans(), chunk=st.integers(1, 64))
def test_arbitrary_bytes_never_raise(data, oj, chunk):
    rows, ctx = read(data, fmt=mj.FORMATS[1 if oj else 0], chunk=chunk)
    assert all(0 <= r["port"] <= 65535 for r in rows)


_SEED_FILES = [(REAL / n).read_bytes() for n in ("masscan.ndjson", "masscan.json")]


@settings(max_examples=120, deadline=None)
@given(which=st.integers(0, 1), seed=st.integers(0, 2**32),
       edits=st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=0, max_size=6)), max_size=6))
def test_mutated_real_files_keep_the_accounting(which, seed, edits):
    data = bytearray(_SEED_FILES[which])
    rnd = random.Random(seed)
    for pos, ins in edits:  # replace a few bytes at random places
        i = int(pos * len(data))
        data[i:i + rnd.randint(0, 4)] = ins
    rows, ctx = read(bytes(data), fmt=mj.FORMATS[which], chunk=rnd.randint(1, 5000))
    intact = len(oracle(_SEED_FILES[which]))
    assert len(rows) + ctx.quarantined >= intact - len(edits) * 2


# Values pyarrow accepts for the explicit schema (most draws), plus any JSON value (damage).
_STR = st.one_of(st.none(), st.text(max_size=6),
                 st.sampled_from(["open", "closed", "syn-ack", "1795566993", "-5", "caf\u00c3\u00a9", "\u2603"]))
_INT = st.one_of(st.none(), st.integers(-2**40, 2**40), st.sampled_from([2**63 - 1, -1, 70000, 2**31]))
_ANY = st.one_of(_STR, _INT, st.booleans(), st.floats(allow_nan=False), st.just({}), st.just([1]))


@st.composite
def _records(draw, oj: bool):
    rec = {"ip": draw(st.sampled_from(["1.2.3.4", "::1", ""])), "timestamp": draw(_STR),
           "port": draw(st.one_of(st.integers(0, 65535), _INT)), "proto": draw(_STR)}
    inner = {"status": draw(_STR), "reason": draw(_STR), "ttl": draw(_INT)}
    svc = {"name": draw(_STR), "banner": draw(_STR)}
    inner = {k: v for k, v in inner.items() if draw(st.booleans())}
    if oj:
        port = {k: rec.pop(k) for k in ("port", "proto")} | inner
        if draw(st.booleans()):
            port["service"] = svc
        rec["ports"] = [port]
    else:
        rec["rec_type"] = draw(st.sampled_from(["status", "banner", "other", None]))
        rec["data"] = inner | {"service_name": svc["name"], "banner": svc["banner"]}
    if draw(st.integers(0, 4)) == 0:  # sometimes a field of the wrong JSON type
        rec[draw(st.sampled_from(sorted(rec)))] = draw(_ANY)
    return json.dumps(rec, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=120, deadline=None)
@given(oj=st.booleans(), data=st.data())
def test_fast_and_slow_paths_agree_on_every_line_pyarrow_accepts(oj, data):
    lines = data.draw(st.lists(_records(oj), min_size=1, max_size=4))
    blob = b"\n".join(lines) + b"\n"
    fmt = mj.FORMATS[1 if oj else 0]
    fast_rows, fast_ctx = read(blob, fmt=fmt)
    real_fast = mj._fast
    mj._fast = lambda *a, **k: None
    try:
        slow_rows, slow_ctx = read(blob, fmt=fmt)
    finally:
        mj._fast = real_fast
    assert fast_rows == slow_rows
    assert fast_ctx.q == slow_ctx.q
