"""pipelines/aggregate.py with hand-made clean tables: raw vs adjusted,
additivity of bucket partials, k-suppression and deterministic bytes."""
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from pipelines import aggregate as agg
from pipelines.schema import CLEAN_SCHEMA

WEEK = "2013-W37"


def row(ip, port=22, status="open", banner=None, group=None, **kw):
    base = {name: None for name in CLEAN_SCHEMA.names}
    base.update(week=WEEK, ip=ip, ip_version=4, port=port, transport="tcp", status=status, records=1,
                banner_public=banner, responder_group=group, many_ports=False, host_open_ports=1)
    base.update(kw)
    return base


def clean(rows) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)


def lookup(table, dim, port=22, transport="tcp"):
    return {r["value"]: (r["hosts_raw"], r["hosts_adjusted"]) for r in table.to_pylist()
            if r["dimension"] == dim and r["port"] == port and r["transport"] == transport}


def test_raw_counts_every_address_adjusted_counts_a_group_once():
    rows = [row(f"10.0.0.{i}", banner="SSH-2.0-X", group="rg-a") for i in range(40)]
    rows += [row(f"10.0.1.{i}", banner="SSH-2.0-X") for i in range(3)]
    rows += [row(f"10.0.2.{i}", banner="SSH-2.0-Y") for i in range(2)]
    rows += [row("10.0.3.1", status="closed", banner="SSH-2.0-Z"), row("10.0.3.2", status="no_response")]
    out = agg.partial_aggregates(clean(rows), WEEK)
    assert out.schema.equals(agg.AGG_SCHEMA)
    assert lookup(out, "total") == {"open": (45, 1 + 5)}
    # closed / no_response rows count nowhere, not even their banner
    assert lookup(out, "banner") == {"SSH-2.0-X": (43, 1 + 3), "SSH-2.0-Y": (2, 2)}


def test_two_groups_with_one_value_count_twice_adjusted():
    rows = [row(f"10.0.0.{i}", banner="B", group="rg-a") for i in range(5)]
    rows += [row(f"10.0.9.{i}", banner="B", group="rg-b") for i in range(7)]
    out = agg.partial_aggregates(clean(rows), WEEK)
    assert lookup(out, "banner") == {"B": (12, 2)}


def test_dimension_values():
    rows = [
        row("1.1.1.1", banner="SSH-2.0-OpenSSH_5.3", product="OpenSSH", version="5.3",
            os_family="Linux", os_release="Debian 6", country="US", asn=7018, as_org="AT&T",
            device_type="router", many_ports=True),
        row("1.1.1.2", banner="", product=None, version="1.0", os_family="FreeBSD",
            country="", asn=64500, as_org=None),
    ]
    out = agg.partial_aggregates(clean(rows), WEEK)
    assert lookup(out, "banner") == {"SSH-2.0-OpenSSH_5.3": (1, 1)}      # "" names nothing
    assert lookup(out, "version") == {"OpenSSH 5.3": (1, 1)}             # no product: no version
    assert lookup(out, "os") == {"Debian 6": (1, 1), "FreeBSD": (1, 1)}  # release, else family
    assert lookup(out, "asn") == {"AS7018 AT&T": (1, 1), "AS64500": (1, 1)}
    assert lookup(out, "country") == {"US": (1, 1)}
    assert lookup(out, "device_type") == {"router": (1, 1)}
    assert lookup(out, "many_ports") == {"flagged": (1, 1)}
    assert set(out.column("dimension").to_pylist()) <= set(agg.DIMENSIONS)


def test_only_the_public_banner_reaches_the_aggregates():
    secret = "SSH-2.0-OpenSSH_5.3 host-secret.example.org 192.0.2.77"
    r = row("192.0.2.77", banner="SSH-2.0-OpenSSH_5.3 <host> <ip>", banners=[("ssh", secret)])
    out = agg.partial_aggregates(clean([r]), WEEK)
    text = json.dumps(out.to_pylist())
    assert "host-secret" not in text and "192.0.2.77" not in text
    assert lookup(out, "banner") == {"SSH-2.0-OpenSSH_5.3 <host> <ip>": (1, 1)}


