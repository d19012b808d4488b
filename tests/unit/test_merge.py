
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.merge import merge_bucket
from pipelines.normalize import normalize_batch
from pipelines.schema import PROVENANCE_COLUMNS
from tests.helpers import raw_batch, lab_limits

T = 1_379_000_000


def work(rows, **kw):
    return pa.Table.from_batches([normalize_batch(raw_batch(rows, **kw), lab_limits()).work])


def test_masscan_http_port_becomes_one_row_with_its_banners():
    rows = [
        dict(ip="1.1.1.1", port=80, transport="tcp", status="open", reason="syn-ack", ttl=54, timestamp=T),
        dict(ip="1.1.1.1", port=80, transport="tcp", service="http.server", banner=b"nginx", timestamp=T + 5),
        dict(ip="1.1.1.1", port=80, transport="tcp", service="title", banner=b"caf\xc3\xa9", timestamp=T + 5),
        dict(ip="1.1.1.1", port=80, transport="tcp", service="http", banner=b"HTTP/1.1 200 OK\r\n\xff", timestamp=T + 6),
        # retransmitted status record in another file
        dict(ip="1.1.1.1", port=80, transport="tcp", status="open", reason="syn-ack", ttl=54, timestamp=T + 1,
             source_file="shard2"),
        dict(ip="1.1.1.1", port=22, transport="tcp", status="closed", reason="rst-ack", ttl=54, timestamp=T),
    ]
    res = merge_bucket(work(rows), "2013-W37")
    c = res.clean.to_pylist()
    assert len(c) == 2
    by_port = {r["port"]: r for r in c}
    http = by_port[80]
    assert http["status"] == "open" and http["reason"] == "syn-ack" and http["ttl"] == 54
    assert dict(http["banners"]) == {"http": "HTTP/1.1 200 OK\r\n\\xff", "http.server": "nginx", "title": "café"}
    assert http["banner_fallback"] == ["http"]
    assert http["records"] == 5
    assert http["first_seen"].timestamp() == T and http["last_seen"].timestamp() == T + 6
    assert http["source_file"] == "t.ndjson" and http["source_offset"] == 0
    assert by_port[22]["status"] == "closed" and by_port[22]["records"] == 1
    assert res.accepted == {"t.ndjson": 2}
    assert res.merged == {"t.ndjson": 3, "shard2": 1}


def test_open_beats_closed_and_banner_only_means_open():
    rows = [
        dict(ip="2.2.2.2", port=11211, transport="udp", status="closed", reason="none", timestamp=T),
        dict(ip="2.2.2.2", port=11211, transport="udp", status="open", reason="none", ttl=0, timestamp=T + 3),
        dict(ip="3.3.3.3", port=21, transport="tcp", service="ftp", banner=b"220 hi", timestamp=T),
        # memcached UDP: the second datagram is an empty banner, the first one wins
        dict(ip="2.2.2.2", port=11211, transport="udp", service="memcached", banner=b"", timestamp=T),
        dict(ip="2.2.2.2", port=11211, transport="udp", service="memcached", banner=b"version=1.6 ", timestamp=T + 1),
    ]
    c = {r["ip"]: r for r in merge_bucket(work(rows), "w").clean.to_pylist()}
    assert c["2.2.2.2"]["status"] == "open" and c["2.2.2.2"]["reason"] == "none"
    assert dict(c["2.2.2.2"]["banners"]) == {"memcached": "version=1.6 "}
    assert c["3.3.3.3"]["status"] == "open" and c["3.3.3.3"]["reason"] is None


_rec = st.fixed_dictionaries({
    "ip": st.sampled_from(["1.1.1.1", "1.1.1.2", "2001:db8::1"]),
    "port": st.sampled_from([22, 80]),
    "transport": st.sampled_from(["tcp", "udp"]),
    "kind": st.sampled_from(["open", "closed", "banner"]),
    "service": st.sampled_from(["ssh", "title"]),
    "banner": st.binary(max_size=4),
    "timestamp": st.integers(T, T + 5),
    "ttl": st.integers(0, 3),
})


