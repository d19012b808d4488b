"""The leak corpus of issue 14: identifiers planted in banners, each on more
than k hosts, through the real pipeline and renderer; the built site and
its downloads must not name one of them, in any spelling.

The corpus is identifier spellings x protocols x banner types x templated
fields: every spelling (``SPELLINGS``) is put into every banner template
(``TEMPLATES``: free text of SSH, SMTP, FTP, HTTP status line, Server value
and title, POP3/IMAP greetings no module reads, LDAP vendorVersion, PPTP
vendor; and the rule templates that fill version, product and OS from the
banner). One week of masscan ndjson is written with each (template,
spelling) banner on ``HOSTS_PER_CASE`` hosts (> k), processed with
``process_week`` and rendered with ``build_site``; then every published file
is scanned:

* for the planted addresses and every scanned host's own address, in every
  spelling (``leakscan.find_addresses``: dotted, dashed, glued, hex,
  integer, leading zeros, full width, IPv6 compressed/dashed);
* for the planted names, serials, DNs, e-mail parts, MAC and UUID, as text;
* for raw control, bidi, line-separator and noncharacter code points.

Every count is a real count: nothing is mocked, and a published identifier
fails the test with the file it is in.
"""
from __future__ import annotations

import json
import os
import re

import pytest

from scanners.protocols.leakscan import find_addresses

pytestmark = pytest.mark.slow

K = 10
HOSTS_PER_CASE = K + 2
WEEK = "2026-W48"
TS = 1795567001          # inside 2026-W48

# (label, spelling in the banner, planted addresses it spells, planted words)
SPELLINGS = [
    ("glued", "ip10.20.16.40", ["10.20.16.40"], []),
    ("addr.port", "10.20.15.40.21", ["10.20.15.40"], []),
    ("ec2", "ec2-10-20-5-40", ["10.20.5.40"], []),
    ("dynamic", "dynamic-ip-10-20-6-40", ["10.20.6.40"], []),
    ("underscore", "ip_10_20_7_40", ["10.20.7.40"], []),
    ("hex", "0x0a140a28", ["10.20.10.40"], []),
    ("hexdots", "0x0a.0x14.0x0c.0x28", ["10.20.12.40"], []),
    ("integer", "16909070", ["1.2.3.14"], []),
    ("zeros", "0010.0020.0003.0040", ["10.20.3.40"], []),
    ("fullwidth", "\uff11\uff10.\uff12\uff10.\uff11\uff17.\uff14\uff10", ["10.20.17.40"], []),
    ("v6host", "host:2001:db8::40", ["2001:db8::40"], []),
    ("v6glued", "v2001:db8::41", ["2001:db8::41"], []),
    ("v6dashed", "2001-db8-77-a--40", ["2001:db8:77:a::40"], []),
    ("mac", "MAC:00:0c:29:3e:5f:7a", [], ["00:0c:29", "000c29", "0c:29:3e"]),
    ("serial", "SN:FCZ1241X0AB", [], ["fcz1241x0ab"]),
    ("dn", "CN=dc01,OU=Servers,DC=corp,DC=example", [], ["dc01", "ou=servers", "dc=corp"]),
    ("email", "postmaster(at)corp(dot)com", [], ["postmaster", "corp(dot)"]),
    ("uuid", "3f2b8c1e-9a4d-4e2f-8b7a-1c2d3e4f5a6b", [], ["3f2b8c1e"]),
    ("rdns", "40.16.20.10.in-addr.arpa", ["10.20.16.40"], ["in-addr"]),
    ("rdns-isp", "c-10-20-6-40.hsd1.example.net", ["10.20.6.40"], ["hsd1"]),
    ("fqdn", "bastion.corp.example", [], ["bastion"]),
    ("label", "corp-web01", [], ["corp-web01"]),
    ("label2", "exch-db3", [], ["exch-db3"]),
    ("label3", "fileserver7", [], ["fileserver7"]),
]
CONTROLS = "\x1b[2J\x07\x9b31m\u202e\u2066\u2028\u2029\x85\ufdd0"

