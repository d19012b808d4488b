"""The public form of a banner: what may be aggregated and shown on the site.

``redact(text)`` replaces everything that identifies a host, a person or a
moment with a placeholder, and keeps product tokens::

    >>> redact("220 mx1.example.org ESMTP Postfix")
    '220 <host> ESMTP Postfix'

Placeholders (a closed set, see ``PLACEHOLDERS``):

* ``<email>``  -- ``local@domain`` addresses
* ``<ip>``     -- IPv4 and IPv6 literals (also ``[::ffff:1.2.3.4]``, ``fe80::1%eth0``)
* ``<mac>``    -- MAC addresses (``02:00:00:00:00:01``, ``0000.0c12.3456``)
* ``<date>``   -- RFC 1123 / asctime / ISO 8601 dates, and times of day
* ``<host>``   -- FQDNs (IDN and punycode included), ``localhost``-style names
  and dashed-IP names such as ``ip-10-0-0-1``
* ``<serial>`` -- UUIDs, long hex runs (ETags, container ids, cookies) and
  base64 blobs
* ``<n>``      -- counters: decimal runs of 9+ digits (epoch seconds) and the
  values of ``uptime=``/``time=``/``pid=``-style keys
* ``<comment>``, ``<certificate>`` -- used by protocol modules for free-text
  fields they drop wholesale (SSH comments, X.509 blobs)

Version numbers are not IPs or dates: ``2.2.22``, ``OpenSSH_5.3``,
``6.0.3790.4675`` (an octet over 255) and ``nginx/1.2.3.4`` (a product token
before the slash) stay. The redactor over-redacts rather than leaks: a dotted
word with an alphabetic last label (``sourceforge.net``) is always a host.

Single-label host names (``mail``, ``fixture-host-7``) cannot be told from
words in free text; the protocol modules redact them where the protocol puts
a host name (the SMTP greeting domain, the EHLO domain, TLS certificate
names, SSH comments).

Only the first ``MAX_PARSE_CHARS`` characters are read; longer input ends in
``<truncated>``. ``\\r\\n`` becomes ``\\n``, surrounding blanks are stripped, and
other control characters except ``\\n``/``\\t`` come out as ``\\xNN``.
``redact`` is idempotent.
"""
from __future__ import annotations

import ipaddress
import re

from scanners.protocols.rules import MAX_PARSE_CHARS

_CUT_BACK = 256    # how far back from the cut a token boundary is looked for

PLACEHOLDERS = ("<email>", "<ip>", "<mac>", "<date>", "<host>", "<serial>", "<n>",
                "<comment>", "<certificate>", "<truncated>")

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_ZONE = r"(?:\s{0,3}(?:[+-]\d{4}|GMT|UTC|Z|[A-Z]{3,4}T))?(?:\s{0,3}\([A-Za-z ]{1,30}\))?"
_TIME = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"

# Each pattern starts with a look-behind that forbids starting inside a token,
# so a match can only begin at a token boundary: no pattern rescans a long run
# of label characters from every offset (which would be quadratic).
_ATEXT = r"[\w.!#$%&'*+/=?^`{|}~-]"       # RFC 5322 local-part characters
_EMAIL = re.compile(rf"(?<!{_ATEXT}){_ATEXT}{{1,64}}+@"
                    r"(?:\[[0-9A-Fa-f:.]{2,45}\]|(?:[\w-]{1,63}\.)+[\w-]{2,63})")
_DATES = re.compile("|".join([
    rf"(?<!\w){_DAY},?\s{{1,3}}\d{{1,2}}[\s-]{{1,3}}{_MON}[\s-]{{1,3}}\d{{2,4}}(?:\s{{1,3}}{_TIME})?{_ZONE}",
    rf"(?<!\w){_DAY},?\s{{1,3}}{_MON}\s{{1,3}}\d{{1,2}}(?:\s{{1,3}}{_TIME})?(?:\s{{1,3}}\d{{4}})?{_ZONE}",
    rf"(?<!\w)\d{{1,2}}\s{{1,3}}{_MON}\s{{1,3}}\d{{4}}(?:\s{{1,3}}{_TIME})?{_ZONE}",
    rf"(?<![\w.-])(?:19|20)\d{{2}}([-/.])\d{{1,2}}\1\d{{1,2}}(?:[T ]{_TIME})?(?:Z|[+-]\d{{2}}:?\d{{2}})?(?!\w|\.\d)",
    rf"(?<![\w.-])\d{{1,2}}([-/.])\d{{1,2}}\2(?:19|20)\d{{2}}(?:[T ]{_TIME})?(?!\w|\.\d)",
    rf"(?<![\w:.]){_TIME}(?:\s{{0,3}}(?:[AaPp][Mm]))?(?![\w:])",
]))
_MAC = re.compile(r"(?<![\w:.-])(?:[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
                  r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![\w:.-])")
