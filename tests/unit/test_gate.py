"""The one gate (scanners/protocols/gate.py): shapes per field, the rules'
own examples pass it unchanged, hostile values never do."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from scanners import protocols
from scanners.protocols.gate import FIELDS, REDACTED, GateError, public, version_shaped, vocabulary
from scanners.protocols.identify import OUT_FIELDS, describe, identify_parsed
from scanners.protocols.leakscan import find_identifiers
from scanners.protocols.rules import load_rules


def _examples():
    for name in protocols.names():
        for rule in load_rules(name).rules:
            for i, ex in enumerate(rule.examples):
                yield pytest.param(name, ex, id=f"{name}:{rule.id}:{i}")


@pytest.mark.parametrize("name,example", list(_examples()))
def test_rule_examples_pass_the_gate_unchanged(name, example):
    """Every value a rule's own example yields is public as it is: the gate
    refuses nothing the knowledge base means to publish."""
    banner_type = example.banner_type or protocols.info(name).banner_types[0]
    parsed = protocols.module(name).parse(example.banner, banner_type)
    ident = identify_parsed(name, parsed)
    row = describe(None, None, banner_type, example.banner)
    got = dict(zip(OUT_FIELDS, row[2:]))
    assert got == {f: getattr(ident, f) for f in OUT_FIELDS}
    assert REDACTED not in row


@pytest.mark.parametrize("value", ["5.9p1", "2.4.41", "1.3.5e", "6.0.3790.4675", "9.4.z-SNAPSHOT", "8.1",
                                   "10.0.38", "2019.78", "7.4p1-10+deb9u7", "<=9.6", "14-17"])
def test_versions_kept(value):
    assert public("version", value) == value


@pytest.mark.parametrize("value", ["bastion.corp.example", "10.66.23.1", "app.corp.example", "10-66-23-1",
                                   "0x0a140a28", "16909070", "2001:db8::40", "CN=dc01,OU=Servers",
                                   "a b", "x" * 60, "corp-web01.internal", "1.2.3.4-r1", "v\x1b[31m1"])
def test_versions_refused(value):
    assert public("version", value) == REDACTED


def test_names_only_from_the_vocabulary():
    assert public("product", "OpenSSH") == "OpenSSH"
    assert public("product", "TL-ER604W") == "TL-ER604W"          # pptp's listed model
    assert public("product", "corp-vpn01") == REDACTED              # same template, free text
    assert public("os_release", "Ubuntu 12.04") == "Ubuntu 12.04"
    assert public("os_release", "AIX 7.1") == "AIX 7.1"            # template around a version
    assert public("os_release", "AIX 10.66.23.1") == REDACTED
    assert public("device_type", "router") == "router"
    assert public("device_type", "corp-router") == REDACTED
    assert public("product", "OpenSSH", vocabulary={"Dropbear"}) == REDACTED
    assert "OpenSSH" in vocabulary("product")


def test_other_fields():
    assert public("cpe", "cpe:2.3:a:openbsd:openssh:5.9p1:*:*:*:*:*:*:*") == "cpe:2.3:a:openbsd:openssh:5.9p1:*:*:*:*:*:*:*"
    assert public("cpe", "cpe:2.3:a:openbsd:openssh:10.66.23.1:*:*:*:*:*:*:*") == REDACTED
    assert public("cpe", "cpe:2.3:a:corp:web01:1.0:*:*:*:*:*:*:*") == REDACTED
    assert public("country", "DE") == "DE" and public("country", "D E") == REDACTED
    assert public("as_org", "Amazon.com, Inc.") == "Amazon.com, Inc."
    assert public("as_org", "Org 10.1.2.3") == REDACTED
    assert public("banner", "SSH-2.0-OpenSSH_7.4") == "SSH-2.0-OpenSSH_7.4"
    assert public("banner", "220 mx1.corp.example ESMTP") == "220 <host> ESMTP"
    assert public("title", "Welcome to corp-web01") == "Welcome to <host>"
    assert public("product", None) is None and public("product", "") == ""
    with pytest.raises(GateError):
        public("hostname", "x")


def test_templated_fields_of_issue_14_never_publish_the_banner_text():
    """The measured leaks: templates filled from the banner."""
    cases = [("ssh", "SSH-2.0-OpenSSH_bastion.corp.example"), ("ssh", "SSH-2.0-Cisco-10.66.23.1"),
             ("smtp", "220 mx ESMTP IIS SMTP 10.66.7.1 ready"), ("http.server", "Jetty(app.corp.example)"),
             ("pptp", '{"ControlMessageType":2,"ProtocolVersion":256,"ResultCode":16,"MaxChannels":1,'
                      '"FirmwareRevision":1,"Hostname":"TP-LINK_SMB_corp-vpn01","Vendor":"TP-LINK"}'),
             ("ssh", "SSH-2.0-OpenSSH_7.4\x1b[2J\x07")]
    for banner_type, banner in cases:
        row = describe(None, None, banner_type, banner)
        for value in row[1:]:
            if value:
                assert not find_identifiers(value), (banner, value)
                for bad in ("corp", "bastion", "10.66", "\x1b", "\x07"):
                    assert bad not in value, (banner, value)


_OCTET = st.integers(0, 255)


@st.composite
def address_spelling(draw):
    o = [draw(st.integers(1, 255))] + [draw(_OCTET) for _ in range(3)]
    n = int.from_bytes(bytes(o), "big")
    sep = draw(st.sampled_from([".", "-", "_"]))
    forms = [sep.join(map(str, o)), ".".join(f"{b:04d}" for b in o), f"0x{n:08x}",
             ".".join(f"0x{b:02x}" for b in o), ".".join(map(str, o)).translate(
                 {ord(c): ord(c) + 0xFEE0 for c in "0123456789"})]
    spelling = draw(st.sampled_from(forms))
    glue = draw(st.sampled_from(["", "ip", "host-", "ec2-", "dynamic-ip-", "v", "x"]))
    return glue + spelling


@settings(max_examples=300, deadline=None)
@given(address_spelling(), st.sampled_from(FIELDS[:5]), st.sampled_from(["", " tail", ".21", "-01"]))
def test_no_address_spelling_passes_any_field(spelling, field, tail):
    out = public(field, spelling + tail)
    assert out is not None and not find_identifiers(out)
    if field == "version":
        assert out == REDACTED or version_shaped(out)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_gate_is_idempotent_and_total(text):
    for field in FIELDS:
        once = public(field, text)
        assert public(field, once) == once