# (label, banner type, template); {x} is the spelling.
TEMPLATES = [
    ("ssh-version", "ssh", "SSH-2.0-OpenSSH_{x}"),
    ("ssh-comment", "ssh", "SSH-2.0-OpenSSH_7.4p1 {x}"),
    ("ssh-cisco", "ssh", "SSH-2.0-Cisco-{x}"),
    ("ssh-software", "ssh", "SSH-2.0-{x}"),
    ("smtp-greeting", "smtp", "220 {x} ESMTP Postfix"),
    ("smtp-text", "smtp", "220 mx ESMTP Postfix ready for {x}"),
    ("smtp-continuation", "smtp", "220-mx ESMTP Exim 4.96\n220 welcome {x}"),
    ("ftp-welcome", "ftp", "220 Welcome to {x} FTP service"),
    ("ftp-proftpd", "ftp", "220 ProFTPD 1.3.5e Server ({x})"),
    ("http-reason", "http", "HTTP/1.1 200 {x}\r\nServer: nginx\r\n\r"),
    ("http-server", "http.server", "Apache/2.4.1 (Unix) {x}"),
    ("http-jetty", "http.server", "Jetty({x})"),
    ("http-iis", "http.server", "Microsoft-IIS/{x}"),
    ("title", "title", "Welcome to {x}"),
    ("pop3", "pop", "+OK {x} POP3 server ready"),
    ("imap", "imap", "* OK [CAPABILITY IMAP4rev1] {x} ready"),
    ("ldap", "ldap", "vendorName: 389 Project\nvendorVersion: 389-Directory/{x}\nsupportedLDAPVersion: 3\n"),
]


def _pptp(hostname: str, vendor: str) -> str:
    """A PPTP Start-Control-Connection-Reply as masscan's hex dump, with the
    host name and vendor fields set (64 bytes each, NUL-padded)."""
    # the fixed part of pptp.toml's TP-Link example: length, type, cookie,
    # reply type, version, result, framing, bearer, channels, firmware
    body = bytes.fromhex("009c00011a2b3c4d" "0002000001000100" "0000000000000000" "00010001")
    assert len(body) == 28
    name = hostname.encode()[:64].ljust(64, b"\0")
    vend = vendor.encode()[:64].ljust(64, b"\0")
    return (body + name + vend).hex()


def _rec(ip: str, port: int, service: str | None, banner: str | None) -> bytes:
    base = {"ip": ip, "timestamp": str(TS), "port": port, "proto": "tcp"}
    if service is None:
        rec = dict(base, rec_type="status", data={"status": "open", "reason": "syn-ack", "ttl": 64})
    else:
        rec = dict(base, timestamp=str(TS + 5), rec_type="banner", data={"service_name": service, "banner": banner})
    return json.dumps(rec, separators=(",", ":")).encode() + b"\n"


PORTS = {"ssh": 22, "smtp": 25, "ftp": 21, "http": 80, "http.server": 80, "title": 80, "pop": 110,
         "imap": 143, "ldap": 389, "pptp": 1723}


def corpus() -> tuple[bytes, set[str], set[str]]:
    """(masscan ndjson, every address written or spelled, every planted word)."""
    cases = [(f"{t}:{s}", bt, tpl.replace("{x}", x)) for t, bt, tpl in TEMPLATES for s, x, _, _ in SPELLINGS]
    cases += [(f"pptp:{s}", "pptp", _pptp(f"TP-LINK_SMB_{x}", "TP-LINK")) for s, x, _, _ in SPELLINGS]
    cases += [(f"pptp-vendor:{s}", "pptp", _pptp("local", x)) for s, x, _, _ in SPELLINGS]
    cases += [(f"controls:{bt}", bt, tpl.replace("{x}", CONTROLS)) for _, bt, tpl in TEMPLATES]
    addresses = {a for _, _, spelled, _ in SPELLINGS for a in spelled}
    words = {w for _, _, _, ws in SPELLINGS for w in ws}
    out = []
    for n, (_, banner_type, banner) in enumerate(cases):
        for h in range(HOSTS_PER_CASE):
            # 198.18.0.0/15 is the benchmark range the tests may use; one /24
            # per (case, host) pair keeps each host its own responder.
            ip = f"198.{18 + (n * HOSTS_PER_CASE + h) // 65536}.{(n * HOSTS_PER_CASE + h) // 256 % 256}." \
                 f"{(n * HOSTS_PER_CASE + h) % 256}"
            addresses.add(ip)
            port = PORTS[banner_type]
            out.append(_rec(ip, port, None, None))
            out.append(_rec(ip, port, banner_type, banner))
    return b"".join(out), addresses, words


