"""The package revision -> OS release table and its use by the SSH module."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanners.protocols import os_releases, ssh
from scanners.protocols.os_releases import ReleaseTableError, parse_table
from scanners.protocols.rules import load_rules

VOCAB = os_releases.table().vocabulary()


@pytest.mark.parametrize("revision,release", [
    ("10+deb9u7", "Debian 9"),
    ("0+deb11u1", "Debian 11"),
    ("2~bpo11+1", "Debian 11"),
    ("4~bpo70+1", "Debian 7"),
    ("6+squeeze5", "Debian 6"),
    ("9etch3", "Debian 4"),
    ("8.sarge.6", "Debian 3.1"),
    ("0ubuntu0.20.04.1", "Ubuntu 20.04"),
    ("1:10.6.12+maria~ubu2004", "Ubuntu 20.04"),
    ("1:10.6.12+maria~deb11", "Debian 11"),
    ("1:10.4.13+maria~buster", "Debian 10"),
    ("1:10.5.8+maria~focal", "Ubuntu 20.04"),
    ("10+deb99u1", None),                 # no Debian 99: nothing, not "Debian 99"
    ("0ubuntu0.99.10.1", None),
    ("1:10.6.12+maria~sid", None),
    ("4ubuntu0.5", None),                 # needs the package and upstream version
])
def test_revision_markers(revision, release):
    assert os_releases.revision_release(revision) == release


@pytest.mark.parametrize("tag,upstream,revision,release", [
    ("Ubuntu", "8.2p1", "4ubuntu0.5", "Ubuntu 20.04"),
    ("Ubuntu", "8.2p1", "4", "Ubuntu 20.04"),
    ("Debian", "5.9p1", "5ubuntu1.4", "Ubuntu 12.04"),
    ("Debian", "7.4p1", "10", "Debian 9"),
    ("Ubuntu", "7.4p1", "10", "Ubuntu 17.04"),        # same revision, other distributor
    ("Raspbian", "7.4p1", "10", "Raspbian 9"),
    ("Raspbian", "7.9p1", "10+deb10u2+rpt1", "Raspbian 10"),
    ("Raspbian", "8.4p1", "5+rpt1", "Raspbian 11"),
    ("Ubuntu", "8.2p1", "3ubuntu0.5", None),           # no such pocket
    ("Debian", "9.2p1", "2ubuntu1", None),
])
def test_openssh_pockets(tag, upstream, revision, release):
    assert os_releases.package_release("openssh", tag, upstream, revision) == release


def test_freebsd_and_rhel():
    assert os_releases.freebsd_release("20180909") == "FreeBSD 11.3-12.1"
    assert os_releases.freebsd_release("20991231") is None
    assert os_releases.rhel_openssh_release("7.4") == "RHEL 7"
    assert os_releases.rhel_openssh_release("9.2") is None


@pytest.mark.parametrize("text,message", [
    ('[[oops]]\nx = 1\n', "unknown tables"),
    ('[[debian]]\nnumber = "9"\n', "lacks"),
    ('[[package]]\npackage = "x"\ntag = ["Debian"]\nupstream = "1"\nrevision = "1"\nrelease = "Debian 9"\n',
     "no [[debian]]"),
    ('[[debian]]\nnumber = "9"\ncodename = "stretch"\nrelease = "Debian 9"\n'
     '[[package]]\npackage = "x"\ntag = ["Debian"]\nupstream = "1"\nrevision = "("\nrelease = "Debian 9"\n',
     "bad revision regex"),
    ("[[debian]\n", "os_releases.toml"),
])
def test_malformed_table_is_rejected(text, message):
    with pytest.raises(ReleaseTableError, match=re.escape(message)):
        parse_table(text)


def test_ssh_subject_carries_the_release_line():
    got = ssh.parse("SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7\r\n")
    assert got.subject == "OpenSSH_7.4p1 Debian-10+deb9u7\nos=Debian 9"
    assert (got.product_token, got.software_version, got.os_release) == ("OpenSSH", "7.4p1", "Debian 9")
    assert load_rules("ssh").identify(got.subject).os_release == "Debian 9"
    bsd = ssh.parse("SSH-2.0-OpenSSH_7.8 FreeBSD-20180909")
    assert load_rules("ssh").identify(bsd.subject).os_release == "FreeBSD 11.3-12.1"
    assert ssh.parse("SSH-2.0-dropbear_2019.78").subject == "dropbear_2019.78"
    assert ssh.split_software("ROSSSH") == ("ROSSSH", None)
    assert ssh.split_software("mod_sftp/0.9.9") == ("mod_sftp", "0.9.9")


def test_a_banner_cannot_forge_the_release_line():
    # A second line is not part of the identification line; a comment is one line.
    got = ssh.parse("SSH-2.0-OpenSSH_9.2p1 x\nos=Evil 1\r\n")
    assert "Evil" not in got.subject
    ident = load_rules("ssh").identify(got.subject)
    assert ident.os_release is None and ident.version == "9.2p1"
    forged = ssh.parse("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u1 os=Evil")
    assert load_rules("ssh").identify(forged.subject).os_release == "Debian 12"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["Debian", "Ubuntu", "Raspbian", "FreeBSD", "NetBSD_Secure_Shell"]),
       st.text(alphabet="0123456789abdeu.+~:bpomrtsqz", max_size=24),
       st.sampled_from(["7.4p1", "8.2p1", "9.2p1", "7.8", "7.4", "5.9p1"]))
def test_published_release_is_always_from_the_table(tag, revision, upstream):
    got = ssh.parse(f"SSH-2.0-OpenSSH_{upstream} {tag}-{revision}")
    assert got.os_release is None or got.os_release in VOCAB
    ident = load_rules("ssh").identify(got.subject)
    if ident.os_release not in (None, "Debian", "Ubuntu", "Raspbian"):
        assert ident.os_release in VOCAB
