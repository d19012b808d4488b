"""The literal prefilter (scanners/protocols/rule_index.py) never changes an
answer: indexed first match == linear first match, on every rule example,
on mutations of them and on random and hostile subjects (Hypothesis)."""
from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from scanners import protocols
from scanners.protocols.rule_index import RuleIndex
from scanners.protocols.rules import parse_rules, load_rules


def _id(hit):
    return hit[0].id if hit else None


def _subjects():
    for name in protocols.names():
        mod = protocols.module(name)
        for rule in load_rules(name).rules:
            for ex in rule.examples:
                bt = ex.banner_type or protocols.info(name).banner_types[0]
                parsed = mod.parse(ex.banner, bt)
                yield name, parsed.subject, getattr(parsed, "starts", (0,))


SUBJECTS = list(_subjects())
ALL_TEXT = [s for _, s, _ in SUBJECTS]


def test_indexed_equals_linear_on_every_example_and_its_variants():
    checked = 0
    for name, subject, starts in SUBJECTS:
        rules = load_rules(name)
        variants = {subject, subject.upper(), subject.lower(), subject[1:], subject[:-1],
                    " " + subject, subject + " x", subject.swapcase()}
        for v in variants:
            for st_ in (starts, (0,)):
                st_ = tuple(p for p in st_ if p <= len(v))
                assert _id(rules.first_match(v, st_)) == _id(rules.first_match_linear(v, st_)), (name, v)
                checked += 1
    assert checked > 1000


def test_most_rules_are_keyed_by_a_literal():
    # The prefilter only helps if rules have literals: the packaged rules do.
    for name in ("http", "ssh"):
        idx = load_rules(name).index
        assert idx.keyed >= 0.9 * len(load_rules(name).rules)


HOSTILE = st.sampled_from(["\u0130", "\u0131", "\u212a", "\u017f", "K", "k", "S", "s", "I", "i",
                           "\n", "\r", "\x00", "(", ")", "/", " ", "\\", "ß", "ﬀ"])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(protocols.names()), st.sampled_from(ALL_TEXT),
       st.lists(st.tuples(st.integers(0, 80), HOSTILE | st.text(max_size=3)), max_size=4),
       st.text(max_size=40))
def test_indexed_equals_linear_on_hostile_subjects(name, base, edits, noise):
    rules = load_rules(name)
    s = base
    for pos, ins in edits:
        s = s[:pos] + ins + s[pos:]
    for subject in (s, noise, noise + base, base.lower(), base.upper()):
        starts = tuple(sorted({0, *(m.start() for m in re.finditer(r"(?<= )\S", subject))}))[:8]
        assert _id(rules.first_match(subject, starts)) == _id(rules.first_match_linear(subject, starts))


RULE = """
[[rule]]
id = "r{i}"
match = '{pattern}'
product = "P"
examples = [{{ banner = "x", expect = {{ product = "P" }} }}]
"""

PATTERNS = [r"^Apache/", r"(?i)^apache", r"(?i)^kiss", r"^(?:Jetty)\(", r"^(?:a|b)c", r"^x+y",
            r"(?i)^SSH-", r"(?m)^Line", r"(?i)^\u0130x", r"(?s)^a.b", r"^", r"^(?i:miNi)x",
            r"^Microsoft-IIS/(?P<v>[\d.]+)$", r"^[Ss]quid", r"(?i)^s\u017f"]
SEARCH = [r"Powered by (?P<x>\w+)", r"(?i)upnp/1\.0", r"k", r"(?i)kelvin", r"\d"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([(p, False) for p in PATTERNS] + [(p, True) for p in SEARCH]),
                min_size=1, max_size=8),
       st.text(alphabet=st.sampled_from(list("ApacheJtyMIkKsSiIx/(\u0130\u0131\u212a\u017f lnbLKELVIN"
                                              "Powered by UPnP/1.0 \n")), max_size=20))
def test_synthetic_rule_sets_agree_with_linear_scan(chosen, subject):
    text = ""
    for i, (pattern, search) in enumerate(chosen):
        text += RULE.format(i=i, pattern=pattern.replace("\\", "\\\\").replace("'", "")).replace(
            "match = ", ("search = true\n" if search else "") + "match = ", 1).replace("\\\\", "\\")
    rules = parse_rules("t", text)
    for starts in ((0,), (0, 1, 3)):
        starts = tuple(p for p in starts if p <= len(subject))
        assert _id(rules.first_match(subject, starts)) == _id(rules.first_match_linear(subject, starts))


def test_index_reads_literals_from_the_pattern():
    rules = parse_rules("t", "".join(RULE.format(i=i, pattern=p) for i, p in enumerate(
        [r"^Apache/", r"(?i)^kiss", r"(?m)^Line", r"^[Ss]quid"])))
    idx: RuleIndex = rules.index
    assert idx.exact[4]["Apac"] == [0]
    assert 2 in idx.always                    # MULTILINE: ^ is not the start
    assert ("quid", False) in idx.needs       # no prefix literal: a required one
    assert 1 in idx.always                    # k, i, s have non-ASCII case partners
    assert idx.candidates("Apache/2") == [0, 1, 2]
    assert idx.candidates("Microsoft") == [1, 2]
    assert idx.candidates("squid") == idx.candidates("Squid") == [1, 2, 3]