_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufdd0-\ufdef\ufffe\uffff]")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from pipelines.config import RunConfig
    from pipelines.report.golden import golden_identity
    from pipelines.report.render import build_site
    from pipelines.week import process_week
    base = tmp_path_factory.mktemp("leak")
    raw, out = os.path.join(base, "raw"), os.path.join(base, "out")
    os.makedirs(os.path.join(raw, WEEK))
    data, addresses, words = corpus()
    with open(os.path.join(raw, WEEK, "masscan-leak-corpus.ndjson"), "wb") as f:
        f.write(data)
    cfg = RunConfig(week=WEEK, raw=raw, out=out, k=K, allow_special_purpose=True).validate()
    manifest = process_week(cfg, ["--runner=FnApiRunner"])
    files = build_site(out, "2026-11-30", K, identity=golden_identity())
    aggregates = {}
    agg_dir = os.path.join(out, f"week={WEEK}", "aggregates")
    for name in sorted(os.listdir(agg_dir)) if os.path.isdir(agg_dir) else ():
        with open(os.path.join(agg_dir, name), "rb") as f:
            aggregates[f"aggregates/{name}"] = f.read()
    return files, aggregates, addresses, words, manifest, out


def _texts(files: dict[str, bytes]):
    for path, data in sorted(files.items()):
        if path.endswith(".parquet"):
            import io
            import pyarrow.parquet as pq
            table = pq.read_table(io.BytesIO(data))
            yield path, "\n".join(str(v) for c in table.columns for v in c.to_pylist())
        else:
            yield path, data.decode("utf-8", "replace")


def test_corpus_reaches_the_site(published):
    """The corpus is really published: its banners are counted above k,
    so a zero below is the gate's and the redactor's doing, not k's."""
    files, _, _, _, _, out = published
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    agg = pq.read_table(os.path.join(out, f"week={WEEK}", "aggregates", "aggregates.parquet"))
    banners = agg.filter(pc.equal(agg.column("dimension"), "banner"))
    assert banners.num_rows > 50
    assert pc.max(banners.column("hosts_raw")).as_py() >= HOSTS_PER_CASE
    assert any(p.startswith("data/") for p in files) and any(p.endswith(".html") for p in files)


def test_no_planted_identifier_is_published(published):
    files, aggregates, addresses, words, _, _ = published
    leaks = []
    for path, text in _texts({**files, **aggregates}):
        for addr in find_addresses(text, addresses):
            leaks.append((path, "address", addr))
        low = text.lower()
        for w in words:
            if w in low:
                leaks.append((path, "word", w))
    assert leaks == []


def test_no_raw_control_characters_are_published(published):
    files, aggregates, _, _, _, _ = published
    bad = [(path, hex(ord(m.group(0)))) for path, text in _texts({**files, **aggregates})
           for m in _UNSAFE.finditer(text)]
    assert bad == []


def test_refused_values_are_counted(published):
    """Templated fields the gate refused are published as <redacted> and
    the manifest counts their hosts per dimension."""
    _, _, _, _, manifest, _ = published
    redacted = manifest["public_redacted"]
    assert redacted.get("version", 0) >= HOSTS_PER_CASE
