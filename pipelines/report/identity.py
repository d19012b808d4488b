"""Who runs the census and how to reach them: the site's identity, as
configuration.

A scanning project that gives network operators no contact and no source
ranges loses them (they block it, or complain to its upstream). So the site
cannot be built without a contact; the opt-out and methodology pages and
every footer show it.

The settings are the ``[site]`` table of a TOML file::

    [site]
    operator = "Example Census Project"
    contact_email = "census@example.org"       # an e-mail address, or
    contact_url = "https://example.org/contact" # a web page (either is enough)
    pgp_fingerprint = "0123 4567 89AB CDEF 0123  4567 89AB CDEF 0123 4567"  # optional
    scanner_ranges = ["192.0.2.0/24", "2001:db8::/32"]
    policy = "We probe each address at most once per port and week ..."
    base_url = "https://census.example.org/"   # absolute links in the feed
    plan = "demo_plan.toml"                    # optional: the scan plan (relative to this file)
    demo = true                                # optional: mark the site as a demonstration

``identity_from_dict(table)`` takes the table as a dict (so a combined
``--config`` can hand over its own ``[site]`` table); ``load_site_config(path)``
reads a file. Both raise ``SiteConfigError`` with the setting to fix.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib

from pipelines.report.load import ReportError

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO_SITE_CONFIG = os.path.join(HERE, "demo_site.toml")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
URL_RE = re.compile(r"^https?://[^\s<>\"']+$")
FPR_RE = re.compile(r"^[0-9A-Fa-f]{40}$")
KNOWN = {"operator", "contact_email", "contact_url", "pgp_fingerprint", "scanner_ranges", "policy",
         "base_url", "plan", "demo"}


class SiteConfigError(ReportError):
    """The site settings cannot be used; the message names the setting."""


@dataclasses.dataclass(frozen=True)
class SiteIdentity:
    operator: str
    contact_email: str | None
    contact_url: str | None
    pgp_fingerprint: str | None       # 40 hex digits, shown in groups of four
    scanner_ranges: tuple[str, ...]   # networks our probes come from, as CIDR text
    policy: str                       # plain text paragraphs (escaped, never Markdown)
    base_url: str                     # ends with "/"
    plan: str | None = None           # absolute path of the scan plan TOML, if given
    demo: bool = False

    @property
    def pgp_grouped(self) -> str | None:
        if not self.pgp_fingerprint:
            return None
        f = self.pgp_fingerprint.upper()
        return " ".join(f[i:i + 4] for i in range(0, 40, 4))

    @property
    def policy_paragraphs(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in re.split(r"\n\s*\n", self.policy) if p.strip())


def _text(table: dict, key: str, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise SiteConfigError(f"[site] {key} is required")
        return None
    if not isinstance(value, str):
        raise SiteConfigError(f"[site] {key} must be a string, not {type(value).__name__}")
    return value.strip()


def identity_from_dict(table: dict, base_dir: str | None = None) -> SiteIdentity:
    """A ``SiteIdentity`` from the ``[site]`` table (a dict). ``base_dir``
    resolves a relative ``plan`` path (the config file's folder)."""
    if not isinstance(table, dict):
        raise SiteConfigError("[site] must be a table")
    unknown = sorted(set(table) - KNOWN)
    if unknown:
        raise SiteConfigError(f"[site] unknown setting(s): {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(KNOWN))})")
    operator = _text(table, "operator", required=True)
    email, url = _text(table, "contact_email"), _text(table, "contact_url")
    if not email and not url:
        raise SiteConfigError("[site] needs a contact: set contact_email or contact_url, so that network "
                              "operators can reach you and opt out (a site is not built without one)")
    if email and not EMAIL_RE.match(email):
        raise SiteConfigError(f"[site] contact_email {email!r} is not an e-mail address")
    if url and not URL_RE.match(url):
        raise SiteConfigError(f"[site] contact_url {url!r} is not an http(s) URL")
    fpr = _text(table, "pgp_fingerprint")
    if fpr is not None:
        fpr = re.sub(r"\s+", "", fpr)
        if not FPR_RE.match(fpr):
            raise SiteConfigError("[site] pgp_fingerprint must be 40 hexadecimal digits (spaces allowed)")
    ranges = table.get("scanner_ranges", [])
    if not isinstance(ranges, list) or not ranges:
        raise SiteConfigError("[site] scanner_ranges must list the networks the probes come from, "
                              "e.g. [\"192.0.2.0/24\"]")
    nets = []
    for r in ranges:
        try:
            nets.append(str(ipaddress.ip_network(str(r), strict=True)))
        except ValueError as exc:
            raise SiteConfigError(f"[site] scanner_ranges: {r!r} is not a network ({exc})") from None
    policy = _text(table, "policy", required=True)
    base = _text(table, "base_url", required=True)
    if not URL_RE.match(base):
        raise SiteConfigError(f"[site] base_url {base!r} is not an http(s) URL")
    plan = _text(table, "plan")
    if plan and not os.path.isabs(plan):
        plan = os.path.normpath(os.path.join(base_dir or os.getcwd(), plan))
    demo = table.get("demo", False)
    if not isinstance(demo, bool):
        raise SiteConfigError("[site] demo must be true or false")
    return SiteIdentity(operator=operator, contact_email=email, contact_url=url, pgp_fingerprint=fpr,
                        scanner_ranges=tuple(nets), policy=policy,
                        base_url=base if base.endswith("/") else base + "/", plan=plan, demo=demo)


def load_site_config(path: str | None = None) -> SiteIdentity:
    """The ``[site]`` table of the TOML file at ``path`` (default: the demo's)."""
    path = path or DEMO_SITE_CONFIG
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise SiteConfigError(f"site config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SiteConfigError(f"site config {path}: not valid TOML ({exc})") from None
    if "site" not in doc:
        raise SiteConfigError(f"site config {path}: no [site] table")
    return identity_from_dict(doc["site"], os.path.dirname(os.path.abspath(path)))


LEAK_ALLOWLIST = os.path.join(os.path.dirname(HERE), "leak_allowlist.toml")


def allowed_tokens(path: str = LEAK_ALLOWLIST) -> tuple[str, ...]:
    """Address-shaped tokens the site publishes on purpose (our scanner
    ranges), from pipelines/leak_allowlist.toml: leak checks skip exactly these."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    return tuple(sorted((str(a["token"]) for a in doc.get("allow", [])), key=len, reverse=True))


def strip_allowed(data: bytes, tokens: tuple[str, ...] | None = None) -> bytes:
    """``data`` without the allow-listed tokens (for leak checks)."""
    for tok in allowed_tokens() if tokens is None else tokens:
        data = data.replace(tok.encode(), b"")
    return data
