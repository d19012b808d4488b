"""Breadth of the rule knowledge: a floor of swept examples per protocol, so
coverage the issue "Know what answers" added cannot silently shrink.
(The sweep itself -- each example hits its own rule -- is test_rules_sweep.py.)"""
from __future__ import annotations

import pytest

from scanners.protocols.rules import load_rules

MINIMUM_EXAMPLES = {
    "ssh": 330,
    "smtp": 200,
    "ftp": 180,
    "mysql": 140,
    "ldap": 70,
}


@pytest.mark.parametrize("protocol,minimum", sorted(MINIMUM_EXAMPLES.items()))
def test_enough_examples_per_protocol(protocol, minimum):
    assert load_rules(protocol).examples >= minimum


@pytest.mark.parametrize("protocol", sorted(MINIMUM_EXAMPLES))
def test_every_rule_names_a_product(protocol):
    for rule in load_rules(protocol).rules:
        assert "product" in rule.fields, rule.id
