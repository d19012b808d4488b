"""What 2013 servers said: banner catalogs and their rendering.

``service_params(kind, rng, ctx)`` fixes a service's software once (which
SSH version, which web server and title, which mail greeting);
``masscan_banners(svc, ts)`` renders the banner records masscan would have
written for it at time ``ts`` (dates in greetings and HTTP headers follow
the scan clock). Distributions are shaped after 2013 scan reports: OpenSSH
4.3/5.3 lead SSH, Apache 2.2 leads HTTP, Postfix/Exim/Exchange lead SMTP.
"""
from __future__ import annotations

import dataclasses
import random
import re
import time

from scanners.synth import writers as w

# Most common first; weights fall off like Zipf (1/rank^1.1).
SSH_IDENTS = (
    "SSH-2.0-OpenSSH_4.3", "SSH-2.0-OpenSSH_5.3", "SSH-2.0-dropbear_0.46", "SSH-2.0-OpenSSH_5.1p1 Debian-5",
    "SSH-2.0-OpenSSH_5.9p1 Debian-5ubuntu1", "SSH-2.0-OpenSSH_5.5p1 Debian-6+squeeze3",
    "SSH-2.0-OpenSSH_5.1p1 FreeBSD-20080901", "SSH-1.99-Cisco-1.25", "SSH-2.0-ROSSSH", "SSH-2.0-OpenSSH_6.0p1 Debian-4",
    "SSH-2.0-OpenSSH_5.3p1 Debian-3ubuntu7", "SSH-2.0-dropbear_0.52", "SSH-2.0-OpenSSH_5.9p1 Debian-5ubuntu1.1",
    "SSH-2.0-OpenSSH_4.7p1 Debian-8ubuntu1.2", "SSH-2.0-OpenSSH_5.8p1 Debian-7ubuntu1", "SSH-2.0-OpenSSH_6.1",
    "SSH-2.0-dropbear_2012.55", "SSH-2.0-OpenSSH_5.5p1 Debian-6+squeeze2", "SSH-2.0-OpenSSH_5.4p1 FreeBSD-20100308",
    "SSH-2.0-OpenSSH_6.2", "SSH-2.0-OpenSSH_5.2", "SSH-2.0-Cisco-1.25", "SSH-2.0-OpenSSH_6.1p1 Debian-4",
    "SSH-2.0-OpenSSH_5.8p2_hpn13v11 FreeBSD-20110503", "SSH-2.0-OpenSSH_4.4", "SSH-2.0-Sun_SSH_1.1.4",
    "SSH-2.0-OpenSSH_3.9p1", "SSH-2.0-mod_sftp/0.9.7", "SSH-2.0-OpenSSH_6.2p2 Ubuntu-6", "SSH-2.0-WeOnlyDo 2.1.3",
    "SSH-2.0-HUAWEI-1.5", "SSH-2.0-OpenSSH_5.0", "SSH-2.0-ZyXEL SSH server", "SSH-2.0-RomSShell_4.31",
    "SSH-1.5-Cisco-1.25", "SSH-2.0-dropbear_0.48", "SSH-2.0-OpenSSH_4.2", "SSH-2.0-NetScreen", "SSH-2.0-SSHD",
    "SSH-2.0-OpenSSH_5.6", "SSH-2.0-OpenSSH_4.5p1 FreeBSD-20061110", "SSH-2.0-dropbear_0.51", "SSH-2.0-OpenSSH_6.0",
)
SSH_WEIGHTS = tuple(1.0 / (rank + 1) ** 1.1 for rank in range(len(SSH_IDENTS)))

_WORDS = ("blue", "north", "river", "stone", "cedar", "falcon", "harbor", "summit", "pixel", "orbit",
          "delta", "maple", "silver", "prairie", "coral", "vertex", "lumen", "quartz", "tundra", "willow",
          "kestrel", "meadow", "granite", "ember", "nimbus", "aurora", "canyon", "zephyr", "atlas", "bravo")
_TLDS = ("com", "com", "com", "net", "net", "org", "de", "ru", "com.br", "cn", "co.uk", "fr", "it", "nl",
         "pl", "jp", "es", "com.au", "in", "ca")
