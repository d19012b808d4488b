"""The public form of a banner: what may be aggregated and shown on the site.

``redact(text)`` replaces everything that identifies a host, a person or a
moment with a placeholder, and keeps product tokens::

    >>> redact("220 mx1.example.org ESMTP Postfix")
    '220 <host> ESMTP Postfix'

Placeholders (a closed set, see ``PLACEHOLDERS``):

* ``<email>``  -- ``local@domain`` addresses, also spelled ``postmaster(at)corp(dot)com``
  or ``root at corp dot com``
* ``<ip>``     -- IPv4 and IPv6 literals (also ``[::ffff:1.2.3.4]``, ``fe80::1%eth0``),
  glued to a word or followed by a port (``ip10.20.16.40``, ``10.20.15.40.21``,
  ``host:2001:db8::40``, ``v2001:db8::40``), with leading zeros
  (``0010.0020.0003.0040``), in hex (``0x0a140a28``, ``0x0a.0x14.0x0c.0x28``)
  or full-width digits (the text is NFKC-normalised first)
* ``<mac>``    -- MAC addresses (``02:00:00:00:00:01``, ``0000.0c12.3456``, ``MAC:00:0c:29:..``)
* ``<dn>``     -- LDAP distinguished names in any attribute (``CN=dc01,OU=Servers,DC=corp``)
* ``<date>``   -- RFC 1123 / asctime / ISO 8601 dates, and times of day
* ``<host>``   -- FQDNs (IDN and punycode included; reverse-DNS names such as
  ``40.6.20.10.in-addr.arpa`` or ``c-10-20-6-40.isp.example``), ``localhost``-style
  names, any token with a dashed or underscored address in it (``ip-10-0-0-1``,
  ``ec2-10-20-5-40``, ``dynamic-ip-10-20-6-40``, ``ip_10_20_7_40``,
  ``2001-db8-77-a--40``), and -- in free-text positions only, see
  ``hostwords.py`` -- single-label host-name-shaped words (``corp-web01``)
* ``<serial>`` -- UUIDs, long hex runs (ETags, container ids, cookies),
  base64 blobs, and the value after ``SN``/``S/N``/``serial`` (``SN:FCZ1241X0AB``)
* ``<n>``      -- counters: decimal runs of 9+ digits (epoch seconds), the
  values of ``uptime=``/``time=``/``pid=``-style keys, and in free text 8-digit
  numbers that are an IPv4 address as a 32-bit integer (``16909070``)
* ``<comment>``, ``<certificate>`` -- used by protocol modules for free-text
  fields they drop wholesale (SSH comments, X.509 blobs)

Version numbers are not IPs or dates: ``2.2.22``, ``OpenSSH_5.3`` and
``6.0.3790.4675`` (an octet over 255) stay; a four-part version whose parts
are all octets (``nginx/1.2.3.4``) is published as ``nginx/<ip>``: the
redactor over-redacts rather than leaks, and a dotted word with an
alphabetic last label (``sourceforge.net``) is always a host.

Single-label host names (``mail``, ``fixture-host-7``) cannot be told from
words in free text. The protocol modules redact them where the protocol puts
a host name (the SMTP greeting domain, the EHLO domain, TLS certificate
names, SSH comments), and pass ``free=True`` for the text of greetings,
reason phrases, titles and Server values, where every host-name-shaped word
goes (``hostwords.py``).

Only the first ``MAX_PARSE_CHARS`` characters are read; longer input ends in
``<truncated>``. ``\\r\\n`` becomes ``\\n``, surrounding blanks are stripped,
invisible format characters (zero-width space, soft hyphen, BOM) are dropped,
and control, bidi, line-separator and noncharacter code points except
``\\n``/``\\t`` come out as ``\\uXXXX`` (``scanners/escapes.py``).
``redact`` is idempotent.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata

from scanners.escapes import drop_invisible, escape_unsafe
from scanners.protocols.hostwords import redact_host_words
from scanners.protocols.rules import MAX_PARSE_CHARS

_CUT_BACK = 256    # how far back from the cut a token boundary is looked for

PLACEHOLDERS = ("<email>", "<ip>", "<mac>", "<dn>", "<date>", "<host>", "<serial>", "<n>",
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
# "postmaster(at)corp(dot)com", "root [at] corp [dot] com", "root at corp dot com".
_AT = r"(?:\s*[(\[{]\s*at\s*[)\]}]\s*|\s+at\s+)"
_DOT = r"(?:\s*[(\[{]\s*dot\s*[)\]}]\s*|\s+dot\s+|\.)"
_EMAIL_OBFUSCATED = re.compile(rf"(?i)(?<![\w.+-])[\w.+-]{{1,64}}{_AT}[\w-]{{1,63}}(?:{_DOT}[\w-]{{1,63}})+")
# An LDAP DN: two or more attr=value parts, or one part of the attributes
# that always name an entry (CN, OU, DC, UID). Values run to the next , ; +
_DN_ATTR = r"(?:CN|OU|DC|O|UID|L|ST|C|STREET|SN|GN|DNQUALIFIER|SERIALNUMBER|MAIL|E)"
_DN = re.compile(rf"(?i)(?<![\w])(?:{_DN_ATTR}\s*=\s*[^,;+=\n]{{1,128}}?\s*[,;+]\s*)+{_DN_ATTR}\s*=\s*[^,;+=\n]{{1,128}}"
                 rf"|(?<![\w])(?:CN|OU|DC|UID)\s*=\s*[^,;+=\s]{{1,128}}")
# The value after a serial-number key: "SN:FCZ1241X0AB", "S/N 12345", "serial=ABC-123".
_SERIAL_KEYED = re.compile(r"(?i)(?<![\w])((?:S/?N|serial(?:[ _-]?(?:no|number|num))?\.?)(?:\s{0,2}[:=#]\s{0,2}|\s{1,2}))"
                           r"(?!<)[A-Za-z0-9][A-Za-z0-9/_-]{2,63}")
# A MAC after a key, whatever stands before it ("MAC:00:0c:29:..", "hwaddr=..").
_MAC_KEYED = re.compile(r"(?i)(?<![\w])((?:mac|hw ?addr|ether|bssid|lladdr)\s{0,2}[:=]?\s{0,2})"
                        r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\2[0-9A-Fa-f]{2}){4}(?![0-9A-Fa-f])")
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
# IPv6 glued to a word ("v2001:db8::40", "host:2001:db8::40"): a hex-and-colon
# run with "::" or seven colons, read back by ipaddress from its longest valid tail.
_IPV6_GLUED = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,8}")
# A dotted quad (leading zeros allowed) glued to a word, and an "address.port";
# not one inside a longer run of numbers (1.2.3.4.5.6: an OID or a build).
_IPV4 = re.compile(r"(?<!\d)(?<!\d\.)(\d{1,4})\.(\d{1,4})\.(\d{1,4})\.(\d{1,4})(?:\.\d{1,5})?(?!\d|\.\d)")
_HEX_IP = re.compile(r"(?i)(?<![0-9a-f])0x[0-9a-f]{8}(?![0-9a-f])|(?<![0-9a-f])0x[0-9a-f]{1,2}(?:\.0x[0-9a-f]{1,2}){3}(?![0-9a-f])")
# Any token with a dashed or underscored quad in it ("ec2-10-20-5-40",
# "dynamic-ip-10-20-6-40", "ip_10_20_7_40") is a host name as a whole.
_TOKEN = re.compile(r"[\w.-]*\d[-_]\d{1,4}[-_]\d{1,4}[-_]\d[\w.-]*")
_QUAD_IN = re.compile(r"(?<!\d)(?=(\d{1,4})[-_](\d{1,4})[-_](\d{1,4})[-_](\d{1,4})(?!\d))")
# A dashed IPv6 ("2001-db8-77-a--40"): "--" for "::", or all eight groups.
_WORDRUN = re.compile(r"[\w.-]*-[\w.-]*")
_HEXDASH = re.compile(r"[0-9A-Fa-f-]{5,}")
_INT_IP = re.compile(r"(?<![\d.])(\d{8})(?:\.\d{1,5})?(?!\d|\.\d)")
# Labels of word characters (Unicode, so IDNs match) and hyphens; the last
# label is alphabetic (or punycode), which is what keeps 2.2.22 a version.
_FQDN = re.compile(r"(?<![\w.-])(?:[^\W_][\w-]{0,62}\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})(?![\w-]|\.\w)")
_LOCALHOST = re.compile(r"(?<![\w.-])(?:localhost(?:\.localdomain)?|localdomain)(?![\w.-])", re.IGNORECASE)
_UUID = re.compile(r"(?<![0-9A-Fa-f-])[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}(?![\w-])")
_LONGHEX = re.compile(r"(?<![\w])(?:(?=[0-9A-Fa-f]{0,63}\d)(?=[0-9A-Fa-f]{0,63}[A-Fa-f])[0-9A-Fa-f]{8,}+"
                      r"|[0-9A-Fa-f]{16,}+)(?![\w])")
_BASE64 = re.compile(r"(?<![\w+/=])(?=[A-Za-z0-9+/]{0,80}\d)(?=[A-Za-z0-9+/]{0,80}[A-Z])(?=[A-Za-z0-9+/]{0,80}[a-z])"
                     r"[A-Za-z0-9+/]{40,}+={0,2}(?![\w+/=])")
# Glued to a word too ("x_167772160"): a counter or an address as an integer.
_LONGNUM = re.compile(r"(?<![\d.])\d{9,}+(?!\d)")
_COUNTER = re.compile(r"(?i)(?<![\w])((?:uptime|time|pid|curr_connections|total_connections|"
                      r"connection_id|connections|threads)\s{0,2}[=:]\s{0,2})\d+(?![\d.])")

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


def _ip6_glued(m: re.Match) -> str:
    token = m.group(0)
    if "::" not in token and token.count(":") < 7:
        return token
    for cut in range(len(token)):
        core = token[cut:]
        for tail in ("", ":"):
            c = core[:len(core) - len(tail)] if tail and core.endswith(tail) and not core.endswith("::") else core
            if c.count(":") >= 2 and sum(1 for g in c.split(":") if g) >= 2 and _is_ip6(c):
                return token[:cut] + "<ip>" + core[len(c):]
    return token


def _ip4(m: re.Match) -> str:
    # 0.x.x.x glued to a word is how packaging revisions look
    # ("MariaDB-0ubuntu0.20.04.1"), and 0.0.0.0/8 names no host: kept.
    glued = m.start() > 0 and m.string[m.start() - 1].isalpha()
    if all(int(g) <= 255 for g in m.groups()) and not (glued and int(m.group(1)) == 0):
        return "<ip>"
    return m.group(0)


def _hex_ip(m: re.Match) -> str:
    return "<ip>"


def _dashed_token(m: re.Match) -> str:
    token = m.group(0)
    for q in _QUAD_IN.finditer(token):
        if all(int(g) <= 255 for g in q.groups()):
            return "<host>"
    return token


def _dashed_ip6(m: re.Match) -> str:
    token = m.group(0)
    if "--" not in token and token.count("-") < 7:
        return token
    for run in _HEXDASH.findall(token):
        for cut in range(min(len(run) - 4, 5)):      # hex letters glued before it: "face2001-..."
            core = run[cut:]
            if core.endswith("-") and not core.endswith("--"):
                core = core[:-1]
            if ("--" in core or core.count("-") == 7) and any(c.isdigit() for c in core) \
                    and _is_ip6(core.replace("-", ":")):
                return "<host>"
    return token


def _int_ip(m: re.Match) -> str:
    # 8 digits from 16777216 (1.0.0.0) up: an address written as an integer,
    # unless it is a date (FreeBSD-20080901, tnftpd 20100324: builds).
    digits = m.group(1)
    if int(digits) < 1 << 24 or _is_date8(digits):
        return m.group(0)
    return "<n>"


def _is_date8(digits: str) -> bool:
    y, mo, d = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    return 1990 <= y <= 2099 and 1 <= mo <= 12 and 1 <= d <= 31


def _fqdn(m: re.Match) -> str:
    token = m.group(0)
    if token in _PRODUCT_DOTTED:
        return token
    labels = token.split(".")
    # Numbers then one word is a version ("2.0.1.GA", "5.0.0.Final"), unless
    # the numbers are an address (reverse DNS, "1.2.3.4.example").
    if len(labels) <= 4 and all(x.isdigit() for x in labels[:-1]):
        return token
    if token.rsplit(".", 1)[1].lower() in _NOT_TLDS:
        return token
    return "<host>"


def _patterns(s: str, free: bool) -> str:
    """Every pattern, in order, over text without escapes. A pattern whose
    tell-tale character is absent is skipped (banners are short, but each
    pass is a scan)."""
    low = s.lower()
    if "@" in s:
        s = _EMAIL.sub("<email>", s)
    if " at " in low or "at)" in low or "at]" in low or "at}" in low:
        s = _EMAIL_OBFUSCATED.sub("<email>", s)
    if "=" in s:
        s = _DN.sub("<dn>", s)
    if "-" in s:
        s = _UUID.sub("<serial>", s)
    if "s" in low:
        s = _SERIAL_KEYED.sub(r"\1<serial>", s)
    if ":" in s or "-" in s or "." in s:
        s = _MAC_KEYED.sub(r"\1<mac>", s)
        s = _MAC.sub("<mac>", s)
    if ":" in s:
        s = _IPV6.sub(_ip6, s)        # before dates: 10:00:00 is never a valid IPv6
        s = _IPV6_GLUED.sub(_ip6_glued, s)
    s = _DATES.sub("<date>", s)
    if "." in s:
        s = _FQDN.sub(_fqdn, s)       # before IPv4: 1.2.3.4.static.isp.net is one host
    if "0x" in low:
        s = _HEX_IP.sub(_hex_ip, s)
    if "." in s:
        s = _IPV4.sub(_ip4, s)
    if "-" in s or "_" in s:
        s = _TOKEN.sub(_dashed_token, s)
    if "-" in s:
        s = _WORDRUN.sub(_dashed_ip6, s)
    if "local" in low:
        s = _LOCALHOST.sub("<host>", s)
    if "=" in s or ":" in s:
        s = _COUNTER.sub(r"\1<n>", s)
    if len(s) >= 8:
        s = _BASE64.sub("<serial>", s)
        s = _LONGHEX.sub("<serial>", s)
        s = _LONGNUM.sub("<n>", s)
        if free:
            s = _INT_IP.sub(_int_ip, s)
    if free:
        s = redact_host_words(s)
    return s


_ESCAPES = re.compile(r"(\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}))")


def redact(text: str | None, free: bool = False) -> str:
    """The public form of a banner's text (see the module docstring);
    ``free=True`` for free-text positions, where host-name-shaped words and
    8-digit integers go too."""
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
    # Full-width digits and letters are their ASCII selves to every pattern
    # below (and to a reader); zero-width characters only hide a token.
    s = drop_invisible(unicodedata.normalize("NFKC", s))
    s = s.replace("\r\n", "\n").strip()
    # Unsafe characters are escaped first and the escapes (also the \\xNN of
    # invalid UTF-8) split the text: no pattern reads one as part of a token,
    # so the second pass sees what the first saw (idempotence).
    s = escape_unsafe(s)
    s = "".join(part if i % 2 else _patterns(part, free) for i, part in enumerate(_ESCAPES.split(s)))
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