@settings(max_examples=150, deadline=None)
@given(st.lists(_rec, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_result_is_independent_of_order_and_split(recs, rnd):
    rows = []
    for i, r in enumerate(recs):
        row = dict(ip=r["ip"], port=r["port"], transport=r["transport"], timestamp=r["timestamp"])
        if r["kind"] == "banner":
            row.update(service=r["service"], banner=r["banner"])
        else:
            row.update(status=r["kind"], reason="x", ttl=r["ttl"])
        rows.append(row)
    a = merge_bucket(work(rows), "w")
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    cut = rnd.randint(0, len(shuffled))
    # the same records, reordered and split across two differently named files
    t = pa.concat_tables([work(shuffled[:cut], source="x1"), work(shuffled[cut:], source="x2")])
    b = merge_bucket(t, "w")
    content = [c for c in a.clean.column_names if c not in PROVENANCE_COLUMNS]
    assert a.clean.select(content).equals(b.clean.select(content))
    # accounting: every record is accepted or merged, exactly once
    assert sum(a.accepted.values()) == a.clean.num_rows
    assert sum(a.accepted.values()) + sum(a.merged.values()) == len(rows)
    assert sum(b.accepted.values()) + sum(b.merged.values()) == len(rows)


def test_host_key_comes_from_the_earliest_record_that_has_one():
    def ssh(ts, fp, src):
        return dict(ip="5.5.5.5", port=22, transport="tcp", status="open", timestamp=ts, source_file=src,
                    key_algorithm="ssh-rsa", key_fingerprint_sha256=fp, key_bits=2048,
                    rsa_modulus=bytes.fromhex(fp[:8]), rsa_exponent=65537)
    rows = [dict(ip="5.5.5.5", port=22, transport="tcp", status="open", timestamp=T - 5),   # masscan, no key
            ssh(T + 2, "bb" * 32, "z2"), ssh(T, "aa" * 32, "z1"),
            dict(ip="6.6.6.6", port=22, transport="tcp", status="open", timestamp=T)]
    for order in (rows, rows[::-1]):
        c = {r["ip"]: r for r in merge_bucket(work(order), "w").clean.to_pylist()}
        assert c["5.5.5.5"]["key_fingerprint_sha256"] == "aa" * 32
        assert c["5.5.5.5"]["rsa_modulus"] == bytes.fromhex("aaaaaaaa") and c["5.5.5.5"]["key_bits"] == 2048
        assert c["6.6.6.6"]["key_fingerprint_sha256"] is None and c["6.6.6.6"]["rsa_exponent"] is None


def test_port_source_is_the_best_evidence_among_merged_records():
    rows = [
        # zgrab2 assumed 21; masscan saw 21 in its own record: the port is confirmed.
        dict(ip="4.4.4.4", port=21, transport="tcp", status="open", timestamp=T, port_source="assumed",
             source_file="zgrab2.jsonl"),
        dict(ip="4.4.4.4", port=21, transport="tcp", status="open", reason="syn-ack", timestamp=T + 1),
        # only zgrab2's default, and a sidecar-given port with an assumed banner row
        dict(ip="4.4.4.5", port=21, transport="tcp", status="open", timestamp=T, port_source="assumed"),
        dict(ip="4.4.4.6", port=2121, transport="tcp", status="open", timestamp=T, port_source="sidecar"),
        dict(ip="4.4.4.6", port=2121, transport="tcp", service="ftp", banner=b"220", timestamp=T,
             port_source="assumed"),
        dict(ip="4.4.4.7", port=22, transport="tcp", status="open", timestamp=T),
    ]
    got = {r["ip"]: r["port_source"] for r in merge_bucket(work(rows), "2013-W37").clean.to_pylist()}
    assert got == {"4.4.4.4": "record", "4.4.4.5": "assumed", "4.4.4.6": "sidecar", "4.4.4.7": "record"}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "ip": st.sampled_from(["1.1.1.1", "1.1.1.2", "9.9.9.9", "2001:db8::1"]),
    "port": st.sampled_from([22, 80, 5000, 8080]),
    "transport": st.sampled_from(["tcp", "udp"]),
    "timestamp": st.integers(T, T + 5)}), min_size=1, max_size=30))
def test_partition_ports_order_rows_by_file_then_address(recs):
    # The writer's order made by the merge: the same rows, stably sorted by
    # file (partition port, then port-other), so the writer has nothing to copy.
    import numpy as np
    from pipelines.layout import file_keys, write_clean
    rows = [dict(r, status="open", reason="syn-ack", ttl=1) for r in recs]
    plain = merge_bucket(work(rows), "w").clean
    filed = merge_bucket(work(rows), "w", partition_ports=(80, 22)).clean
    key = file_keys(plain.column("port").to_numpy(), (22, 80))
    assert filed.equals(plain.take(np.argsort(key, kind="stable")))
    assert list(np.unique(key, return_index=True)[0]) == sorted(set(key.tolist()))
    got = file_keys(filed.column("port").to_numpy(), (22, 80))
    assert (got[1:] >= got[:-1]).all()
    # and the written files are the same bytes from either order (the
    # enrichment's columns as nulls: they ride along unchanged)
    import tempfile, os
    from pipelines.schema import CLEAN_SCHEMA
    for f in CLEAN_SCHEMA:
        if f.name not in plain.column_names:
            plain = plain.append_column(f, pa.nulls(plain.num_rows, f.type))
            filed = filed.append_column(f, pa.nulls(filed.num_rows, f.type))
    with tempfile.TemporaryDirectory() as d:
        a, ca = write_clean(os.path.join(d, "a"), plain, "0000", (22, 80))
        b, cb = write_clean(os.path.join(d, "b"), filed, "0000", (22, 80))
        assert ca == cb and a.equals(b)
        for port in ca:
            name = f"clean/port-{port}/part-0000.parquet"
            with open(os.path.join(d, "a", name), "rb") as fa, open(os.path.join(d, "b", name), "rb") as fb:
                assert fa.read() == fb.read()
