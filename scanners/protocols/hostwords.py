"""Host-name-shaped words in free text: ``corp-web01``, ``dc01``, ``mx1``.

A single-label host name cannot be told from a word by its spelling alone,
so this module errs on the side of the host: in a *free-text* position (an
SMTP/FTP/POP/IMAP greeting past its product token, an HTTP reason phrase,
title or Server value, a banner no protocol module reads) a token is kept
only if it looks like software, and otherwise becomes ``<host>``::

    >>> redact_host_words("Apache/2.4.1 (Unix) corp-web01")
    'Apache/2.4.1 (Unix) <host>'
    >>> redact_host_words("ProFTPD 1.3.5e Server (Debian) ready on dc01")
    'ProFTPD 1.3.5e Server (Debian) ready on <host>'

A token (a run of letters, digits and ``-_.+~``) is split on those
separators into parts; it is kept when

* its first part starts with a digit or ``v<digit>`` (a version:
  ``1.0.2k-fips``, ``9.4.z-SNAPSHOT``, ``v2``), or
* its first part is a known word (below), or letters only and -- when the
  token has several parts -- not all lower case (``Pure-FTPd``,
  ``Non-Authoritative``; ``mail`` alone is a word, ``corp-web`` a host), and
  every later part starts with a digit, is a known word, has a packaging
  prefix (``deb9u7``, ``el7``, ``rc1``) or is letters not all lower case.

*Known words* are what software says about itself: every word of every
rule's pattern and every name a rule publishes (``rules/*.toml``), plus the
protocol words in ``FIXED_WORDS`` (``POP3``, ``IMAP4rev1``, ``UTF8``). A
letters-and-digits word that is none of these (``dc01``, ``EXCH01``) is a
host, and so is a Windows default machine name (``WIN-7H3J2K1L0M9``,
``DESKTOP-4F2K9QX``, ``JOHNS-PC``, ``ANNA-LAPTOP``). Tokens right after a backslash are escapes (``\\xc3``, ``\\u001b``)
and are left alone.
"""
from __future__ import annotations

import functools
import re

FIXED_WORDS = frozenset(w.lower() for w in (
    "POP3", "POP2", "IMAP4", "IMAP4rev1", "IMAP4rev2", "SMTP", "ESMTP", "LMTP", "UTF8", "SMTPUTF8",
    "8BITMIME", "IPv4", "IPv6", "TLSv1", "SSLv2", "SSLv3", "HTTP", "HTTPS", "FTP", "FTPS", "SFTP",
    "Win32", "Win64", "x86", "x64", "amd64", "i386", "i686", "arm64", "aarch64", "S3", "X2", "3DES",
    "mod", "AUTH", "STARTTLS", "SASL", "NTLM", "GSSAPI", "md5", "sha1", "sha256", "CRAM", "MD5",
    "Internet", "Information", "Services", "Windows", "Server", "Service", "ready", "for", "and",
    "the", "of", "to", "on", "at", "in", "is", "by", "with", "Microsoft", "Non", "Multi", "URI",
    "RFC", "ID", "UID", "OK", "ESMTPS", "ESMTPA", "ESMTPSA", "H2", "H2C", "HTTP2", "QUIC",
    "h2", "dev", "rc", "beta", "alpha", "pre", "post", "stable", "release", "snapshot", "git",
    "fips", "ssl", "tls", "sshd", "ftpd", "httpd", "smtpd", "imapd", "pop3d",
))
# Packaging and build suffixes that carry digits but no host: deb9u7, el7,
# rc1, p1, fc35, bpo9, ubuntu0, build123, sp2, r12, b3, u2, and the HPN-SSH
# patch level OpenSSH builds carry in their software version (hpn13v11).
_PACKAGING = re.compile(r"(?i)^(?:deb|el|rc|p|fc|bpo|ubuntu|build|sp|r|rev|b|u|beta|alpha|pre|dev|git|hpn|"
                        r"patch|update|pl|release|v|mdv|mga|suse|lp|amzn|ol|centos|rhel|sles)\d")
_VERSION_START = re.compile(r"(?i)^v?\d")
_TOKEN = re.compile(r"(?<![\\\w.+~<-])[\w][\w.+~-]*")
_SPLIT = re.compile(r"[-_.+~]+")
_ESCAPE_RUN = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# Windows' default machine names (WIN-7H3J2K1L0M9, DESKTOP-4F2K9QX) and the
# owner-named ones setup suggests (JOHNS-PC, ANNA-LAPTOP): each part alone
# looks like software (upper case, a leading digit), the whole is a host.
_WINDOWS_NAME = re.compile(r"(?i)WIN-[A-Z0-9]{11}|DESKTOP-[A-Z0-9]{7}|[A-Z][A-Z0-9]*-(?:PC|LAPTOP)")


@functools.cache
def known_words() -> frozenset[str]:
    """Lower-cased words of every rule's pattern and published names, plus FIXED_WORDS."""
    from scanners import protocols
    from scanners.protocols.rules import load_rules
    words = set(FIXED_WORDS)
    for name in protocols.names():
        for rule in load_rules(name).rules:
            # "\d", "\w", "\s", "\b" are classes, not words: blank them first.
            source = re.sub(r"\\[A-Za-z]", " ", rule.pattern.pattern)
            texts = [source, *(v for v in rule.fields.values() if "{" not in v), *rule.vocabulary_names()]
            for text in texts:
                for w in _WORD.findall(text):
                    words.add(w.lower())
    return frozenset(words)


def _safe_rest(part: str, words: frozenset[str]) -> bool:
    return (part[0].isdigit() or part.lower() in words or bool(_PACKAGING.match(part))
            or (part.isalpha() and not part.islower()))


def is_host_word(token: str, words: frozenset[str] | None = None) -> bool:
    """Whether a free-text token is host-name-shaped (see the module doc)."""
    words = known_words() if words is None else words
    token = token.strip(".-_+~")
    if _WINDOWS_NAME.fullmatch(token):
        return True
    if not token or token.lower() in words:
        return False
    parts = [p for p in _SPLIT.split(token) if p]
    first = parts[0]
    if _VERSION_START.match(first):
        return False
    if first.lower() in words:
        first_ok = True
    elif first.isalpha():
        first_ok = len(parts) == 1 or not first.islower()
    else:
        first_ok = False          # letters and digits: dc01, mx1, web01
    if not first_ok:
        return True
    return not all(_safe_rest(p, words) for p in parts[1:])


def redact_host_words(text: str) -> str:
    """``text`` with every host-name-shaped token replaced by ``<host>``."""
    if not text:
        return text
    words = known_words()
    # Escapes are masked so that "\xc3" or "\u001b" are never read as words.
    masked = _ESCAPE_RUN.sub(lambda m: "\\" + "\0" * (len(m.group(0)) - 1), text)
    out, pos = [], 0
    for m in _TOKEN.finditer(masked):
        token = m.group(0)
        if "\0" in token:
            continue
        core = token.rstrip(".-_+~")
        if is_host_word(core, words):
            out.append(text[pos:m.start()])
            out.append("<host>")
            pos = m.start() + len(core)
    out.append(text[pos:])
    return "".join(out)
