"""HTTP: the ``Server`` header is the product statement.

Banner types (masscan names; the zgrab2 reader maps ``headers.server[0]`` to
``http.server``):

* ``http.server`` -- the Server header value, e.g. ``nginx/1.22.1``.
* ``http`` -- masscan's response header block: status line and headers, no
  body, CRLF line ends, and the final CRLF cut to ``\\r\\n\\r``.
* ``title`` -- the HTML ``<title>`` text, entities as sent (``&amp;``).

The rule subject is the Server value (from ``http.server``, or found in the
``http`` block), trimmed. A title alone gives no subject.

Public form: for ``http.server`` and ``title`` the redacted text. For the
``http`` header block only the status line and the Server header are kept:
every other header (``Date``, ``ETag``, ``Content-Length``, ``Set-Cookie``,
``Location``) is per-response or per-site and would make each banner unique.
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols.redact import redact
from scanners.protocols.rules import as_text

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
        return HttpBanner(None, None, None, title, (), "", redact(title))
    if banner_type == "http" or (banner_type is None and _STATUS.match(text)):
        status_line, code, server, names = _header_block(text)
        public = "\n".join(
            x for x in (redact(status_line) if status_line else None,
                        f"Server: {redact(server)}" if server is not None else None) if x)
        return HttpBanner(status_line, code, server, None, names, server or "", public)
    server = text.strip()
    return HttpBanner(None, None, server, None, (), server, redact(server))
