"""The demo week through the whole pipeline, checked against the generator's
independent truth file (it counts what it wrote, not what we read)."""
import bz2
import collections
import gzip
import os
import random
import shutil

import pyarrow.compute as pc
import zstandard

from pipelines.config import RunConfig
from pipelines.layout import port_folder
from pipelines.schema import PROVENANCE_COLUMNS
from pipelines.summary import clean_dataset
from pipelines.week import process_week
from tests.e2e.conftest import DEMO_WEEK


def table(out):
    return clean_dataset(str(out), DEMO_WEEK).to_table()


def test_accounting_identity_and_truth(demo_run):
    out, m, truth = demo_run
    t = m["totals"]
    assert t["identity_holds"]
    assert t["read"] == t["accepted"] + t["quarantined"] + t["excluded"] + t["merged"]
    for f in m["files"]:
        assert f["read"] == f["accepted"] + f["quarantined"] + f["excluded"] + f["merged"], f["file"]
    # one clean row per distinct observation the generator wrote (minus what truncation destroyed)
    assert t["accepted"] == truth["total_observations"]
    rows = table(out)
    assert rows.num_rows == t["accepted"]
    got = collections.Counter(f"{r['port']}/{r['transport']}" for r in
                              rows.filter(pc.equal(rows.column("status"), "open"))
                                  .select(["port", "transport"]).to_pylist())
    assert dict(got) == truth["open_observations"]
    # exactly the files damaged on purpose are marked damaged
    expected = {n for n, f in truth["files"].items() if f["expected_damage"]}
    assert {f["file"] for f in m["files"] if f["damaged"]} == expected
    assert m["files_damaged"] == len(expected) == 2


def test_truncated_gzip_keeps_every_complete_record(demo_run):
    out, m, truth = demo_run
    files = {f["file"]: f for f in m["files"]}
    for name, tf in truth["files"].items():
        if "compression_truncated" in tf["expected_damage"] or tf["records_lost_to_truncation"]:
            got = files[name]
            assert got["read"] - got["quarantined"] == tf["records_complete"], name
            assert got["quarantine_reasons"] == {"truncated_record": tf["partial_records"]} or tf["partial_records"] == 0


def test_single_responder_network_and_many_port_hosts(demo_run):
    out, m, truth = demo_run
    rows = table(out)
    net = truth["single_responder"]["network"].rsplit(".", 1)[0] + "."
    sub = rows.filter(pc.starts_with(rows.column("ip"), net))
    groups = collections.defaultdict(set)
    for r in sub.select(["port", "responder_group"]).to_pylist():
        groups[r["port"]].add(r["responder_group"])
    for port in truth["single_responder"]["ports"]:
        assert len(groups[port]) == 1 and None not in groups[port], port
    grouped = rows.filter(pc.is_valid(rows.column("responder_group")))
    # raw vs adjusted: the forwarded /24 counts 256 (or 232) times raw, once adjusted
    assert grouped.num_rows == sum(truth["single_responder"]["open_observations"].values())
    many = set(rows.filter(rows.column("many_ports")).column("ip").to_pylist())
    assert many == set(truth["many_port_hosts"])


def test_every_row_has_geo_columns_or_explicit_unknown(demo_run):
    out, m, truth = demo_run
    rows = table(out)
    assert rows.column("country").null_count < rows.num_rows * 0.02   # routed public space: nearly all known
    v6 = rows.filter(pc.equal(rows.column("ip_version"), 6))
    assert v6.num_rows == truth["ipv6_observations"] and v6.column("country").null_count < v6.num_rows
    assert set(m["run"]["geoip"]) == {"country", "asn"}
    assert m["run"]["geoip"]["country"]["database_type"] == "DBIP-Country-Lite"


def _reshard(src, dst, seed):
    """Same records, different files: every intact masscan ndjson file's lines
    pooled, shuffled and split into 5 files of mixed compression; the rest copied."""
    os.makedirs(dst)
    pooled = []
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if name.endswith(".ndjson.gz") and "shard2of3" not in name:   # the damaged one stays as it is
            pooled += gzip.decompress(open(path, "rb").read()).splitlines(keepends=True)
        else:
            shutil.copy(path, os.path.join(dst, "copied-" + name))
    random.Random(seed).shuffle(pooled)
    comp = [lambda b: gzip.compress(b, mtime=0), bz2.compress,
            lambda b: zstandard.ZstdCompressor().compress(b), lambda b: b, lambda b: gzip.compress(b, mtime=0)]
    for i in range(5):
        part = b"".join(pooled[i::5])
        with open(os.path.join(dst, f"resharded-{i}.bin"), "wb") as f:
            f.write(comp[i](part))


