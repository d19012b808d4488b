"""One demo population aged week by week: deterministic, week 0 unchanged,
hosts churn, versions upgrade and the new release is adopted."""
import collections

from scanners.synth.ageing import NEW_RELEASE
from scanners.synth.population import build_population


def idents(pop):
    return collections.Counter(s.params["ident"] for s in pop.services[(22, "tcp")]
                               if not s.params.get("single_responder"))


def hosts(pop):
    return {s.ip for (port, _), lst in pop.services.items() for s in lst if not s.params.get("single_responder")}


def test_ageing_is_deterministic_and_age_zero_is_the_first_week():
    a, b = build_population(7, hosts=3000, age=2), build_population(7, hosts=3000, age=2)
    assert idents(a) == idents(b) and hosts(a) == hosts(b)
    first = build_population(7, hosts=3000)
    assert idents(build_population(7, hosts=3000, age=0)) == idents(first)


def test_hosts_churn_versions_upgrade_and_the_new_release_spreads():
    weeks = [build_population(7, hosts=3000, age=age) for age in range(4)]
    h0, h3 = hosts(weeks[0]), hosts(weeks[3])
    assert 0.03 < len(h0 - h3) / len(h0) < 0.12     # ~2.5% a week leave...
    assert 0.8 < len(h3) / len(h0) < 1.2            # ...and about as many arrive
    adopted = [idents(w)[NEW_RELEASE] for w in weeks]
    assert adopted[0] == 0 and adopted[1] > 0 and adopted[1] < adopted[2] < adopted[3]
    old = [idents(w)["SSH-2.0-OpenSSH_4.3"] for w in weeks]
    assert old[0] > old[1] > old[2] > old[3]
    tls12 = [sum(s.params.get("version") == "TLS/1.2" for s in w.services[(443, "tcp")]) for w in weeks]
    assert tls12[0] == 0 and tls12[3] > tls12[1] > 0
