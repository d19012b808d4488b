"""Every rule example is matched by its own rule -- none shadowed by an earlier
rule -- and yields the fields it declares. Plus the rule loader's validation."""
from __future__ import annotations

import importlib.resources
import re

import pytest

from scanners import protocols
from scanners.protocols.identify import identify_parsed
from scanners.protocols.rules import FIELDS, RuleError, load_rules, parse_rules


def _examples():
    for name in protocols.names():
        for rule in load_rules(name).rules:
            for i, ex in enumerate(rule.examples):
                yield pytest.param(name, rule, ex, id=f"{name}:{rule.id}:{i}")


@pytest.mark.parametrize("name,rule,example", list(_examples()))
def test_example_matches_its_own_rule(name, rule, example):
    banner_type = example.banner_type or protocols.info(name).banner_types[0]
    parsed = protocols.module(name).parse(example.banner, banner_type)
    rules = load_rules(name)
    starts = getattr(parsed, "starts", (0,))
    hit = rules.first_match(parsed.subject, starts)
    assert hit is not None, f"no rule matches subject {parsed.subject!r}"
    assert hit[0].id == rule.id, f"shadowed by earlier rule {hit[0].id!r}"
    # the prefilter changes nothing: the linear scan finds the same rule
    assert rules.first_match_linear(parsed.subject, starts)[0].id == rule.id
    ident = identify_parsed(name, parsed)
    got = {**ident.fields(), "cpe": ident.cpe}
    for field, want in example.expect.items():
        assert got[field] == (want or None), field     # "" in a rule file = absent


def test_enough_examples_and_no_orphan_rule_files():
    total = sum(load_rules(n).examples for n in protocols.names())
    assert total >= 150
    assert load_rules("http").examples >= 550
    folder = importlib.resources.files("scanners.protocols").joinpath("rules")
    files = {p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")}
    assert files and files <= set(protocols.names())


def test_identity_values_only_from_vocabularies():
    for name in protocols.names():
        for rule in load_rules(name).rules:
            assert set(rule.fields) <= set(FIELDS)


GOOD = """
[[rule]]
id = "x"
match = '^X/(?P<version>[\\d.]+)'
product = "X"
version = "{version}"
examples = [{ banner = "X/1.0", expect = { version = "1.0" } }]
"""


def test_good_rule_file_parses_and_templates_fill():
    rules = parse_rules("t", GOOD)
    ident = rules.identify("X/1.0 extra")
    assert (ident.rule_id, ident.product, ident.version) == ("x", "X", "1.0")
    assert rules.identify("Y/1.0").rule_id is None


def test_search_rules_find_a_token_anywhere_and_cpe_is_built():
    text = GOOD.replace("match = '^X/", "search = true\ncpe = \"a:xvendor:x\"\nmatch = 'X/", 1)
    rules = parse_rules("t", text)
    ident = rules.identify("Frontend/2 X/1.0 (Unix)")
    assert (ident.rule_id, ident.version) == ("x", "1.0")
    assert ident.cpe == "cpe:2.3:a:xvendor:x:1.0:*:*:*:*:*:*:*"
    # An anchored rule does not look past the start.
    assert parse_rules("t", GOOD).identify("Frontend/2 X/1.0").rule_id is None


def test_cpe_version_is_escaped_and_absent_version_is_any():
    text = GOOD.replace('product = "X"', 'product = "X"\ncpe = "a:xvendor:x"', 1)
    text = text.replace("[\\d.]+)", "[\\d.:]*)", 1)
    rules = parse_rules("t", text)
    assert rules.identify("X/1:2").cpe == "cpe:2.3:a:xvendor:x:1\\:2:*:*:*:*:*:*:*"
    assert rules.identify("X/").cpe == "cpe:2.3:a:xvendor:x:*:*:*:*:*:*:*:*"


@pytest.mark.parametrize("change,message", [
    (('product = "X"', 'product = "X"\ncpe = "OpenBSD OpenSSH"'), "part:vendor:product"),
    (('product = "X"', 'product = "X"\nsearch = "yes"'), "true or false"),
    (('expect = { version = "1.0" }', 'expect = { version = "1.0", cpe = "cpe:2.3:a:v:x:1.0:*:*:*:*:*:*:*" }'),
     "rule has none"),
    (("match = '^X/", "match = 'X/"), "starting with '^'"),
    (("[\\d.]+)'", "[\\d.]+'"), "bad regex"),
    (('product = "X"', 'product = "X"\ncolour = "red"'), "unknown keys"),
    (('version = "{version}"', 'version = "{release}"'), "not in match"),
    (('expect = { version = "1.0" }', 'expect = { product = "X" }'), "pin templated"),
    (('examples = [{ banner = "X/1.0", expect = { version = "1.0" } }]', 'examples = []'), "at least one example"),
    (('product = "X"', 'product = "X"\nos_family = "Plan9"'), "not in"),
    (('product = "X"', 'product = "X"\ndevice_type = "toaster"'), "not in"),
    (('version = "{version}"', 'version = "{version!r}"'), "plain {group}"),
])
def test_malformed_rule_files_are_rejected(change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rules("t", GOOD.replace(old, new, 1))


def test_duplicate_ids_and_bad_toml_are_rejected():
    with pytest.raises(RuleError, match="duplicate"):
        parse_rules("t", GOOD + GOOD)
    with pytest.raises(RuleError):
        parse_rules("t", "[[rule]\n")
    with pytest.raises(RuleError, match="top-level"):
        parse_rules("t", 'protocol = "t"\n' + GOOD)