def test_reordering_and_resharding_give_identical_parquet(demo_raw, demo_run, tmp_path):
    raw, truth = demo_raw
    out_a, m_a, _ = demo_run
    raw_b = tmp_path / "raw"
    _reshard(os.path.join(raw, DEMO_WEEK), raw_b / DEMO_WEEK, seed=7)
    m_b = process_week(RunConfig(week=DEMO_WEEK, raw=str(raw_b), out=str(tmp_path / "out"),
                                 buckets=7).validate(), ["--runner=FnApiRunner"])
    a, b = table(out_a), table(tmp_path / "out")
    content = [c for c in a.column_names if c not in PROVENANCE_COLUMNS]
    order = [("ip", "ascending"), ("port", "ascending"), ("transport", "ascending")]
    assert a.select(content).sort_by(order).equals(b.select(content).sort_by(order))
    for k in ("read", "accepted", "quarantined", "excluded", "merged"):
        assert m_a["totals"][k] == m_b["totals"][k], k


def test_host_key_statistics_match_the_keys_the_generator_made(demo_run):
    import json as _json
    out, m, truth = demo_run
    path = os.path.join(str(out), f"week={DEMO_WEEK}", "aggregates", "host_keys.json")
    text = open(path).read()
    doc = _json.loads(text)
    s, k = doc["stats"], doc["k"]
    tk = truth["ssh_keys"]
    assert s["hosts"] == tk["hosts_with_keys"] and s["keys"] == tk["distinct_keys"]
    # every published cell follows the k rule (issue 14): a count of fewer
    # than k hosts is withheld as fewer_than_k, a count of k or more is exact
    if tk["shared_key_hosts"] >= k:
        assert s["shared_keys"]["keys"] == len(tk["shared_key_groups"])
        assert s["shared_keys"]["hosts"] == tk["shared_key_hosts"]
    else:
        assert s["shared_keys"].get("fewer_than_k") == 1 and "hosts" not in s["shared_keys"]
    in_group = [g for g in tk["shared_key_groups"] if g["hosts"][0].startswith("92.3.79.")]
    others = [g for g in tk["shared_key_groups"] if g not in in_group]
    assert len(in_group) == 1 and len(others) == 1
    if tk["shared_prime_host_count"] >= k:
        assert s["batch_gcd"]["moduli_sharing_prime"] == 2 and s["batch_gcd"]["hosts"] == tk["shared_prime_host_count"]
    else:
        assert s["batch_gcd"].get("fewer_than_k") == 1 and "moduli_sharing_prime" not in s["batch_gcd"]
    by_alg = {f"ssh-{alg}-{bits}": cell["hosts"] for alg, b in s["key_bits"].items() for bits, cell in b.items()}
    assert by_alg == {name: n for name, n in tk["by_algorithm"].items() if n >= k}
    assert all(n >= k for n in by_alg.values())
    # counts only: no fingerprint, modulus or address of the week is in the file
    for g in tk["shared_key_groups"]:
        assert g["fingerprint"] not in text and not any(h in text for h in g["hosts"])


def test_no_host_name_address_or_email_survives_in_the_public_banners(demo_run):
    out, m, truth = demo_run
    public = table(out).column("banner_public")
    text = "\n".join(v for v in public.to_pylist() if v).lower()
    assert text   # the column is filled
    leaks = [h for h in truth["banner_hostnames"] + truth["banner_emails"] + truth["banner_ips"]
             if h.lower() in text]
    assert not leaks, leaks[:5]
    assert truth["scanner_ip"] not in text


def test_shuffle_modes_and_merge_passes_publish_the_same_week(demo_raw, demo_run, tmp_path):
    """The file shuffle (default), the runner's own shuffle, and buckets merged
    in several passes: the same rows, aggregates and accounting."""
    raw, _ = demo_raw
    out_a, m_a, _ = demo_run
    out_b, out_c = tmp_path / "beam", tmp_path / "passes"
    m_b = process_week(RunConfig(week=DEMO_WEEK, raw=str(raw), out=str(out_b), shuffle="beam").validate(),
                       ["--runner=FnApiRunner"])
    m_c = process_week(RunConfig(week=DEMO_WEEK, raw=str(raw), out=str(out_c), buckets=2,
                                 merge_rows=1000).validate(), ["--runner=FnApiRunner"])
    parts = os.listdir(os.path.join(out_c, f"week={DEMO_WEEK}", "clean", port_folder(22)))
    assert any(p.startswith("part-0000-") for p in parts), parts   # really merged in passes
    order = [("ip", "ascending"), ("port", "ascending"), ("transport", "ascending")]
    a = table(out_a).sort_by(order)
    assert a.equals(table(out_b).sort_by(order)) and a.equals(table(out_c).sort_by(order))
    assert m_a == m_b
    assert m_a["totals"] == m_c["totals"] and m_a["files"] == m_c["files"]
    for name in ("aggregates.json", "aggregates.csv", "host_keys.json"):
        got = [open(os.path.join(o, f"week={DEMO_WEEK}", "aggregates", name), "rb").read()
               for o in (out_a, out_b, out_c)]
        assert got[0] == got[1] == got[2], name
    # the shuffle files are scratch: nothing of them is left once the week is published
    for o in (out_a, out_b, out_c):
        assert not os.path.exists(os.path.join(o, ".staging")), os.listdir(os.path.join(o, ".staging"))
