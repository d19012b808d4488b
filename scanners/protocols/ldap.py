"""LDAP root DSE (RFC 4512 section 5.1).

zgrab2's ``ldap`` module reads the root DSE: ``supportedLDAPVersion``,
``supportedCapabilities``, ``domainControllerFunctionality``,
``dnsHostName``, ``namingContexts``, ... (its typed fields are snake_case,
anything else sits in ``other_attributes``, e.g. ``vendorName``,
``vendorVersion``, ``objectClass``).

Input (the ``ldap`` banner): that result object as JSON text, or the root DSE
as LDIF-style ``attribute: value`` lines (``ldapsearch -s base`` output).

What identifies the server:

* Active Directory lists capability ``1.2.840.113556.1.4.800``; AD LDS
  (ADAM) lists ``1.2.840.113556.1.4.1851`` instead;
* ``domainControllerFunctionality`` is the functional level of the DC's own
  Windows release (0 = 2000, 2 = 2003, 3 = 2008, 4 = 2008 R2, 5 = 2012,
  6 = 2012 R2, 7 = 2016 and later, 10 = 2025);
* ``vendorName``/``vendorVersion`` (RFC 3045) for 389 Directory Server,
  eDirectory, ApacheDS; OpenLDAP instead has ``objectClass: OpenLDAProotDSE``.

Subject and public form: ``ad=1;dcfl=7;vendor=;version=;oc=OpenLDAProotDSE,top``
(``ad`` is ``1`` for AD, ``lds`` for AD LDS, ``0`` otherwise). Naming
contexts and host names are never part of it. The subject goes on with
``;ffl=<forestFunctionality>;dfl=<domainFunctionality>;psc=<version>``
(AD's forest and domain levels, on the same scale as ``dcfl``; VMware's
``vmwPlatformServicesControllerVersion``), each only when number- or
version-shaped; ``;`` inside vendorName/vendorVersion becomes ``,`` so a
value cannot start a field of its own.
"""
from __future__ import annotations

import dataclasses
import json
import re

from scanners.protocols.redact import redact
from scanners.protocols.rules import as_text

NAME = "ldap"

AD_OID = "1.2.840.113556.1.4.800"
AD_LDS_OID = "1.2.840.113556.1.4.1851"
_SNAKE = {
    "supported_ldap_version": "supportedLDAPVersion",
    "supported_capabilities": "supportedCapabilities",
    "domain_controller_functionality": "domainControllerFunctionality",
    "dns_host_name": "dnsHostName",
    "naming_contexts": "namingContexts",
    "forest_functionality": "forestFunctionality",
    "domain_functionality": "domainFunctionality",
}
_LINE = re.compile(r"^([A-Za-z][\w-]{0,63}):{1,2} ?(.*)$")


@dataclasses.dataclass(frozen=True)
class LdapBanner:
    attributes: dict            # attribute (lower-case) -> list of values (never public)
    directory: str              # "1" Active Directory, "lds" AD LDS, "0" other
    dc_functionality: int | None
    vendor_name: str | None
    vendor_version: str | None
    object_classes: tuple[str, ...]
    subject: str
    public: str


def _attributes(text: str) -> dict[str, list[str]]:
    attrs: dict[str, list[str]] = {}

    def add(name: str, values) -> None:
        if not isinstance(values, list):
            values = [values]
        attrs.setdefault(name.lower(), []).extend(str(v)[:256] for v in values[:64]
                                                  if isinstance(v, (str, int)))

    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):   # deep nesting is hostile input, not a bug
            obj = None
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key == "other_attributes" and isinstance(value, dict):
                    for k, v in value.items():
                        add(str(k), v)
                else:
                    add(_SNAKE.get(key, key), value)
            return attrs
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            add(m.group(1), m.group(2).strip())
    return attrs


_LEVEL = re.compile(r"[0-9]{1,3}")
_VERSION_SHAPE = re.compile(r"[0-9][\w.+~-]{0,31}")


def _shaped(attrs: dict[str, list[str]], name: str, shape: re.Pattern) -> str:
    value = next(iter(attrs.get(name, ())), "").strip()
    return value if shape.fullmatch(value) else ""


def _level(attrs: dict[str, list[str]], name: str) -> str:
    return _shaped(attrs, name, _LEVEL)


def _field(value: str | None) -> str:
    return (value or "").replace(";", ",").replace("\n", " ")


def parse(banner: str | bytes | None, banner_type: str | None = None) -> LdapBanner:
    attrs = _attributes(as_text(banner))
    caps = set(attrs.get("supportedcapabilities", ()))
    directory = "1" if AD_OID in caps else "lds" if AD_LDS_OID in caps else "0"
    level = next(iter(attrs.get("domaincontrollerfunctionality", ())), "")
    dcfl = int(level) if re.fullmatch(r"[0-9]{1,3}", level) else None
    vendor = next(iter(attrs.get("vendorname", ())), None)
    version = next(iter(attrs.get("vendorversion", ())), None)
    classes = tuple(sorted({c for c in attrs.get("objectclass", ()) if re.fullmatch(r"[\w-]{1,64}", c)}))
    if not attrs:
        return LdapBanner({}, "0", None, None, None, (), "", "")
    subject = (f"ad={directory};dcfl={'' if dcfl is None else dcfl};vendor={_field(vendor)};"
               f"version={_field(version)};oc={','.join(classes)};ffl={_level(attrs, 'forestfunctionality')};"
               f"dfl={_level(attrs, 'domainfunctionality')};"
               f"psc={_shaped(attrs, 'vmwplatformservicescontrollerversion', _VERSION_SHAPE)}")
    public = (f"ad={directory};dcfl={'' if dcfl is None else dcfl};vendor={redact(vendor or '', free=True)};"
              f"version={redact(version or '', free=True)};oc={','.join(classes)}")
    return LdapBanner(attrs, directory, dcfl, vendor, version, classes, subject, public)