_HOSTNAME = re.compile(r"\b[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)+")
_EMAIL = re.compile(r"[\w.+-]+@[\w.-]+\w")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclasses.dataclass(frozen=True)
class HostContext:
    ip: str
    domain: str
    flavor: str      # nix / win / emb
    scanner_ip: str


def domain(rng: random.Random) -> str:
    return f"{rng.choice(_WORDS)}{rng.choice(_WORDS)}{rng.randrange(2, 99) if rng.random() < .3 else ''}.{rng.choice(_TLDS)}"


def http_date(ts: int) -> str:
    """RFC 1123 date, locale-free (``Mon, 09 Sep 2013 02:13:01 GMT``)."""
    t = time.gmtime(ts)
    return f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"


def mail_date(ts: int, offset_h: int, pad: bool) -> str:
    """``Mon, 9 Sep 2013 04:13:01 +0200`` (Sendmail/Exchange) or day-padded (Exim)."""
    t = time.gmtime(ts + offset_h * 3600)
    day = f"{t.tm_mday:02d}" if pad else str(t.tm_mday)
    return (f"{_DAYS[t.tm_wday]}, {day} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {'+' if offset_h >= 0 else '-'}{abs(offset_h):02d}00")


# -- HTTP -------------------------------------------------------------------------
# (server header or None, family, weight) per flavor.
_HTTP_SERVERS = {
    "nix": (("Apache/2.2.22 (Ubuntu)", "apache", 10), ("Apache/2.2.15 (CentOS)", "apache", 8),
            ("Apache", "apache", 8), ("Apache/2.2.3 (CentOS)", "apache", 5), ("Apache/2.2.16 (Debian)", "apache", 5),
            ("nginx", "nginx", 5), ("nginx/1.2.1", "nginx", 3), ("nginx/1.4.1", "nginx", 2),
            ("lighttpd/1.4.28", "nginx", 2), ("Apache-Coyote/1.1", "apache", 2), ("Apache/2.4.6 (Unix)", "apache", 1),
            (None, "apache", 3)),
    "win": (("Microsoft-IIS/7.5", "iis", 10), ("Microsoft-IIS/6.0", "iis", 6), ("Microsoft-IIS/8.0", "iis", 3),
            ("Microsoft-IIS/7.0", "iis", 3), ("Microsoft-HTTPAPI/2.0", "iis", 3)),
    "emb": (("micro_httpd", "emb", 4), ("RomPager/4.07 UPnP/1.0", "emb", 3), ("Boa/0.94.14rc21", "emb", 3),
            ("GoAhead-Webs", "emb", 2), ("mini_httpd/1.19 19dec2003", "emb", 2),
            ("Allegro-Software-RomPager/4.34", "emb", 1), ("thttpd/2.25b 29dec2003", "emb", 1), (None, "emb", 1)),
}
_TITLES = {
    "apache": (None, None, "Index of /", "Test Page for the Apache HTTP Server on Red Hat Enterprise Linux",
               "403 Forbidden", "404 Not Found", "Parallels Plesk Panel", "Welcome to {www}", "{Name} - Home"),
    "nginx": ("Welcome to nginx!", "Welcome to nginx!", "404 Not Found", "Welcome to {www}", "{Name}"),
    "iis": ("IIS7", "IIS7", "Under Construction", "IIS Windows Server", "Outlook Web App", "{Name} Intranet"),
    "emb": ("Router", "Web Management", "NETGEAR Router", "TP-LINK", "Login", None),
}
_HEADER_ORDER = {
    "apache": ("Date", "Server", "Last-Modified", "ETag", "Accept-Ranges", "Content-Length", "Vary",
               "Connection", "Content-Type"),
    "nginx": ("Server", "Date", "Content-Type", "Content-Length", "Last-Modified", "Connection", "Accept-Ranges"),
    "iis": ("Content-Type", "Last-Modified", "Accept-Ranges", "ETag", "Server", "X-Powered-By", "Date",
            "Connection", "Content-Length"),
    "emb": ("Server", "Date", "Content-Type", "Connection"),
}
# (title bytes, Server header override or None): script injection, attribute
# breakout, Latin-1 and control bytes (not UTF-8), and honest UTF-8.
HOSTILE_HTTP = ((b"<script>alert(1)</script>", None), (b'"><img src=x onerror=alert(1)>', None),
                (b"P\xe1gina principal", b"Apache/2.2.3 (Red Hat) \xff\xfe"),
                (b"Admin\x00Panel\x1b[31m", None), ("Café del Mar – Inicio".encode(), None),
                ("Caf\u00e9 Fixture \u0026 \"quoted\"".encode("utf-8"), None))


