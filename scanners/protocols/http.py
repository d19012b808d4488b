"""HTTP: the ``Server`` header is the product statement.

Banner types (masscan names; the zgrab2 reader maps ``headers.server[0]`` to
``http.server``):

* ``http.server`` -- the Server header value, e.g. ``nginx/1.22.1``.
* ``http`` -- masscan's response header block: status line and headers, no
  body, CRLF line ends, and the final CRLF cut to ``\\r\\n\\r``.
* ``title`` -- the HTML ``<title>`` text, entities as sent (``&amp;``).

The rule subject is the Server value (from ``http.server``, or found in the
``http`` block), trimmed. A title alone gives no subject.

Parse, then match (RFC 9110 section 10.2.4: ``Server = product *( RWS (
product / comment ) )``, ``product = token ["/" version]``, ``comment =
"(" ... ")"`` with nesting and ``\\``-quoting). ``split_server`` cuts the
value into product tokens and comments, tolerantly (real servers put spaces
in names, ``Jetty(9.4.z)`` glues a comment to its token, comments are left
open). Then:

* **Product**: the rules are tried at the start of each product token in
  turn (``starts``, at most ``MAX_STARTS``); at the first token any rule
  matches, the first matching rule wins. So ``Stronghold/3.0 Apache/1.3.19``
  is Stronghold if a rule names Stronghold, else Apache; ``Linux/2.6 UPnP/1.0
  MiniUPnPd/1.9`` is MiniUPnPd (no rule names ``Linux/`` or ``UPnP/``; module
  tokens such as ``PHP/``, ``OpenSSL/`` and ``mod_ssl/`` are never products).
  A rule matched at a token sees the rest of the value too, so it can read
  the comment after its token (``Apache/2.4.29 (Ubuntu)`` -> Ubuntu 18.04).
* **OS**: when the rule sets no OS, ``refine`` takes it from the comments,
  wherever they stand (``OS_COMMENTS``; a comment naming a distribution or
  release beats a bare ``(Unix)``, and of equals the first wins), else from
  a leading OS token of the UPnP form ``Linux/4.14 UPnP/1.0 ...``.

Public form: for ``http.server`` and ``title`` the redacted text. For the
``http`` header block only the status line and the Server header are kept:
every other header (``Date``, ``ETag``, ``Content-Length``, ``Set-Cookie``,
``Location``) is per-response or per-site and would make each banner unique.
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols.redact import redact
from scanners.protocols.rules import Identity, as_text

NAME = "http"

_STATUS = re.compile(r"(HTTP/\d(?:\.\d)?) (\d{3})(?: ([^\r\n]*))?")


@dataclasses.dataclass(frozen=True)
class HttpBanner:
    status_line: str | None      # "HTTP/1.1 200 OK"
    status_code: int | None
    server: str | None           # Server header value
    title: str | None
    header_names: tuple[str, ...]  # lower-case, in order (the block only)
    subject: str
    public: str
    tokens: tuple[str, ...] = ()     # product tokens of the Server value, in order
    comments: tuple[str, ...] = ()   # its comments, without the parentheses
    starts: tuple[int, ...] = (0,)   # offset of each product token in subject


# A value longer than this many tokens is hostile or garbage: later tokens are
# not tried as product positions (each costs a prefilter look-up).
MAX_STARTS = 32


def split_server(value: str) -> tuple[tuple[tuple[int, str], ...], tuple[str, ...]]:
    """((offset, token) per product token, comment texts) of a Server value.

    Never raises: an unclosed comment runs to the end, a stray ``)`` is part
    of a token, ``\\`` quotes the next character inside a comment."""
    tokens: list[tuple[int, str]] = []
    comments: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch in " \t":
            i += 1
        elif ch == "(":
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                c = value[j]
                if c == "\\" and j + 1 < n:
                    buf.append(value[j + 1])
                    j += 2
                    continue
                depth += (c == "(") - (c == ")")
                if depth:
                    buf.append(c)
                j += 1
            comments.append("".join(buf).strip())
            i = j
        else:
            j = i
            while j < n and value[j] not in " \t(":
                j += 1
            tokens.append((i, value[i:j]))
            i = j
    return tuple(tokens), tuple(comments)


def _server(value: str) -> dict:
    tokens, comments = split_server(value)
    return {"tokens": tuple(t for _, t in tokens), "comments": comments,
            "starts": tuple(o for o, _ in tokens[:MAX_STARTS]) or (0,)}


# (pattern searched in each comment, os_family, os_release or None). Order
# matters only between patterns that can hit the same comment: specific first.
OS_COMMENTS: tuple[tuple[re.Pattern, str, str | None], ...] = tuple(
    (re.compile(p), fam, rel) for p, fam, rel in (
        (r"\bRed Hat Enterprise Linux\b|\bRHEL\b", "Linux", "Red Hat Enterprise Linux"),
        (r"\bRed[ -]?Hat\b", "Linux", "Red Hat"),
        (r"(?i)\bcentos\b", "Linux", "CentOS"),
        (r"\bRocky Linux\b", "Linux", "Rocky Linux"),
        (r"\bAlmaLinux\b", "Linux", "AlmaLinux"),
        (r"\bAmazon(?: Linux)?\b", "Linux", "Amazon Linux"),
        (r"\bFedora\b", "Linux", "Fedora"),
        (r"\bopenSUSE\b", "Linux", "openSUSE"),
        (r"\bSu[Ss][Ee]\b|\bSUSE\b|\bSLES\b", "Linux", "SUSE"),
        (r"\bGentoo\b", "Linux", "Gentoo"),
        (r"\bRaspbian\b", "Linux", "Raspbian"),
        (r"\bUbuntu\b", "Linux", "Ubuntu"),
        (r"\bDebian\b", "Linux", "Debian"),
        (r"\bMandr(?:ake|iva)\b", "Linux", "Mandriva"),
        (r"\bSlackware\b", "Linux", "Slackware"),
        (r"\bTrustix\b", "Linux", "Trustix"),
        (r"\bTurbolinux\b", "Linux", "Turbolinux"),
        (r"\bConectiva\b", "Linux", "Conectiva"),
        (r"\bALT Linux\b", "Linux", "ALT Linux"),
        (r"(?i)\blinux\b", "Linux", None),
        (r"\bWin(?:32|64)\b|\bWindows\b|\bWinNT\b", "Windows", None),
        (r"\bFreeBSD\b", "FreeBSD", None),
        (r"\bOpenBSD\b", "OpenBSD", None),
        (r"\bNetBSD\b", "NetBSD", None),
        (r"\bDarwin\b|\bMac ?OS ?X\b|\bmacOS\b", "macOS", None),
        (r"\bSolaris\b|\bSunOS\b", "Solaris", None),
        (r"\bUnix\b|\bUNIX\b", "Unix", None),
    ))
# The OS token that leads a UPnP SERVER value ("Linux/3.10 UPnP/1.0 ...",
# "Linux 2.6.36, UPnP/1.0, ..."; UPnP 1.0 wrote commas between the tokens).
_OS_TOKENS = {"linux": "Linux", "windows": "Windows", "microsoft-windows": "Windows",
              "microsoft-windows-nt": "Windows", "windows_nt": "Windows", "windowsnt": "Windows",
              "freebsd": "FreeBSD", "darwin": "macOS", "netbsd": "NetBSD", "openbsd": "OpenBSD",
              "sunos": "Solaris", "ubuntu": "Linux", "debian": "Linux", "openwrt": "Linux",
              "fedora": "Linux", "centos": "Linux", "raspbian": "Linux"}


def os_from(tokens: tuple[str, ...], comments: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(os_family, os_release) the comments (else a leading OS token) state."""
    best: tuple[int, str, str | None] | None = None
    for text in comments:
        for pattern, family, release in OS_COMMENTS:
            if pattern.search(text):
                rank = 0 if release else (2 if family == "Unix" else 1)
                if best is None or rank < best[0]:
                    best = (rank, family, release)
                break
        if best and best[0] == 0:
            break
    if best:
        return best[1], best[2]
    if tokens:
        family = _OS_TOKENS.get(tokens[0].split("/", 1)[0].rstrip(",").lower())
        if family:
            return family, None
    return None, None


