"""SMTP greetings and EHLO replies (RFC 5321 sections 4.2 and 4.3.1).

Input: the ``smtp`` banner. masscan joins the replies of its whole exchange
with ``\\n`` -- greeting, its own ``EHLO``, then ``STARTTLS``:
``220 localhost Python SMTP 1.4.3\\n250-localhost\\n250-8BITMIME\\n250 HELP\\n454 TLS not available``.
zgrab2's ``banner`` is the greeting alone (CRLF kept); its ``ehlo`` reply is
a separate field.

The greeting is the first reply: ``220 SP domain [SP text]``, parsed into
code, domain and the text after it. The rule subject is the greeting text
**after the domain** (continuation lines joined with ``\n``): ``ESMTP
Postfix (Ubuntu)``, ``Python SMTP 1.4.3``; rules therefore never see host
names, and product tokens that stand later in the text (``ESMTP Service
(Lotus Domino Release 9.0.1) ready``) are found by ``search = true`` rules.
A first word that is no domain but a keyword some servers start with
(``220 ESMTP ...``, Cisco's masked ``220 *****``) is kept as text. The EHLO reply
(the first ``250`` reply after the greeting) gives the extension keywords.

Public form: every reply line redacted, with the greeting's domain and the
EHLO reply's domain always ``<host>`` (RFC 5321 puts a host name or address
literal there, often a single label like ``localhost`` or a container id):
``220 <host> ESMTP Postfix``.
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols.ftp import public_replies
from scanners.protocols.redact import redact, redact_host
from scanners.protocols.rules import Reply, as_text, split_replies

NAME = "smtp"


@dataclasses.dataclass(frozen=True)
class SmtpBanner:
    greeting_code: int | None       # 220, or 554 "no service"
    domain: str | None              # the greeting's domain (never public)
    greeting: str                   # greeting text after the domain
    extensions: tuple[str, ...]     # EHLO keywords, upper-case: ("8BITMIME", "STARTTLS")
    starttls_code: int | None       # reply to STARTTLS when masscan sent it (220/454/502)
    replies: tuple[Reply, ...]
    subject: str
    public: str


# First words that are greeting text, not the RFC 5321 domain (servers that
# omit it, and the PIX/ASA SMTP inspection's asterisk mask).
_NOT_A_DOMAIN = re.compile(r"(?i)E?SMTP|\*[*0-9]*")


def greeting_parts(line: str) -> tuple[str | None, str]:
    """(domain, text after it) of a greeting's first line, for the subject."""
    domain, rest = _split_domain(line)
    if domain and _NOT_A_DOMAIN.fullmatch(domain):
        return None, line.strip()
    return domain, rest


def _split_domain(line: str) -> tuple[str | None, str]:
    domain, _, rest = line.strip().partition(" ")
    return (domain or None), rest.strip()


def parse(banner: str | bytes | None, banner_type: str | None = None) -> SmtpBanner:
    replies = split_replies(as_text(banner))
    if not replies:
        return SmtpBanner(None, None, "", (), None, (), "", "")
    greeting = replies[0]
    domain, first_rest = greeting_parts(greeting.lines[0]) if greeting.code else (None, greeting.lines[0])
    text = "\n".join([first_rest, *(ln.strip() for ln in greeting.lines[1:])]).strip()
    ehlo_index = next((i for i, r in enumerate(replies[1:], 1) if r.code == 250), None)
    extensions: tuple[str, ...] = ()
    if ehlo_index is not None:
        extensions = tuple(ln.split(" ", 1)[0].upper()
                           for ln in replies[ehlo_index].lines[1:] if ln.strip())
    starttls = None
    if ehlo_index is not None and ehlo_index + 1 < len(replies):
        starttls = replies[ehlo_index + 1].code

    def line_public(i: int, j: int, line: str) -> str:
        if j == 0 and (i == 0 or i == ehlo_index) and replies[i].code is not None:
            d, rest = _split_domain(line)
            head = redact_host(d) if d else ""
            return f"{head} {redact(rest, free=True)}".strip()
        return redact(line, free=True)

    # The public form is the greeting alone: the EHLO and STARTTLS replies answer
    # the scanner's own commands (and echo the scanner's address back).
    public = public_replies(replies[:1], line_public)
    return SmtpBanner(greeting.code, domain, text, extensions, starttls, tuple(replies), text, public)