def _pick(rng: random.Random, table):
    return rng.choices(table, [row[-1] for row in table])[0]


def _http_params(rng: random.Random, ctx: HostContext) -> dict:
    server, family, _ = _pick(rng, _HTTP_SERVERS[ctx.flavor])
    name = ctx.domain.split(".")[0].capitalize()
    www = f"www.{ctx.domain}"
    p = {"server": server.encode() if server else None, "family": family, "status": "200 OK",
         "length": rng.randrange(120, 12000), "etag": rng.getrandbits(40),
         "modified": rng.randrange(1262304000, 1378000000), "names": []}
    title = rng.choice(_TITLES[family])
    if family == "emb" and rng.random() < .3:
        p.update(status="401 Unauthorized", title=None, realm=rng.choice(("TP-LINK Wireless N Router WR740N",
                                                                          "NETGEAR DGN2200", "Broadband Router")))
        return p
    if family != "emb" and rng.random() < .08:
        p.update(status="302 Found", title=None, location=f"http://{www}/")
        p["names"].append(www)
        return p
    if title is not None and "{" in title:
        title = title.format(www=www, Name=name)
        if www in title:
            p["names"].append(www)
    p["title"] = title.encode() if title is not None else None
    return p


def _http_header_text(p: dict, ts: int) -> bytes:
    """masscan's ``http`` banner: the response head with its final CRLF cut to ``\\r\\n\\r``."""
    vals = {"Date": http_date(ts), "Server": p["server"], "Last-Modified": http_date(p["modified"]),
            "ETag": (f'"{p["etag"]:x}:0"' if p["family"] == "iis" else f'"{p["etag"] >> 20:x}-{p["length"]:x}-{p["etag"] & 0xfffff:x}"'),
            "Accept-Ranges": "bytes", "Content-Length": str(p["length"]), "Vary": "Accept-Encoding",
            "Connection": "close", "X-Powered-By": "ASP.NET",
            "Content-Type": "text/html" if p["family"] != "apache" else "text/html; charset=UTF-8"}
    lines = [f"HTTP/1.{0 if p['family'] == 'emb' else 1} {p['status']}".encode()]
    for name in _HEADER_ORDER[p["family"]]:
        value = vals[name]
        if value is None:
            continue
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    if "location" in p:
        lines.insert(2, b"Location: " + p["location"].encode())
    if "realm" in p:
        lines.insert(2, b'WWW-Authenticate: Basic realm="' + p["realm"].encode() + b'"')
    return b"\r\n".join(lines) + b"\r\n\r"


