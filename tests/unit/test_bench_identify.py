"""The identification benchmark measures what it says: the cloned rules of
the x5 rule set never change an answer, and the Zipf mix is reproducible."""
from pipelines import bench_identify
from scanners import protocols
from scanners.protocols.rules import RuleSet, load_rules


def _big(name: str, factor: int = 5) -> RuleSet:
    rules = []
    for r in load_rules(name).rules:
        rules.append(r)
        rules.extend(bench_identify._clones(r, factor - 1))
    return RuleSet(name, tuple(rules))


def test_clones_never_change_the_first_match():
    for name in ("http", "ssh", "smtp"):
        base, big = load_rules(name), _big(name)
        assert len(big.rules) == 5 * len(base.rules)
        mod = protocols.module(name)
        checked = 0
        for rule in base.rules:
            for ex in rule.examples:
                subject = mod.parse(ex.banner, ex.banner_type or protocols.info(name).banner_types[0]).subject
                a, b = base.first_match(subject), big.first_match(subject)
                assert (a and a[0].id) == (b and b[0].id), subject
                lin = big.first_match_linear(subject)
                assert (b and b[0].id) == (lin and lin[0].id), subject
                checked += 1
        assert checked > 50


def test_zipf_mix_is_reproducible_and_skewed():
    p1, _t1, b1 = bench_identify.zipf_rows(5000, 500, seed=3)
    p2, _t2, b2 = bench_identify.zipf_rows(5000, 500, seed=3)
    assert p1.equals(p2) and b1.equals(b2)
    texts = [m[0][1] for m in b1.to_pylist()]
    distinct = len(set(zip(p1.to_pylist(), texts)))
    assert 20 < distinct < 500                 # Zipf: many repeats, not all distinct


def test_rule_scaling_reports_both_engines():
    out = bench_identify.rule_scaling(("ssh",), n_distinct=1000)
    sc = out["ssh"]
    assert sc["rules_x"] == 5 * sc["rules"] and sc["subjects"] >= 3
    for key in ("us_per_subject", "us_per_subject_x", "linear_us_per_subject", "linear_us_per_subject_x"):
        assert sc[key] > 0
