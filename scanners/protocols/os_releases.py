"""Distribution package revisions -> OS release, from ``os_releases.toml``.

A distribution's build says which release it belongs to in its package
revision, not in words: ``OpenSSH_7.4p1 Debian-10+deb9u7`` is Debian 9
(``+deb9u7``, the 7th stable update for release 9),
``OpenSSH_8.2p1 Ubuntu-4ubuntu0.5`` is Ubuntu 20.04 (the revision Ubuntu
20.04 shipped), ``10.3.39-MariaDB-0+deb10u1`` Debian 10,
``OpenSSH_7.8 FreeBSD-20180909`` FreeBSD 11.3-12.1 (the base system's
import date). The knowledge is data (``os_releases.toml``, with its
sources); this module is the pure lookup over it.

Every function returns a ``release`` string written in the data file or
``None`` -- never text from the banner -- so protocol modules can hand the
result to the rules (see ``ssh.py``/``mysql.py``: the subject's
``\\nos=<release>`` line) and the os_release column only ever holds the
table's vocabulary.

    >>> revision_release("10+deb9u7")
    'Debian 9'
    >>> package_release("openssh", "Ubuntu", "8.2p1", "4ubuntu0.5")
    'Ubuntu 20.04'
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import tomllib

_DATA = "os_releases.toml"


class ReleaseTableError(ValueError):
    """os_releases.toml is malformed (raised at load time, never per banner)."""


@dataclasses.dataclass(frozen=True)
class _Pocket:
    package: str
    tags: frozenset[str]
    upstream: str
    revision: re.Pattern
    release: str


@dataclasses.dataclass(frozen=True)
class ReleaseTable:
    debian: dict[str, str]            # number or code name -> "Debian N"
    raspbian: dict[str, str]          # number -> "Raspbian N"
    ubuntu: dict[str, str]            # "20.04", "2004" or code name -> "Ubuntu 20.04"
    pockets: tuple[_Pocket, ...]
    freebsd: dict[str, str]           # VersionAddendum stamp -> "FreeBSD 12.0-12.1"
    rhel_openssh: dict[str, str]      # bare OpenSSH version -> "RHEL 7"

    def vocabulary(self) -> frozenset[str]:
        """Every release string a lookup can return."""
        return frozenset({*self.debian.values(), *self.raspbian.values(), *self.ubuntu.values(),
                          *(p.release for p in self.pockets), *self.freebsd.values(),
                          *self.rhel_openssh.values()})


def parse_table(text: str) -> ReleaseTable:
    """Build the table from TOML text; raises ReleaseTableError when malformed."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseTableError(f"{_DATA}: {exc}") from None
    unknown = set(doc) - {"debian", "ubuntu", "package", "freebsd", "rhel"}
    if unknown:
        raise ReleaseTableError(f"{_DATA}: unknown tables {sorted(unknown)}")
    try:
        debian, raspbian, ubuntu = {}, {}, {}
        for d in doc.get("debian", ()):
            debian[d["number"]] = debian[d["codename"]] = d["release"]
            if "raspbian" in d:
                raspbian[d["number"]] = d["raspbian"]
        for u in doc.get("ubuntu", ()):
            name = f"Ubuntu {u['version']}"
            ubuntu[u["version"]] = ubuntu[u["version"].replace(".", "")] = ubuntu[u["codename"]] = name
        known = set(debian.values()) | set(ubuntu.values())
        pockets = []
        for p in doc.get("package", ()):
            if p["release"] not in known:
                raise ReleaseTableError(f"{_DATA}: pocket release {p['release']!r} is no [[debian]]/[[ubuntu]] release")
            pockets.append(_Pocket(p["package"], frozenset(p["tag"]), p["upstream"],
                                   re.compile(p["revision"]), p["release"]))
        freebsd = {f["stamp"]: f["release"] for f in doc.get("freebsd", ())}
        rhel = {r["openssh"]: r["release"] for r in doc.get("rhel", ())}
    except (KeyError, TypeError) as exc:
        raise ReleaseTableError(f"{_DATA}: entry lacks or mistypes {exc}") from None
    except re.error as exc:
        raise ReleaseTableError(f"{_DATA}: bad revision regex: {exc}") from None
    return ReleaseTable(debian, raspbian, ubuntu, tuple(pockets), freebsd, rhel)