# -- FTP / SMTP greetings (templates: {host} {domain} {ip} {date...} {scanner}) --------------
_FTP = {
    "nix": ((["220 (vsFTPd 2.2.2)"], "530 Please login with USER and PASS.", 10),
            (["220 (vsFTPd 2.0.5)"], "530 Please login with USER and PASS.", 5),
            (["220 ProFTPD 1.3.3a Server (Debian) [{ip}]"], "500 AUTH not understood", 6),
            (["220 ProFTPD 1.3.4a Server (ProFTPD Default Installation) [{ip}]"], "500 AUTH not understood", 3),
            (["220---------- Welcome to Pure-FTPd [privsep] ----------", "220-You are user number 1 of 50 allowed.",
              "220-Local time is now {hhmm}. Server port: 21.", "220 You will be disconnected after 15 minutes of inactivity."],
             "500 This security scheme is not implemented", 4),
            (["220 {host} FTP server ready."], "500 'AUTH TLS': command not understood.", 2),
            (["220-Welcome to {host}", "220 Contact: webmaster@{domain}"], "500 AUTH not understood", 1),
            (["220 Servidor FTP de Pe\xf1a"], "530 Identifiquese", 1)),
    "win": ((["220 Microsoft FTP Service"], "534 Local policy on server does not allow TLS secure connections.", 8),
            (["220-FileZilla Server version 0.9.41 beta", "220 Please visit http://sourceforge.net/projects/filezilla/"],
             "502 Explicit TLS authentication not allowed", 4)),
    "emb": ((["220 {host} FTP server (GNU inetutils 1.4.1) ready."], "500 AUTH: command not understood.", 2),
            (["220 DiskStation FTP server ready."], "500 'AUTH TLS': command not understood.", 3)),
}
_SMTP = {
    "nix": ((["220 mx1.{domain} ESMTP Postfix (Ubuntu)"],
             ["250-mx1.{domain}", "250-PIPELINING", "250-SIZE 10240000", "250-VRFY", "250-ETRN", "250-STARTTLS",
              "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 DSN"], "220 2.0.0 Ready to start TLS", 10),
            (["220 mail.{domain} ESMTP Exim 4.80 {date_exim}"],
             ["250-mail.{domain} Hello masscan [{scanner}]", "250-SIZE 52428800", "250-8BITMIME", "250-PIPELINING",
              "250 HELP"], "454 TLS currently unavailable", 7),
            (["220 {host} ESMTP Sendmail 8.14.4/8.14.4; {date_mail}"],
             ["250-{host} Hello [{scanner}], pleased to meet you", "250-ENHANCEDSTATUSCODES", "250-PIPELINING",
              "250-8BITMIME", "250-SIZE", "250-DSN", "250 HELP"], "454 4.3.0 TLS not available", 4),
            (["220 {host} ESMTP ready; report abuse to postmaster@{domain}"],
             ["250-{host}", "250-PIPELINING", "250 8BITMIME"], "502 unimplemented (#5.5.1)", 2)),
    "win": ((["220 mail.{domain} Microsoft ESMTP MAIL Service ready at {date_mail}"],
             ["250-mail.{domain} Hello [{scanner}]", "250-SIZE", "250-PIPELINING", "250-DSN", "250-ENHANCEDSTATUSCODES",
              "250-STARTTLS", "250-AUTH NTLM", "250-8BITMIME", "250-BINARYMIME", "250 CHUNKING"],
             "220 2.0.0 SMTP server ready", 1),),
}
_MEMCACHED = ("1.4.13", "1.4.5", "1.4.14", "1.4.15", "1.4.4", "1.4.7", "1.2.8")
_MYSQL = ("5.5.31-0ubuntu0.12.04.1", "5.1.69", "5.5.32", "5.1.70-cll", "5.5.32-cll", "5.1.66-0+squeeze1",
          "5.5.31-MariaDB", "5.1.71-community", "5.5.33-31.1", "5.6.13", "5.5.28-log")
_MSSQL = ((10, 50, 1600), (10, 50, 4000), (10, 0, 5500), (9, 0, 5000), (11, 0, 3000), (10, 50, 2500), (8, 0, 2039))
# postmaster.c line numbers of the two startup errors, one pair per release family (fixtures).
_POSTGRES = ((1995, 2090), (2010, 2118), (2015, 2125), (2031, 2141))


def _dialogue_params(rng: random.Random, ctx: HostContext, table) -> dict:
    entry = _pick(rng, table[ctx.flavor if ctx.flavor in table else "nix"])
    host = f"{rng.choice(('mail', 'mx', 'smtp', 'ftp', 'srv', 'host'))}{rng.randrange(1, 9)}.{ctx.domain}"
    fields = {"host": host, "domain": ctx.domain, "ip": ctx.ip, "scanner": ctx.scanner_ip}
    template = "\n".join([line for part in entry[:-2] for line in part] + [entry[-2]])
    # Render once without the clock to see which names the greeting will carry.
    text = template.format(hhmm="", date_exim="", date_mail="", **fields)
    names = {n for n in _HOSTNAME.findall(text) if n == ctx.domain or n.endswith("." + ctx.domain)}
    return {"lines": entry[:-1], "fields": fields, "offset": rng.choice((-5, 0, 1, 2, 8)),
            "names": sorted(names), "emails": sorted(set(_EMAIL.findall(text))),
            "ips": [ip for ip, mark in ((ctx.ip, "{ip}"), (ctx.scanner_ip, "{scanner}")) if mark in template]}


