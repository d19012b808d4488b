"""Microsoft SQL Server versions (TDS PRELOGIN ``VERSION`` option).

Input: the ``mssql`` banner -- zgrab2's ``version`` (``14.0.3015``, built
from the PRELOGIN reply's major, minor and build number), or a version
string as SQL Server prints it (``10.50.1600.1``, ``8.00.2039``).

The subject is the canonical ``major.minor.build`` with zero padding
dropped (``8.00.2039`` -> ``8.0.2039``; the minor of ``10.50`` is fifty, so
it stays). Rules map the major.minor to the release name (14.0 is SQL
Server 2017) -- product names carry the release, ``version`` the build.

Public form: the canonical version (a product build number identifies
nothing but the patch level).
"""
from __future__ import annotations

import dataclasses
import re

from scanners.protocols.rules import as_text

NAME = "mssql"

_VERSION = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{1,5})(?:\.(\d{1,5}))?(?![\d])")


@dataclasses.dataclass(frozen=True)
class MssqlBanner:
    major: int | None
    minor: int | None
    build: int | None
    subject: str
    public: str


def parse(banner: str | bytes | None, banner_type: str | None = None) -> MssqlBanner:
    m = _VERSION.search(as_text(banner))
    if not m:
        return MssqlBanner(None, None, None, "", "")
    major, minor, build = (int(m.group(i)) for i in (1, 2, 3))
    canonical = f"{major}.{minor}.{build}"
    return MssqlBanner(major, minor, build, canonical, canonical)