def refine(parsed: "HttpBanner", ident: Identity) -> Identity:
    """The OS from the Server value's comments where the rule said none."""
    if ident.os_family or ident.os_release or not (parsed.comments or parsed.tokens):
        return ident
    family, release = os_from(parsed.tokens, parsed.comments)
    if family is None:
        return ident
    return dataclasses.replace(ident, os_family=family, os_release=release)


def _header_block(text: str) -> tuple[str | None, int | None, str | None, tuple[str, ...]]:
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    status_line = code = server = None
    names: list[str] = []
    if lines and (m := _STATUS.match(lines[0])):
        status_line = lines[0].strip()
        code = int(m.group(2))
        lines = lines[1:]
    for ln in lines:
        if not ln.strip():
            break
        name, sep, value = ln.partition(":")
        if not sep or not name or name != name.strip():
            continue            # not a header line (or obs-fold): ignore it
        names.append(name.lower())
        if name.lower() == "server" and server is None:
            server = value.strip()
    return status_line, code, server, tuple(names)


def parse(banner: str | bytes | None, banner_type: str | None = None) -> HttpBanner:
    text = as_text(banner)
    if banner_type == "title":
        title = text.strip()
        return HttpBanner(None, None, None, title, (), "", redact(title, free=True))
    if banner_type == "http" or (banner_type is None and _STATUS.match(text)):
        status_line, code, server, names = _header_block(text)
        public = "\n".join(
            x for x in (redact(status_line, free=True) if status_line else None,
                        f"Server: {redact(server, free=True)}" if server is not None else None) if x)
        subject = server or ""
        return HttpBanner(status_line, code, server, None, names, subject, public, **_server(subject))
    server = text.strip()
    return HttpBanner(None, None, server, None, (), server, redact(server, free=True), **_server(server))