def service_params(kind: str, rng: random.Random, ctx: HostContext) -> dict:
    """The fixed facts of one service (software, versions, names it will say)."""
    if kind == "ssh":
        return {"ident": rng.choices(SSH_IDENTS, SSH_WEIGHTS)[0]}
    if kind == "http":
        return _http_params(rng, ctx)
    if kind == "tls":
        if rng.random() < .07:
            return {"alert": rng.choice((0x28, 0x46, 0x50))}
        cn = rng.choice((f"www.{ctx.domain}", f"*.{ctx.domain}", f"mail.{ctx.domain}", "localhost.localdomain"))
        return {"version": rng.choices(("TLS/1.0", "TLS/1.1", "SSLv3"), (85, 12, 3))[0],
                "cipher": rng.choice((0x35, 0x2f, 0x5, 0x4, 0x39, 0xc014, 0xc013)), "cn": cn,
                "names": [cn.lstrip("*.")] if "localhost" not in cn else []}
    if kind == "ftp":
        return _dialogue_params(rng, ctx, _FTP)
    if kind == "smtp":
        return _dialogue_params(rng, ctx, _SMTP)
    if kind == "memcached":
        return {"version": rng.choice(_MEMCACHED), "uptime": rng.randrange(3600, 400 * 86400)}
    if kind == "mysql":
        return {"version": rng.choice(_MYSQL), "connection_id": rng.randrange(1, 900000),
                "scramble": bytes(rng.choice(range(0x21, 0x7f)) for _ in range(20))}
    if kind == "mssql":
        return {"version": rng.choice(_MSSQL), "encrypt": rng.choice(("ENCRYPT_OFF", "ENCRYPT_OFF", "ENCRYPT_ON"))}
    if kind == "postgres":
        return {"lines": rng.choice(_POSTGRES)}
    if kind == "ike":
        return {"size": rng.choice((92, 96, 108, 132, 240))}
    return {}


def single_responder_params(rng: random.Random) -> dict:
    """One embedded box's answers, shared by a whole /24 (byte-identical banners)."""
    return {"ssh": {"ident": "SSH-2.0-dropbear_0.52"},
            "http": {"server": b"micro_httpd", "family": "emb", "status": "200 OK", "title": b"Router",
                     "length": 0, "etag": 0, "modified": 0, "names": []}}


def masscan_banners(kind: str, p: dict, ts: int) -> list[tuple[str, bytes]]:
    """The banner records masscan 1.3.2 writes for a service seen at ``ts``."""
    if kind == "ssh":
        return [("ssh", p["ident"].encode())]
    if kind == "http":
        if p.get("single_responder"):
            ts -= ts % 86400  # the box's clock is stuck at midnight: every address sends the same bytes
        out = [("http.server", p["server"])] if p["server"] is not None else []
        if p.get("title") is not None:
            out.append(("title", p["title"]))
        return out + [("http", _http_header_text(p, ts))]
    if kind == "tls":
        if "alert" in p:
            return [("ssl", f" ALERT(0x02{p['alert']:02x}) ".encode())]
        return [("ssl", f"{p['version']} cipher:0x{p['cipher']:x}, {p['cn']}".encode())]
    if kind in ("ftp", "smtp"):
        f = dict(p["fields"], hhmm=time.strftime("%H:%M", time.gmtime(ts + p["offset"] * 3600)),
                 date_exim=mail_date(ts, p["offset"], True), date_mail=mail_date(ts, p["offset"], False))
        lines = [[line.format(**f).encode("latin-1") for line in part] for part in p["lines"][:-1]]
        greeting = [line for part in lines for line in part]
        return [(kind, w.masscan_dialogue(greeting, p["lines"][-1].format(**f).encode("latin-1")))]
    if kind == "memcached":
        return [("memcached", f"uptime={p['uptime'] + ts % 86400} time={ts - 5} version={p['version']} ".encode())]
    return []
