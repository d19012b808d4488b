"""Breadth of the rule knowledge: a floor of swept examples per protocol, so
coverage the issue "Know what answers" added cannot silently shrink.
(The sweep itself -- each example hits its own rule -- is test_rules_sweep.py.)"""
from __future__ import annotations

import re

import pytest

from scanners import protocols
from scanners.protocols import os_releases
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


# What a template may publish: versions are version-shaped (never a host name
# or free text), and a release templated from a subject's os= line is always
# a value of the release table.
VERSION_SHAPE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}")


def _identities(protocol):
    for rule in load_rules(protocol).rules:
        for example in rule.examples:
            parsed = protocols.module(protocol).parse(example.banner, example.banner_type)
            yield rule, load_rules(protocol).identify(parsed.subject)


@pytest.mark.parametrize("protocol", sorted(MINIMUM_EXAMPLES))
def test_templated_values_are_version_shaped_or_table_values(protocol):
    vocab = os_releases.table().vocabulary()
    for rule, ident in _identities(protocol):
        if "{" in rule.fields.get("version", ""):
            assert ident.version is None or VERSION_SHAPE.fullmatch(ident.version), (rule.id, ident.version)
        if rule.fields.get("os_release") == "{release}":
            assert ident.os_release in vocab, (rule.id, ident.os_release)
