"""The finding at the top of the site: week facts from clean rows, coverage
per port and job, the noise floor of a change."""
import pyarrow as pa

from pipelines.report.facts import week_facts
from pipelines.report.finding import beyond_noise
from pipelines.report.portcov import port_coverage


def clean(rows):
    cols = ("ip", "port", "transport", "status", "many_ports", "source_file")
    return pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)},
                    schema=pa.schema([("ip", pa.string()), ("port", pa.uint16()), ("transport", pa.string()),
                                      ("status", pa.string()), ("many_ports", pa.bool_()),
                                      ("source_file", pa.string())]))


def test_week_facts_count_addresses_services_and_many_port_hosts_apart():
    rows = [("192.0.2.1", 22, "tcp", "open", False, "a-shard1of2.gz"),
            ("192.0.2.1", 80, "tcp", "open", False, "w.json"),
            ("192.0.2.2", 22, "tcp", "open", None, "a-shard2of2.gz"),
            ("192.0.2.3", 22, "tcp", "closed", False, "a-shard2of2.gz"),
            ("192.0.2.9", 22, "tcp", "open", True, "a-shard1of2.gz")]
    rows += [("192.0.2.9", p, "tcp", "open", True, "sweep") for p in range(1, 40)]
    f = week_facts(clean(rows))
    assert (f["addresses"], f["services"], f["ports"]) == (2, 3, 2)
    assert (f["many_port_hosts"], f["many_port_services"]) == (1, 40)
    assert f["by_file"] == {"a-shard1of2.gz": {"22/tcp": 1}, "a-shard2of2.gz": {"22/tcp": 1}, "w.json": {"80/tcp": 1}}
    assert "192.0.2" not in repr(f)


def test_a_port_takes_the_coverage_of_the_job_that_found_most_of_its_hosts():
    files = [{"file": "a-shard1of3.gz", "tool": "masscan", "read": 100, "damage": []},
             {"file": "a-shard2of3.gz", "tool": "masscan", "read": 50,
              "damage": [{"kind": "compression_truncated"}]},
             {"file": "a-shard3of3.gz", "tool": "masscan", "read": 100, "damage": []},
             {"file": "z.jsonl", "tool": "zgrab2", "read": 10, "damage": []}]
    facts = {"by_file": {"a-shard1of3.gz": {"22/tcp": 90}, "a-shard2of3.gz": {"22/tcp": 45},
                         "a-shard3of3.gz": {"22/tcp": 90, "80/tcp": 5}, "z.jsonl": {"22/tcp": 8}}}
    cov = port_coverage({"files": files}, facts)
    p22 = cov["22/tcp"]
    assert p22.fraction == round((1 + 0.5 + 1) / 3, 4) and p22.at_least == round(2 / 3, 4) and not p22.exact
    assert [j.label for j in p22.jobs] == ["masscan, files 1\u20133 (3 shards)", "zgrab2, file 4"]
    assert [j.hosts for j in p22.jobs] == [225, 8] and p22.jobs[0].damaged == 1
    assert cov["80/tcp"].fraction == p22.fraction
    assert not p22.comparable(cov["80/tcp"].__class__(1.0, 1.0, True, ()))
    assert p22.comparable(p22)
    assert port_coverage({"files": files}, None) == {}


def test_noise_floor():
    assert not beyond_noise(1000, 1040, 10)     # 40 < 2*sqrt(2040) = 90
    assert beyond_noise(1000, 1100, 10)
    assert not beyond_noise(2, 9, 10)           # fewer than k hosts of change
    assert beyond_noise(0, 30, 10)
