"""SSH identification strings (RFC 4253 section 4.2).

Input: the ``ssh`` banner -- masscan's and zgrab2's ``server_id.raw`` are
both the server's identification line, e.g.
``SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10 fixture-host-7``. The line is
``SSH-protoversion-softwareversion SP comments CR LF``; a server may send
other lines first, so the first line starting ``SSH-`` is taken.

* ``SSH-1.99`` means "speaks 1 and 2" (RFC 4253 section 5.1), so
  ``supports == (1, 2)``.
* ``softwareversion`` should not contain ``-`` but real servers do
  (``Cisco-1.25``, ``HUAWEI-1.5``): everything up to the first space is the
  software.
* The software is split into its product token and version at the last
  ``_``/``-``/``/`` before a digit (``OpenSSH_9.2p1`` -> ``OpenSSH``,
  ``9.2p1``; ``Cisco-1.25``; ``mod_sftp/0.9.9``; ``ROSSSH`` has none).
* The rule subject is ``software`` plus, after a space, the comments:
  ``OpenSSH_9.2p1 Debian-2+deb12u10``. When the comment is a distribution
  package tag (or the software an RHEL-style bare ``OpenSSH_7.4``) whose
  revision ``os_releases.py`` maps to a release, a second subject line
  ``os=<release>`` follows: ``OpenSSH_9.2p1 Debian-2+deb12u10\nos=Debian 12``.
  No banner line holds a newline, so that line can only come from the
  release table, and rules template ``os_release`` from it.

Public form: the identification string with each comment word kept only if
it is a distribution package tag (``Debian-2+deb12u10``, ``Ubuntu-4ubuntu2.4``,
``FreeBSD-20080901``, ``Raspbian-10+deb10u2``); any other comment word --
typically an admin's ``VersionAddendum`` such as ``fixture-host-7`` -- is
free text that may name the host, so it becomes one ``<comment>``.
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols import os_releases
from scanners.protocols.redact import redact
from scanners.protocols.rules import as_text

NAME = "ssh"

_ID = re.compile(r"SSH-(?P<proto>[^-\s]{1,16})-(?P<software>\S{0,255})(?: (?P<comments>.*))?")
_PACKAGE_TAG = re.compile(
    r"(?:Debian|Ubuntu|Raspbian)-[0-9][\w.+~]{0,40}|FreeBSD-\d{8}|NetBSD_Secure_Shell-\d{8}")


@dataclasses.dataclass(frozen=True)
class SshBanner:
    valid: bool                     # an RFC 4253 identification line was found
    proto_version: str | None       # "2.0", "1.99", "1.5"
    supports: tuple[int, ...]       # SSH major versions spoken: (2,), (1, 2), (1,)
    software: str | None            # "OpenSSH_9.2p1"
    comments: str | None            # "Debian-2+deb12u10 fixture-host-7"
    subject: str
    public: str
    product_token: str | None = None    # "OpenSSH", "dropbear", "ROSSSH"
    software_version: str | None = None  # "9.2p1", "2019.78"
    os_release: str | None = None       # from os_releases.toml only: "Debian 12"


_SOFTWARE = re.compile(r"(?P<name>.*?)[_/-]?(?P<version>\d[\w.+~-]*)")
_OPENSSH = re.compile(r"OpenSSH_(?P<upstream>\d[\w.]*?)(?:_hpn\w*|-hpn\w*)?")
_DISTRO_TAG = re.compile(r"(?P<tag>Debian|Ubuntu|Raspbian)-(?P<revision>[0-9][\w.+~:]{0,40})")
_FREEBSD_TAG = re.compile(r"FreeBSD-(?P<stamp>\d{8})")
OS_LINE = "\nos="


def split_software(software: str) -> tuple[str, str | None]:
    """(product token, version) of the softwareversion field."""
    m = _SOFTWARE.fullmatch(software)
    if m and m.group("name"):
        return m.group("name"), m.group("version")
    return software, None


def os_release(software: str, comments: str | None) -> str | None:
    """The OS release an OpenSSH build's package tag names (from the table)."""
    m = _OPENSSH.fullmatch(software)
    if not m:
        return None
    first = (comments or "").split(" ", 1)[0]
    tag = _DISTRO_TAG.fullmatch(first)
    if tag:
        return os_releases.package_release("openssh", tag.group("tag"), m.group("upstream"),
                                           tag.group("revision"))
    stamp = _FREEBSD_TAG.fullmatch(first)
    if stamp:
        return os_releases.freebsd_release(stamp.group("stamp"))
    if not comments and re.fullmatch(r"\d+\.\d+", m.group("upstream")):
        return os_releases.rhel_openssh_release(m.group("upstream"))
    return None


def _supports(proto: str) -> tuple[int, ...]:
    if proto == "1.99":
        return (1, 2)
    if proto.startswith("2."):
        return (2,)
    if proto.startswith("1."):
        return (1,)
    return ()


def public_comments(comments: str | None) -> str:
    out: list[str] = []
    for word in (comments or "").split():
        keep = _PACKAGE_TAG.fullmatch(word)
        token = redact(word) if keep else "<comment>"
        if not (token == "<comment>" and out and out[-1] == "<comment>"):
            out.append(token)
    return " ".join(out)


def parse(banner: str | bytes | None, banner_type: str | None = None) -> SshBanner:
    text = as_text(banner)
    line = next((ln for ln in text.split("\n") if ln.startswith("SSH-")), None)
    if line is None:
        first = text.split("\n", 1)[0].rstrip("\r")
        return SshBanner(False, None, (), None, None, first.strip(), redact(first))
    line = line.rstrip("\r\n")
    m = _ID.match(line)
    if not m:
        return SshBanner(False, None, (), None, None, line, redact(line))
    proto, software = m.group("proto"), m.group("software")
    comments = (m.group("comments") or "").strip() or None
    subject = f"{software} {comments}" if comments else software
    release = os_release(software, comments)
    if release:
        subject += OS_LINE + release
    token, version = split_software(software)
    public = f"SSH-{proto}-{redact(software, free=True)}"
    if comments:
        public += " " + public_comments(comments)
    return SshBanner(True, proto, _supports(proto), software, comments, subject, public,
                     token, version, release)
