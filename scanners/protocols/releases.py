"""Release dates and end of life of the top products' versions (data in
``releases.toml``, next to this module; its header says where the dates come
from and how precise they are).

    >>> info = release_info("nginx", "1.22.1", datetime.date(2024, 6, 3))
    >>> info.released, info.match, info.age_days, info.eol, info.end_of_life
    (datetime.date(2022, 10, 19), 'exact', 593, datetime.date(2023, 4, 11), True)

How a version finds its release (versions compare as dotted integers, read
from the start of the string: ``7.4p1`` -> (7, 4), ``10.3.38-MariaDB`` ->
(10, 3, 38)):

* ``exact`` -- a listed version equals it, or is a prefix of it (``7.4`` for
  OpenSSH 7.4p1; ``5.7`` for MySQL 5.7.44, where only series are listed);
* ``at_or_after`` -- only an earlier listed version of the same series (same
  first two numbers) is known: the version came out on or after that date,
  so its age is at most the one given;
* no answer (``None``) when the product has no table, the version is not
  version-shaped, or nothing of its series is listed.

End of life is the one stated for the version's series (``2.2`` for Apache
2.2.34), else unknown (``eol is None``; ``end_of_life`` is then None too).

``AGE_BUCKETS`` / ``age_bucket`` and ``eol_status`` are the closed
vocabularies the aggregates publish (``pipelines/aggregate.py`` dimensions
``version_age`` and ``eol``).
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib.resources
import re
import tomllib

_VERSION = re.compile(r"^v?(\d{1,6}(?:\.\d{1,6})*)")
_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")

# (upper bound in days, exclusive; label). Labels are the published values.
AGE_BUCKETS: tuple[tuple[float, str], ...] = (
    (365, "<1y"), (3 * 365, "1-3y"), (5 * 365, "3-5y"), (10 * 365, "5-10y"), (float("inf"), ">=10y"))
AGE_UNKNOWN = "unknown"
EOL_VALUES = ("end_of_life", "supported", "unknown")


class ReleaseDataError(ValueError):
    """releases.toml is malformed (raised when it is loaded, never per row)."""


@dataclasses.dataclass(frozen=True)
class ReleaseInfo:
    product: str
    version: str                # as given
    listed: str                 # the table version it was matched to
    match: str                  # "exact" | "at_or_after"
    released: datetime.date
    eol: datetime.date | None
    sources: tuple[str, ...]
    age_days: int | None = None       # at the scan date, when one was given
    end_of_life: bool | None = None   # eol passed at the scan date (None: eol or date unknown)


@dataclasses.dataclass(frozen=True)
class _Product:
    releases: tuple[tuple[tuple[int, ...], str, datetime.date], ...]   # sorted by key
    series: dict[tuple[int, ...], datetime.date]
    sources: tuple[str, ...]


def version_key(version: str | None) -> tuple[int, ...] | None:
    """Dotted integers at the start of a version, or None."""
    m = _VERSION.match(version or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def _date(text, where: str) -> datetime.date:
    m = _DATE.match(text) if isinstance(text, str) else None
    if not m:
        raise ReleaseDataError(f"releases.toml {where}: date {text!r} is not YYYY-MM-DD or YYYY-MM")
    try:
        return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
    except ValueError as exc:
        raise ReleaseDataError(f"releases.toml {where}: {exc}") from None


def parse_releases(text: str) -> dict[str, _Product]:
    """{product name: table} from TOML text; raises ReleaseDataError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseDataError(f"releases.toml: {exc}") from None
    out: dict[str, _Product] = {}
    for i, raw in enumerate(doc.get("product", ())):
        names = raw.get("names")
        where = f"product #{i + 1} {names!r}"
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ReleaseDataError(f"releases.toml {where}: needs names")
        if not raw.get("sources") or not raw.get("releases"):
            raise ReleaseDataError(f"releases.toml {where}: needs sources and releases")
        releases = []
        for v, d in raw["releases"].items():
            key = version_key(v)
            if key is None or ".".join(map(str, key)) != v:
                raise ReleaseDataError(f"releases.toml {where}: version {v!r} is not dotted integers")
            releases.append((key, v, _date(d, f"{where} {v}")))
        series = {}
        for s, spec in (raw.get("series") or {}).items():
            key = version_key(s)
            if key is None or not isinstance(spec, dict) or "eol" not in spec:
                raise ReleaseDataError(f"releases.toml {where}: series {s!r} needs an eol")
            series[key] = _date(spec["eol"], f"{where} series {s}")
        product = _Product(tuple(sorted(releases)), series, tuple(raw["sources"]))
        for n in names:
            if n in out:
                raise ReleaseDataError(f"releases.toml: product name {n!r} listed twice")
            out[n] = product
    return out


@functools.cache
def load_releases() -> dict[str, _Product]:
    resource = importlib.resources.files("scanners.protocols").joinpath("releases.toml")
    return parse_releases(resource.read_text(encoding="utf-8"))


def products() -> tuple[str, ...]:
    """The product names that have release data."""
    return tuple(sorted(load_releases()))


def release_info(product: str | None, version: str | None,
                 at: datetime.date | None = None) -> ReleaseInfo | None:
    """Release date, age at ``at`` and end of life of one version (see module doc)."""
    table = load_releases().get(product or "")
    key = version_key(version)
    if table is None or key is None:
        return None
    best = None
    for listed_key, listed, released in table.releases:
        if listed_key == key[:len(listed_key)]:
            best = (listed_key, listed, released, "exact")      # a later exact prefix is more specific
        elif listed_key < key and listed_key[:2] == key[:2] and (best is None or best[3] != "exact"):
            best = (listed_key, listed, released, "at_or_after")
    if best is None:
        return None
    listed_key, listed, released, how = best
    eol = next((d for s, d in sorted(table.series.items(), key=lambda kv: -len(kv[0]))
                if s == key[:len(s)]), None)
    age = (at - released).days if at else None
    ended = (at >= eol) if (at and eol) else None
    return ReleaseInfo(product, version, listed, how, released, eol, table.sources, age, ended)


def age_bucket(info: ReleaseInfo | None) -> str:
    """The published age class of a version at the scan date."""
    if info is None or info.age_days is None:
        return AGE_UNKNOWN
    days = max(info.age_days, 0)
    return next(label for bound, label in AGE_BUCKETS if days < bound)


def eol_status(info: ReleaseInfo | None) -> str:
    if info is None or info.end_of_life is None:
        return "unknown"
    return "end_of_life" if info.end_of_life else "supported"


def week_start(week: str) -> datetime.date:
    """The Monday of an ISO week ``YYYY-Www``: the scan date ages are taken at."""
    m = re.fullmatch(r"(\d{4})-W(\d{2})", week or "")
    if not m:
        raise ValueError(f"not an ISO week: {week!r}")
    return datetime.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
