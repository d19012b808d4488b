"""FTP greetings (RFC 959 section 4.2).

Input: the ``ftp`` banner. masscan sends ``AUTH TLS`` after the greeting and
joins the replies with ``\\n``: ``220 (vsFTPd 3.0.3)\\n530 Please login with
USER and PASS.``; zgrab2's ``banner`` is the greeting alone with ``\\r\\n``
(its ``auth_tls`` reply, when present, is a separate field).

Replies are split by reply code (a multi-line reply is ``220-...`` lines up
to ``220 ...``); the **greeting is the first reply**. The rule subject is
the greeting's text without the codes, lines joined with ``\\n``:
``(vsFTPd 3.0.3)``, ``ProFTPD 1.3.5e Server (Debian) [::ffff:192.0.2.1]``.
The reply to masscan's ``AUTH TLS`` says whether explicit TLS is offered
(``234``).

Public form: every reply line, redacted; in the two greeting shapes that put
the server's own name first (BSD ftpd ``220 host FTP server (Version ...)``,
old IIS ``220 host Microsoft FTP Service``) that name becomes ``<host>``.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

from scanners.protocols.redact import redact, redact_host
from scanners.protocols.rules import Reply, as_text, split_replies

NAME = "ftp"

_HOST_FIRST = re.compile(r"^(\S+)( (?:FTP server \(|Microsoft FTP Service|FTP Server ready))")


# The subject side of the host-first shapes (the public side has its own,
# _HOST_FIRST above): a host-shaped first word before one of these phrases.
_SUBJECT_HOST_FIRST = re.compile(
    r"(?P<host>\[?[A-Za-z0-9:][A-Za-z0-9.:-]{0,253}\]?) (?=FTP server \(|FTP server ready|"
    r"Microsoft FTP Service|X2 WS_FTP Server|WS_FTP Server|NcFTPd Server)")
# Product or device words some servers put where BSD ftpd puts the host.
_NOT_A_HOST = frozenset({"APC", "JD", "VxWorks", "FTP", "Welcome"})


def greeting_parts(text: str) -> tuple[str | None, str]:
    """(domain, subject text) of a greeting's joined text."""
    m = _SUBJECT_HOST_FIRST.match(text)
    if m and m.group("host") not in _NOT_A_HOST:
        return m.group("host"), text[m.end():]
    return None, text


@dataclasses.dataclass(frozen=True)
class FtpBanner:
    greeting_code: int | None       # 220 normally; 421/530 for refusals
    greeting: str                   # text of the first reply, codes removed
    replies: tuple[Reply, ...]
    auth_tls_code: int | None       # the reply after the greeting (masscan's AUTH TLS)
    subject: str
    public: str
    domain: str | None = None       # the server's own name in host-first greetings (never public)

    @property
    def offers_tls(self) -> bool:
        return self.auth_tls_code == 234


def _public_line(i: int, j: int, line: str) -> str:
    if i == 0 and j == 0:
        m = _HOST_FIRST.match(line)
        if m:
            line = redact_host(m.group(1)) + line[m.end(1):]
    return redact(line, free=True)


def public_replies(replies: Sequence[Reply], line_public: Callable[[int, int, str], str]) -> str:
    """Replies back as ``NNN-``/``NNN `` lines, each line through ``line_public(i, j, line)``
    (reply index, line index within the reply)."""
    out: list[str] = []
    for i, reply in enumerate(replies):
        n = len(reply.lines)
        for j, line in enumerate(reply.lines):
            text = line_public(i, j, line)
            if reply.code is None:
                out.append(text)
            else:
                sep = " " if j == n - 1 else "-"
                out.append(f"{reply.code}{sep}{text}".rstrip())
    return "\n".join(out)


def parse(banner: str | bytes | None, banner_type: str | None = None) -> FtpBanner:
    replies = split_replies(as_text(banner))
    if not replies:
        return FtpBanner(None, "", (), None, "", "")
    greeting = replies[0]
    auth = replies[1].code if len(replies) > 1 else None
    domain, subject = greeting_parts("\n".join(ln.strip() for ln in greeting.lines).strip())
    # The public form is the greeting alone: later replies answer masscan's own
    # probe (AUTH TLS) and say nothing more about the server's identity.
    return FtpBanner(greeting.code, greeting.text, tuple(replies), auth, subject,
                     public_replies(replies[:1], _public_line), domain)