def test_missing_columns_and_bad_k_raise():
    with pytest.raises(agg.AggregateError, match="responder_group"):
        agg.partial_aggregates(clean([row("1.1.1.1")]).drop_columns(["responder_group"]), WEEK)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(agg.AggregateError):
            agg.suppress(agg.empty(), bad)


def test_empty_inputs():
    assert agg.partial_aggregates(clean([]), WEEK).num_rows == 0
    assert agg.combine([]).schema.equals(agg.AGG_SCHEMA)
    assert agg.suppress(agg.empty(), 10).num_rows == 0


# -- additivity: buckets keyed by network keep a responder group together ------

@st.composite
def week_rows(draw):
    rows = []
    for net in range(draw(st.integers(1, 6))):
        for host in range(draw(st.integers(1, 12))):
            grouped = draw(st.booleans())
            rows.append(row(f"10.0.{net}.{host}", port=draw(st.sampled_from([22, 80])),
                            status=draw(st.sampled_from(["open", "open", "closed"])),
                            banner=draw(st.sampled_from(["A", "B", "C", None])),
                            group=f"rg-{net}" if grouped else None,
                            country=draw(st.sampled_from(["US", "DE", None]))))
    return rows


@settings(max_examples=60, deadline=None)
@given(week_rows(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_partials_of_network_buckets_add_up_to_the_whole(rows, buckets, rnd):
    whole = agg.partial_aggregates(clean(rows), WEEK)
    by_bucket: dict = {}
    for r in rows:
        net = int(r["ip"].split(".")[2])
        by_bucket.setdefault(net % buckets, []).append(r)
    parts = [agg.partial_aggregates(clean(v), WEEK) for v in by_bucket.values()]
    rnd.shuffle(parts)
    assert agg.combine(parts).equals(whole)



def test_many_partials_are_summed_in_chunks_to_the_same_total():
    rows = [row(f"10.0.{net}.{host}", port=(22, 80)[host % 2], status="open",
                banner=("A", "B", None)[(net + host) % 3], group=f"rg-{net}" if net % 4 == 0 else None,
                country=("US", "DE")[net % 2])
            for net in range(3 * agg.COMBINE_CHUNK + 5) for host in range(3)]
    whole = agg.partial_aggregates(clean(rows), WEEK)
    parts = [agg.partial_aggregates(clean([r for r in rows if r["ip"].split(".")[2] == str(net)]), WEEK)
             for net in range(3 * agg.COMBINE_CHUNK + 5)]
    assert len(parts) > 3 * agg.COMBINE_CHUNK          # several chunks and a remainder
    assert agg.combine(parts).equals(whole)
    assert agg.combine(reversed(parts)).equals(whole)

# -- suppression ---------------------------------------------------------------

def agg_table(rows) -> pa.Table:
    return agg.sort(pa.Table.from_pylist(
        [dict(zip(agg.AGG_SCHEMA.names, (WEEK,) + r)) for r in rows], schema=agg.AGG_SCHEMA))


def test_suppress_folds_rare_values_into_other_per_dimension():
    t = agg_table([
        (22, "tcp", "total", "open", 30, 25),
        (22, "tcp", "banner", "common", 20, 15),
        (22, "tcp", "banner", "rare-1", 3, 3),
        (22, "tcp", "banner", "rare-2", 6, 5),
        (22, "tcp", "country", "US", 9, 9),
        (22, "tcp", "many_ports", "flagged", 2, 2),
        (80, "tcp", "banner", "rare-1", 12, 12),
    ])
    s = agg.suppress(t, k=10)
    assert lookup(s, "banner") == {"common": (20, 15), "other": (9, 8)}
    assert lookup(s, "country") == {"other": (9, 9)}
    assert lookup(s, "total") == {"open": (30, 25)}           # never folded
    assert lookup(s, "many_ports") == {"flagged": (2, 2)}     # never folded
    assert lookup(s, "banner", port=80) == {"rare-1": (12, 12)}  # per port, not global
    assert "rare-1" not in lookup(s, "banner") and "rare-2" not in lookup(s, "banner")


def test_suppress_is_idempotent_monotone_and_keeps_sums():
    t = agg_table([(22, "tcp", "banner", f"v{i}", i, i) for i in range(1, 30)]
                  + [(22, "tcp", "banner", "other", 4, 4)])   # a real value spelled "other" joins
    s10 = agg.suppress(t, 10)
    assert agg.suppress(s10, 10).equals(s10)
    assert agg.suppress(s10, 20).equals(agg.suppress(t, 20))
    assert lookup(s10, "banner")["other"] == (sum(range(1, 10)) + 4,) * 2
    for s in (s10, agg.suppress(t, 20), agg.suppress(t, 1)):
        assert sum(s.column("hosts_raw").to_pylist()) == sum(t.column("hosts_raw").to_pylist())
    assert all(raw >= 20 for v, (raw, _) in lookup(agg.suppress(t, 20), "banner").items() if v != "other")


# -- determinism ---------------------------------------------------------------

def test_same_rows_in_any_order_give_the_same_bytes():
    rows = [row(f"10.0.{i % 7}.{i}", port=[22, 80, 443][i % 3], banner=f"b{i % 11}",
                group=f"rg-{i % 7}" if i % 5 == 0 else None, country=["US", "DE", "JP"][i % 3])
            for i in range(300)]
    outputs = set()
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        # the same rows split differently between two partials (whole networks each)
        a = [r for r in shuffled if int(r["ip"].split(".")[2]) % 2 == seed % 2]
        b = [r for r in shuffled if r not in a]
        t = agg.suppress(agg.combine([agg.partial_aggregates(clean(b), WEEK),
                                      agg.partial_aggregates(clean(a), WEEK)]), 10)
        files = agg.serialise(t)
        outputs.add(tuple(files[n] for n in agg.AGG_FILES))
    assert len(outputs) == 1
    parquet, csv, js = outputs.pop()
    back = pq.read_table(io.BytesIO(parquet))
    assert back.num_rows == len(json.loads(js)) == csv.count(b"\n") - 1
    assert csv.splitlines()[0] == b'"week","port","transport","dimension","value","hosts_raw","hosts_adjusted"'
    # sorted: keys ascending, biggest first within a dimension
    recs = back.to_pylist()
    keys = [(r["week"], r["port"], r["transport"], r["dimension"], -r["hosts_raw"], r["value"]) for r in recs]
    assert keys == sorted(keys)


def test_csv_defuses_spreadsheet_formulas_but_json_keeps_the_value():
    import csv as _csv
    import io as _io
    import json as _json

    import pyarrow as _pa

    from pipelines.aggregate import to_csv_bytes, to_json_bytes
    from pipelines.schema import AGG_SCHEMA
    t = _pa.table({"week": ["2013-W37"] * 3, "port": _pa.array([80] * 3, _pa.uint16()),
                   "transport": ["tcp"] * 3, "dimension": ["banner"] * 3,
                   "value": ['=HYPERLINK("http://x")', "-ERR", "nginx"],
                   "hosts_raw": [10, 11, 12], "hosts_adjusted": [10, 11, 12]}, schema=AGG_SCHEMA)
    rows = list(_csv.DictReader(_io.StringIO(to_csv_bytes(t).decode())))
    assert [r["value"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'-ERR", "nginx"]
    assert '=HYPERLINK("http://x")' in {r["value"] for r in _json.loads(to_json_bytes(t))}


# -- knowledge coverage, CPE and release age (issue 16) -----------------------------
def test_identification_cpe_version_age_and_eol_dimensions():
    week = "2024-W23"                                     # Monday 2024-06-03
    cpe = "cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"
    rows = [row(f"10.0.0.{i}", port=80, banner="nginx/1.22.1", product="nginx", version="1.22.1", cpe=cpe)
            for i in range(3)]
    rows += [row("10.0.1.1", port=80, banner="nginx", product="nginx", cpe="cpe:2.3:a:f5:nginx:*:*:*:*:*:*:*:*"),
             row("10.0.1.2", port=80, banner="Weird/1.0"), row("10.0.1.3", port=80, banner=None),
             row("10.0.1.4", port=80, banner="Apache/2.4.10 (Debian)", product="Apache httpd", version="2.4.10")]
    rows = [dict(r, week=week) for r in rows]
    out = agg.partial_aggregates(clean(rows), week)
    assert lookup(out, "identification", port=80) == {"identified": (5, 5), "unidentified": (1, 1),
                                                       "no_banner": (1, 1)}
    assert sum(v[0] for v in lookup(out, "identification", port=80).values()) == lookup(out, "total", port=80)["open"][0]
    assert lookup(out, "cpe", port=80) == {cpe: (3, 3), "cpe:2.3:a:f5:nginx:*:*:*:*:*:*:*:*": (1, 1)}
    # 1.22.1 (2022-10-19) is 1-3 years old and its branch ended 2023-04-11; a
    # product without version and a version not in the table are unknown
    assert lookup(out, "version_age", port=80) == {"1-3y": (3, 3), "5-10y": (1, 1), "unknown": (1, 1)}
    assert lookup(out, "eol", port=80) == {"end_of_life": (3, 3), "unknown": (2, 2)}
    # fixed vocabularies are never folded into "other", whatever k
    folded = agg.suppress(agg.combine([out]), k=10)
    assert lookup(folded, "identification", port=80)["unidentified"] == (1, 1)
    assert lookup(folded, "version_age", port=80)["5-10y"] == (1, 1)
    assert set(lookup(folded, "cpe", port=80)) == {"other"}
    summary = agg.identification_summary(folded)
    assert summary == {"80/tcp": {"open": 7, "identified": 5, "unidentified": 1, "no_banner": 1}}


def test_clean_table_without_cpe_column_and_bad_week_still_aggregate():
    t = clean([row("1.1.1.1", banner="X", product="OpenSSH", version="7.4p1")]).drop_columns(["cpe"])
    out = agg.partial_aggregates(t, "not-a-week")
    assert lookup(out, "cpe") == {}
    assert lookup(out, "version_age") == {"unknown": (1, 1)}      # no scan date, no age


def test_manifest_identification_shares():
    from pipelines.manifest import identification_shares
    got = identification_shares({"80/tcp": {"open": 8, "identified": 6, "unidentified": 1, "no_banner": 1},
                                 "22/tcp": {"open": 0}})
    assert got["80/tcp"]["unidentified_share"] == 0.25
    assert got["22/tcp"] == {"open": 0, "identified": 0, "unidentified": 0, "no_banner": 0,
                             "unidentified_share": None}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.integers(0, 65535), st.integers(0, 2**40)), max_size=8))
def test_json_bytes_are_the_stdlib_encoders_byte_for_byte(rows):
    # the column-wise writer against json.dumps(indent=1) itself: any text
    # (quotes, backslashes, control, non-ASCII and astral characters) and
    # the empty table
    import json as _json
    import pyarrow as _pa
    from pipelines.aggregate import to_json_bytes
    from pipelines.schema import AGG_SCHEMA
    values = [v for v, _, _ in rows]
    t = _pa.table({"week": ["2013-W37"] * len(rows), "port": _pa.array([p for _, p, _ in rows], _pa.uint16()),
                   "transport": ["tcp"] * len(rows), "dimension": ["banner"] * len(rows),
                   "value": _pa.array(values, _pa.string()), "hosts_raw": [h for *_, h in rows],
                   "hosts_adjusted": [h // 2 for *_, h in rows]}, schema=AGG_SCHEMA)
    want = (_json.dumps(t.to_pylist(), sort_keys=True, indent=1, ensure_ascii=True) + "\n").encode()
    assert to_json_bytes(t) == want
