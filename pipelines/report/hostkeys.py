"""The "Host keys" section of the port-22 pages, from the week's
``aggregates/host_keys.json`` (pipelines/transforms/keys.py). Counts only:
the file cannot hold a key, a factor or an address (``assert_counts_only``
checked it when it was written), and every cell follows the k rule
(pipelines/keys/stats.py ``apply_k``): a cell of fewer than k hosts has no
count, and shows as a dash that the table's note explains."""
from __future__ import annotations

from pipelines.keys.stats import FEWER_THAN_K, apply_k, churn_k
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
    if FEWER_THAN_K in c:
        return (None, None, None)
    return (c.get("keys", 0), c.get("hosts", 0), c.get("hosts_adjusted", 0))


def _fewer(k: int) -> str:
    return f" A dash stands for a count of fewer than {k} hosts, which is not published."


def host_key_tables(doc: dict, week: str) -> tuple[DataTable, ...]:
    k = int(doc.get("k") or 1)
    # Applied again here (idempotent), so a file written before the k rule
    # covered every cell still publishes none under k.
    s = apply_k(doc["stats"], k)
    sizes = tuple((alg, int(bits) if str(bits).isdigit() else bits, *_cell(cell))
                  for alg, by_bits in sorted(s.get("key_bits", {}).items())
                  for bits, cell in sorted(by_bits.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0))
    sizes += tuple((alg, "other sizes", *_cell(cell)) for alg, cell in sorted(s.get("key_bits_other", {}).items()))
    algorithms = DataTable(
        slug="port-22-tcp-host-key-sizes", title="Host key algorithms and sizes", scope=week, rows=sizes,
        columns=(Column("algorithm", "Algorithm"), Column("bits", "Bits", "int", True)) + _COUNT_COLS,
        note=f"{s.get('keys', 0):,} distinct host keys on {s.get('hosts', 0):,} hosts "
             f"({s.get('hosts_adjusted', 0):,} adjusted) that sent one. Sizes seen on fewer than {k} hosts "
             "are summed as \u201cother sizes\u201d." + _fewer(k))
    shared = s.get("shared_keys", {})
    gcd = s.get("batch_gcd", {})
    weak = s.get("weak_keys", {})
    rows = [("Keys shared by two or more hosts", *_cell(shared))]
    rows += [(label, *_cell(weak.get(name))) for name, label in _WEAK if name in weak]
    rows.append(("RSA moduli sharing a prime with another (batch GCD)",
                 *((None, None, None) if FEWER_THAN_K in gcd else
                   (gcd.get("moduli_sharing_prime", 0), gcd.get("hosts", 0), gcd.get("hosts_adjusted", 0)))))
    findings = DataTable(
        slug="port-22-tcp-host-key-findings", title="Shared, weak and factorable host keys", scope=week,
        rows=tuple(rows), columns=(Column("finding", "Finding"),) + _COUNT_COLS,
        note=f"Batch GCD over all {gcd.get('moduli', 0):,} distinct RSA moduli of the week. "
             "Counts only: no key, factor or address is published." + _fewer(k))
    tables = [algorithms, findings]
    churn = churn_k(doc.get("churn"), k)
    if churn:
        few = churn.get(FEWER_THAN_K, {})

        def n(name):
            return None if name in few else churn.get(name, 0)
        tables.append(DataTable(
            slug="port-22-tcp-host-key-churn", title=f"Host key changes since {doc.get('previous_week')}",
            scope=week, columns=(Column("measure", "Measure"), Column("count", "Addresses:ports", "int", True)),
            note=_fewer(k).strip(),
            rows=(("Seen with a key in both weeks", n("ports_in_both")),
                  ("Key changed", n("changed")), ("Key unchanged", n("unchanged")),
                  ("New this week", n("new")), ("Gone since last week", n("gone")))))
    return tuple(tables)