# Candidates only; ipaddress decides. The look-ahead insists on a colon within
# the next 40 characters so ordinary words never reach the callback.
_IPV6 = re.compile(r"(?:(?<=IPv6:)|(?<![\w:.]))(?=[0-9A-Fa-f.]{0,40}:)(?=[:.]{0,45}[0-9A-Fa-f])[0-9A-Fa-f:.]{2,45}+(?:%[\w.-]{1,16}+)?(?![0-9A-Fa-f:])")
_IPV4 = re.compile(r"(?<![\w.])(?<![A-Za-z]/)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
_DASHED_IP = re.compile(r"(?<![\w.-])(?:[A-Za-z]{1,10}-)?(?:\d{1,3}[-_]){3}\d{1,3}(?![\w])")
# Labels of word characters (Unicode, so IDNs match) and hyphens; the last
# label is alphabetic (or punycode), which is what keeps 2.2.22 a version.
_FQDN = re.compile(r"(?<![\w.-])(?:[^\W_][\w-]{0,62}\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})(?![\w-]|\.\w)")
_LOCALHOST = re.compile(r"(?<![\w.-])(?:localhost(?:\.localdomain)?|localdomain)(?![\w.-])", re.IGNORECASE)
_UUID = re.compile(r"(?<![\w-])[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}(?![\w-])")
_LONGHEX = re.compile(r"(?<![\w])(?:(?=[0-9A-Fa-f]{0,63}\d)(?=[0-9A-Fa-f]{0,63}[A-Fa-f])[0-9A-Fa-f]{8,}+"
                      r"|[0-9A-Fa-f]{16,}+)(?![\w])")
_BASE64 = re.compile(r"(?<![\w+/=])(?=[A-Za-z0-9+/]{0,80}\d)(?=[A-Za-z0-9+/]{0,80}[A-Z])(?=[A-Za-z0-9+/]{0,80}[a-z])"
                     r"[A-Za-z0-9+/]{40,}+={0,2}(?![\w+/=])")
_LONGNUM = re.compile(r"(?<![\w.])\d{9,}+(?![\w])")
_COUNTER = re.compile(r"(?i)(?<![\w])((?:uptime|time|pid|curr_connections|total_connections|"
                      r"connection_id|connections|threads)\s{0,2}[=:]\s{0,2})\d+(?![\d.])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Dotted words whose "TLD" is really a file extension or product suffix.
# Only suffixes that are NOT country codes: .pl (Poland) and .py (Paraguay)
# were here once as Perl/Python extensions and let real host names through;
# when in doubt, privacy wins and the word is redacted.
_NOT_TLDS = frozenset({
    "html", "htm", "php", "js", "css", "jsp", "asp", "aspx", "cgi", "txt", "xml",
    "json", "gif", "png", "jpg", "jpeg", "ico", "conf", "cfg", "ini", "exe", "dll",
    "bak", "tmp", "gz", "tgz", "rb",
})
_PRODUCT_DOTTED = frozenset({"ASP.NET", "Node.js", "Vue.js", "Next.js"})


def _is_ip6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _ip6(m: re.Match) -> str:
    token = m.group(0)
    if token.count(":") < 2:
        return token
    # Punctuation of the surrounding text may be glued on: "port:2001:db8::1",
    # "from ::1: refused", "ends at ::1."
    head = ":" if token.startswith(":") else ""
    tail = token[-1] if token[-1] in ".:" and "%" not in token else ""
    for h, t in (("", ""), (head, ""), ("", tail), (head, tail)):
        core = token[len(h):len(token) - len(t)]
        if core and _is_ip6(core):
            return f"{h}<ip>{t}"
    return token


def _ip4(m: re.Match) -> str:
    if all(int(g) <= 255 for g in m.groups()):
        return "<ip>"
    return m.group(0)


def _fqdn(m: re.Match) -> str:
    token = m.group(0)
    if token in _PRODUCT_DOTTED:
        return token
    if token.rsplit(".", 1)[1].lower() in _NOT_TLDS:
        return token
    return "<host>"


def _control(m: re.Match) -> str:
    return f"\\x{ord(m.group(0)):02x}"


def redact(text: str | None) -> str:
    """The public form of free text (see the module docstring)."""
    if not text:
        return ""
    truncated = len(text) > MAX_PARSE_CHARS
    s = text[:MAX_PARSE_CHARS]
    if truncated:
        # The cut may split a host name ("mail.exa"); drop the split token.
        last = max(s.rfind(" "), s.rfind("\n"), s.rfind("\t"))
        if last >= MAX_PARSE_CHARS - _CUT_BACK:
            s = s[:last]
    # CRLF and LF-joined transcripts (zgrab2 vs masscan) get one public form;
    # surrounding blanks carry no meaning (masscan pads some banners).
    s = s.replace("\r\n", "\n").strip()
    s = _CONTROL.sub(_control, s)
    s = _EMAIL.sub("<email>", s)
    s = _UUID.sub("<serial>", s)
    s = _MAC.sub("<mac>", s)
    s = _IPV6.sub(_ip6, s)        # before dates: 10:00:00 is never a valid IPv6
    s = _DATES.sub("<date>", s)
    s = _FQDN.sub(_fqdn, s)       # before IPv4: 1.2.3.4.static.isp.net is one host
    s = _IPV4.sub(_ip4, s)
    s = _DASHED_IP.sub("<host>", s)
    s = _LOCALHOST.sub("<host>", s)
    s = _COUNTER.sub(r"\1<n>", s)
    s = _BASE64.sub("<serial>", s)
    s = _LONGHEX.sub("<serial>", s)
    s = _LONGNUM.sub("<n>", s)
    return s + "<truncated>" if truncated else s


def redact_host(token: str) -> str:
    """A token the protocol says is a host name or address: always a placeholder."""
    if not token:
        return token
    bare = token.strip("[]")
    try:
        ipaddress.ip_address(bare.removeprefix("IPv6:").split("%", 1)[0])
        return "<ip>"
    except ValueError:
        return "<host>"