@functools.cache
def table() -> ReleaseTable:
    """The packaged table (read once)."""
    resource = importlib.resources.files("scanners.protocols").joinpath(_DATA)
    return parse_table(resource.read_text(encoding="utf-8"))


# Release markers inside a revision, most specific first. Each captures the
# key its table is looked up by; the key itself is never returned.
_DEB_UPDATE = re.compile(r"[+~]deb(\d{1,2})u\d+")            # 10+deb9u7, 0+deb11u1, 5~deb11u1
_DEB_BACKPORT = re.compile(r"~bpo(\d{1,2})\+\d+")            # 10~bpo9+1, 5~bpo70+1
_DEB_CODENAME = re.compile(r"(sarge|etch|lenny|squeeze|wheezy|jessie|stretch|buster|bullseye|bookworm|trixie)\.?\d")
_RPT = re.compile(r"\+rpt\d+$")
_REPO_CODENAME = re.compile(r"-\d+~([a-z]{4,10})(?=-|$)")   # MariaDB's old repository: 10.1.44-MariaDB-1~jessie
_UBUNTU_UPDATE = re.compile(r"ubuntu0\.(\d\d\.\d\d)\.\d+")   # 0ubuntu0.20.04.1
_MARIA_DIST = re.compile(r"\+maria~(?:deb(\d{1,2})|ubu(\d{4})|([a-z]{4,10}))")   # +maria~deb11, ~ubu2004, ~focal


def revision_release(revision: str, raspbian: bool = False) -> str | None:
    """The release a package revision names by itself (stable updates,
    backports, code names, Ubuntu's ``ubuntu0.YY.MM``, MariaDB repository
    tags), or None."""
    t = table()
    debian = t.raspbian if raspbian else t.debian
    m = _DEB_UPDATE.search(revision) or _DEB_BACKPORT.search(revision)
    if m:
        number = m.group(1)
        if number in ("60", "70"):           # squeeze/wheezy backports: bpo60, bpo70
            number = number[0]
        return debian.get(number)
    m = _MARIA_DIST.search(revision)
    if m:
        deb, ubu, codename = m.groups()
        if deb:
            return t.debian.get(deb)
        if ubu:
            return t.ubuntu.get(ubu)
        return t.debian.get(codename) or t.ubuntu.get(codename)
    m = _UBUNTU_UPDATE.search(revision)
    if m:
        return t.ubuntu.get(m.group(1))
    m = _REPO_CODENAME.search(revision)
    if m:
        return t.debian.get(m.group(1)) or t.ubuntu.get(m.group(1))
    m = _DEB_CODENAME.search(revision)
    if m and not raspbian:
        return t.debian.get(m.group(1))
    return None


def package_release(package: str, tag: str, upstream: str, revision: str) -> str | None:
    """Release of ``<package> <upstream>-<revision>`` as a distributor
    (``tag``: Debian, Ubuntu, Raspbian) built it: a release marker in the
    revision first, else the release whose pocket shipped that exact
    revision."""
    found = revision_release(revision, raspbian=tag == "Raspbian")
    if found:
        return found
    if tag == "Raspbian":          # the Pi rebuild of a pocket revision: 5+rpt1
        revision = _RPT.sub("", revision)
    for pocket in table().pockets:
        if (pocket.package == package and tag in pocket.tags and pocket.upstream == upstream
                and pocket.revision.fullmatch(revision)):
            if tag == "Raspbian":
                number = pocket.release.removeprefix("Debian ")
                return table().raspbian.get(number)
            return pocket.release
    return None


def freebsd_release(stamp: str) -> str | None:
    """FreeBSD release(s) whose base sshd sends ``FreeBSD-<stamp>``."""
    return table().freebsd.get(stamp)


def rhel_openssh_release(version: str) -> str | None:
    """RHEL release whose openssh reports the bare upstream ``version``."""
    return table().rhel_openssh.get(version)
