"""masscan ``-oX`` reader (nmap-like XML, masscan ``src/out-xml.c``).

masscan writes one record per line, CRLF-terminated, each record its own
``<host>`` element (so one IP appears many times)::

    <?xml version="1.0"?>
    <!-- masscan v1.0 scan -->
    <nmaprun scanner="masscan" start="1795567013" version="1.0-BETA"  xmloutputversion="1.03">
    <scaninfo type="syn" protocol="tcp" />
    <host endtime="1795567013"><address addr="198.18.0.3" addrtype="ipv4"/><ports><port
      protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/></port></ports></host>
    ...
    <runstats> ... </runstats>
    </nmaprun>

(the ``<host>`` line is wrapped here only for width).

Why line regexes and not an XML parser: the layout is fixed, a damaged or
cut file must still yield every complete ``<host>`` before the damage, and
no entity/DTD expansion can be triggered by hostile input.

Decisions:

* ``endtime`` is the record's timestamp. ``<nmaprun start>`` and
  ``<finished>`` are not used: in ``--readscan`` output they are the
  conversion time. ``version="1.0-BETA"`` is constant across masscan
  releases, so ``tool_version`` stays unset; the value goes to
  ``ctx.facts["nmaprun_version"]``.
* A host with ``<service>`` is a **banner record**: ``status`` and ``reason``
  are null like in every other masscan format, because the ``<state
  state="open" reason="response">`` masscan adds to it is synthesised by the
  XML writer (its reason comes from the banner type, not from a packet).
  ``reason_ttl`` *is* the banner record's TTL, so it is kept as ``ttl``.
* Banners in ``banner="..."`` are masscan's ``\\xNN`` escapes; standard XML
  entities (``&amp;`` ... ``&#NN;``) are decoded first for files that went
  through another XML tool. Unknown entities are left as they are.
* Any other non-blank line is quarantined ``malformed_record`` (e.g. a
  pretty-printed file); a missing ``</nmaprun>`` is ``missing_footer``.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

import pyarrow as pa

from pipelines.schema import QuarantineReason
from scanners.base import RawColumns, ReadContext, lines_with_offsets
from scanners.formats.masscan_text import (
    STATUSES, BadRecord, finish, parse_banner, parse_epoch_us, parse_ip, parse_port,
    parse_service, parse_transport)
from scanners.registry import Format

Q = QuarantineReason

_HOST = re.compile(
    rb'<host endtime="([^"]*)">'
    rb'<address addr="([^"]*)" addrtype="[a-z0-9]*"\s*/>'
    rb'<ports><port protocol="([^"]*)" portid="([^"]*)">'
    rb'<state state="([^"]*)" reason="([^"]*)" reason_ttl="([^"]*)"\s*/>'
    rb'(?:<service name="([^"]*)" banner="([^"]*)"\s*(?:/>|></service>))?'
    rb'</port></ports></host>')
# Lines that are structure, not records.
_STRUCTURE = re.compile(
    rb'<\?xml[ -][^>]*\?>|<!--.*-->|<scaninfo [^>]*/>|<runstats>|</runstats>'
    rb'|<finished [^>]*/>|<hosts [^>]*/>')
_NMAPRUN = re.compile(rb'<nmaprun scanner="masscan"[^>]*>')
_VERSION_ATTR = re.compile(rb' version="([^"]{0,32})"')
_ENTITY = re.compile(rb"&(lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_NAMED = {b"lt": b"<", b"gt": b">", b"amp": b"&", b"quot": b'"', b"apos": b"'"}


def _entity(m: re.Match) -> bytes:
    name = m.group(1)
    if name in _NAMED:
        return _NAMED[name]
    code = int(name[2:], 16) if name[1:2] == b"x" else int(name[1:])
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return m.group(0)  # not a character: keep the text as written
    return chr(code).encode("utf-8")


def xml_unescape(value: bytes) -> bytes:
    """Standard XML entities -> bytes (no DTD, no custom entities)."""
    return _ENTITY.sub(_entity, value) if b"&" in value else value


def _ttl(tok: bytes) -> int:
    if not (tok.isdigit() and len(tok) <= 3) or int(tok) > 255:
        raise BadRecord(Q.MALFORMED_RECORD, "reason_ttl is not 0..255")
    return int(tok)


def _host(cols: RawColumns, off: int, m: re.Match) -> None:
    ts_tok, addr, proto, portid, state, reason, ttl_tok, name, banner = m.groups()
    ts = parse_epoch_us(ts_tok)
    ip = parse_ip(xml_unescape(addr))
    transport = parse_transport(proto)
    port = parse_port(portid)
    ttl = _ttl(ttl_tok)
    if name is not None:
        cols.add(ip=ip, port=port, transport=transport, ttl=ttl, timestamp_us=ts,
                 service=parse_service(xml_unescape(name)),
                 banner=parse_banner(xml_unescape(banner)), offset=off)
        return
    if state not in STATUSES:
        raise BadRecord(Q.MALFORMED_RECORD, "state is not open/closed")
    reason_text = xml_unescape(reason)
    if not reason_text or len(reason_text) > 64 or not reason_text.isascii():
        raise BadRecord(Q.MALFORMED_RECORD, "reason is empty or not ASCII text")
    cols.add(ip=ip, port=port, transport=transport, status=STATUSES[state],
             reason=reason_text.decode("ascii"), ttl=ttl, timestamp_us=ts, offset=off)


def read_xml(chunks: Iterable[bytes], ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """masscan ``-oX`` -> RAW_SCHEMA batches (see module docstring)."""
    cols = RawColumns(ctx, "masscan")
    footer: bool | None = None
    partial: list = []

    def one(off: int, line: bytes) -> bool:
        """Handle one line; False if it is not a complete line of the format."""
        nonlocal footer
        line = line.strip(b" \t\r")
        if not line:
            return True
        m = _HOST.fullmatch(line)
        if m is not None:
            footer = False
            try:
                _host(cols, off, m)
            except BadRecord as e:
                ctx.quarantine(off, e.reason, e.detail, line)
            return True
        if line == b"</nmaprun>":
            footer = True
            return True
        nm = _NMAPRUN.fullmatch(line)
        if nm is not None:
            footer = False
            v = _VERSION_ATTR.search(line)
            if v:
                ctx.facts["nmaprun_version"] = v.group(1).decode("ascii", "replace")
            return True
        if _STRUCTURE.fullmatch(line):
            footer = False  # only </nmaprun> may end the file
            return True
        return False

    for off, line in lines_with_offsets(chunks, ctx, lambda o, d: partial.append((o, d))):
        if not one(off, line):
            footer = False
            detail = ("host element not in masscan's one-line layout"
                      if line.lstrip().startswith(b"<host") else "line is not part of masscan XML")
            ctx.quarantine(off, Q.MALFORMED_RECORD, detail, line)
        yield from cols.maybe_flush()
    if partial and one(*partial[0]):
        partial = []  # a complete last line that only lacks its CRLF
    if partial:
        footer = False
    finish(ctx, footer, partial)
    yield from cols.flush()


def sniff_xml(head: bytes) -> bool:
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<?xml") and _NMAPRUN.search(head[:4096]) is not None


FORMATS = (Format("masscan-xml", "masscan", sniff_xml, read_xml),)
