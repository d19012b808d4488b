"""The "Host keys" section of the port-22 pages, from the week's
``aggregates/host_keys.json`` (pipelines/transforms/keys.py). Counts only:
the file cannot hold a key, a factor or an address (``assert_counts_only``
checked it when it was written)."""
from __future__ import annotations

from pipelines.report.context import Column, DataTable

SSH_PORT = (22, "tcp")
_COUNT_COLS = (Column("keys", "Keys", "int", True), Column("hosts", "Hosts", "int", True),
               Column("hosts_adjusted", "Adjusted hosts", "int", True))
_WEAK = (("rsa_lt_1024", "RSA keys under 1024 bits"), ("rsa_lt_2048", "RSA keys under 2048 bits"),
         ("dsa", "DSA keys (ssh-dss)"), ("rsa_exponent_lt_65537", "RSA exponent below 65537"),
         ("rsa_exponent_even", "RSA exponent even (invalid)"),
         ("rsa_exponent_not_65537", "RSA exponent other than 65537"))


def _cell(c: dict | None) -> tuple:
    c = c or {}
    return (c.get("keys", 0), c.get("hosts", 0), c.get("hosts_adjusted", 0))


def host_key_tables(doc: dict, week: str) -> tuple[DataTable, ...]:
    s = doc["stats"]
    sizes = tuple((alg, int(bits) if str(bits).isdigit() else bits, *_cell(cell))
                  for alg, by_bits in sorted(s.get("key_bits", {}).items())
                  for bits, cell in sorted(by_bits.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0))
    algorithms = DataTable(
        slug="port-22-tcp-host-key-sizes", title="Host key algorithms and sizes", scope=week, rows=sizes,
        columns=(Column("algorithm", "Algorithm"), Column("bits", "Bits", "int", True)) + _COUNT_COLS,
        note=f"{s.get('keys', 0):,} distinct host keys on {s.get('hosts', 0):,} hosts "
             f"({s.get('hosts_adjusted', 0):,} adjusted) that sent one.")
    shared = s.get("shared_keys", {})
    gcd = s.get("batch_gcd", {})
    weak = s.get("weak_keys", {})
    rows = [("Keys shared by two or more hosts", shared.get("keys", 0), shared.get("hosts", 0),
             shared.get("hosts_adjusted", 0))]
    rows += [(label, *_cell(weak.get(name))) for name, label in _WEAK if name in weak]
    rows.append(("RSA moduli sharing a prime with another (batch GCD)", gcd.get("moduli_sharing_prime", 0),
                 gcd.get("hosts", 0), gcd.get("hosts_adjusted", 0)))
    findings = DataTable(
        slug="port-22-tcp-host-key-findings", title="Shared, weak and factorable host keys", scope=week,
        rows=tuple(rows), columns=(Column("finding", "Finding"),) + _COUNT_COLS,
        note=f"Batch GCD over all {gcd.get('moduli', 0):,} distinct RSA moduli of the week. "
             "Counts only: no key, factor or address is published.")
    tables = [algorithms, findings]
    churn = doc.get("churn")
    if churn:
        tables.append(DataTable(
            slug="port-22-tcp-host-key-churn", title=f"Host key changes since {doc.get('previous_week')}",
            scope=week, columns=(Column("measure", "Measure"), Column("count", "Addresses:ports", "int", True)),
            rows=(("Seen with a key in both weeks", churn.get("ports_in_both", 0)),
                  ("Key changed", churn.get("changed", 0)), ("Key unchanged", churn.get("unchanged", 0)),
                  ("New this week", churn.get("new", 0)), ("Gone since last week", churn.get("gone", 0)))))
    return tuple(tables)
