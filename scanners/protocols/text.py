"""The input discipline every protocol parser shares: banners as bounded
text or bytes, and FTP/SMTP transcripts split into replies. Pure.

``rules.py`` re-exports these names (the protocol modules import them from
there).
"""
from __future__ import annotations

import dataclasses
import re

# Every parser and the redactor look at no more than this many characters of a
# banner. Bounded work per banner is what keeps a hostile 1 MB banner from
# costing more than a normal one; real banners (masscan caps its own) are far
# shorter, except HTTP header blocks, which rarely reach 4 KiB.
MAX_PARSE_CHARS = 4096


def as_text(banner: str | bytes | None) -> str:
    """Banner as text, clipped to ``MAX_PARSE_CHARS``.

    Bytes are decoded as UTF-8 with invalid bytes written ``\\xNN`` -- the
    same convention the clean rows use for ``banners`` -- so a parser sees the
    same text whichever form it was handed.
    """
    if banner is None:
        return ""
    if isinstance(banner, (bytes, bytearray, memoryview)):
        banner = bytes(banner[:MAX_PARSE_CHARS * 4]).decode("utf-8", "backslashreplace")
    return banner[:MAX_PARSE_CHARS]


_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_HEX_DUMP = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")


def as_bytes(banner: str | bytes | None) -> bytes:
    """Bytes of a binary banner (PPTP, ISAKMP, Kerberos), clipped.

    Accepts raw bytes, text with ``\\xNN`` escapes for invalid UTF-8 (clean
    rows), or a plain hex dump (zmap's ``data`` field). Undoing the escapes is
    exact except for a banner that itself contained a literal ``\\x41``.
    """
    if banner is None:
        return b""
    if isinstance(banner, (bytes, bytearray, memoryview)):
        return bytes(banner[:MAX_PARSE_CHARS])
    text = banner[:MAX_PARSE_CHARS * 2]
    if _HEX_DUMP.fullmatch(text):
        return bytes.fromhex(text)[:MAX_PARSE_CHARS]
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8", "surrogatepass")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogatepass")
    return bytes(out[:MAX_PARSE_CHARS])


# -- FTP/SMTP replies (RFC 959 4.2, RFC 5321 4.2) -------------------------------
@dataclasses.dataclass(frozen=True)
class Reply:
    code: int | None     # None for a line that is not a reply line
    lines: tuple[str, ...]   # text after "NNN " / "NNN-", one per line

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


_REPLY_LINE = re.compile(r"^([1-5]\d\d)([ -]?)(.*)$")


def split_replies(text: str) -> list[Reply]:
    """Split a server transcript into replies.

    A multi-line reply is ``NNN-text`` lines ended by ``NNN text``; lines in
    between that lack the code (allowed by RFC 959) belong to the open reply.
    Lines are split on ``\\n`` with a trailing ``\\r`` dropped, because masscan
    joins replies with a bare ``\\n`` and zgrab2 keeps ``\\r\\n``.
    """
    replies: list[Reply] = []
    code: int | None = None
    lines: list[str] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        m = _REPLY_LINE.match(line)
        if code is not None:
            if m and int(m.group(1)) == code and m.group(2) != "-":
                lines.append(m.group(3))
                replies.append(Reply(code, tuple(lines)))
                code, lines = None, []
            elif m and int(m.group(1)) == code:
                lines.append(m.group(3))
            else:
                lines.append(line)
            continue
        if m and m.group(2) == "-":
            code, lines = int(m.group(1)), [m.group(3)]
        elif m:
            replies.append(Reply(int(m.group(1)), (m.group(3),)))
        elif line:
            replies.append(Reply(None, (line,)))
    if code is not None:          # cut off inside a multi-line reply
        replies.append(Reply(code, tuple(lines)))
    return replies
