"""Build the public site: load the weeks, make every page's context, render
every file into memory, and only then write the folder (Pelican's order:
context first, writer last).

    build_site(out, build_date, k) -> {relative path: bytes}
    write_site(files, site)           # whole folder swapped in at once
    render_site(out, site, ...)       # both

Output for the same inputs is byte-identical: no clock (the build date is an
input), sorted iteration, fixed formatting (filters.py). Jinja runs with
autoescape and StrictUndefined; banners reach HTML only through autoescaped
expressions, never through Markdown.
"""
from __future__ import annotations

import datetime
import glob
import os
import re
import shutil
import tempfile

import jinja2

from pipelines.aggregate import DEFAULT_K
from pipelines.publish import recover, swap_in
from pipelines.report.charts import charts_of, spec as chart_spec
from pipelines.report.filters import FILTERS, atom_date
from pipelines.report.identity import SiteIdentity, load_site_config
from pipelines.report.load import ReportError, load_weeks
from pipelines.report.site import SiteOptions, build_pages
from pipelines.report.tabledata import table_csv, table_json, table_rows  # noqa: F401 (re-exported)

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "report_templates")
STATIC = ("style.css", "favicon.svg")
MARKER = ".portcensus-site"
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def environment(templates: str = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def check_build_date(build_date: str) -> str:
    if not DATE_RE.match(build_date or ""):
        raise ReportError(f"build date {build_date!r} is not YYYY-MM-DD")
    try:
        datetime.date.fromisoformat(build_date)
    except ValueError:
        raise ReportError(f"build date {build_date!r} is not a real date") from None
    return build_date


def load_plan(path: str | None):
    if not path:
        return None
    from scanners.plan import PlanError, parse_plan
    try:
        return parse_plan(_read(path))
    except (OSError, PlanError) as exc:
        raise ReportError(f"scan plan {path}: {exc}") from None


def build_site(out: str, build_date: str | None = None, k: int = DEFAULT_K, plan=None,
               from_clean: bool = False, templates: str = TEMPLATES,
               identity: SiteIdentity | None = None) -> dict[str, bytes]:
    """{site-relative path: bytes} for every file of the site. ``identity``
    (operator, contact, scanner ranges; default: the demo's, see
    pipelines/report/identity.py) names its plan when ``plan`` is None."""
    if not isinstance(k, int) or k < 1:
        raise ReportError(f"k must be an integer >= 1, not {k!r}")
    identity = identity or load_site_config()
    if plan is None and identity.plan:
        plan = load_plan(identity.plan)
    weeks = load_weeks(out, k, from_clean)
    # Without an explicit date the site is dated by its data (the Monday
    # after the latest week), never by the clock.
    date = check_build_date(build_date) if build_date else atom_date(weeks[-1].week)[:10]
    opts = SiteOptions(build_date=date, k=k, plan=plan, identity=identity,
                       methodology_md=_read(os.path.join(templates, "prose", "methodology.md")),
                       optout_md=_read(os.path.join(templates, "prose", "optout.md")))
    pages, tables, extra = build_pages(weeks, opts)
    env = environment(templates)
    files: dict[str, bytes] = {}
    for path, output in pages:
        files[path] = env.get_template(output.template).render(
            page=output.page, root=output.page.meta.root).encode("utf-8")
    base = identity.base_url
    for _, output in pages:
        for c in charts_of(output.page):
            for path, data in ((c.path, c.svg), (c.spec, chart_spec(c, base))):
                if files.setdefault(path, data) != data:
                    raise ReportError(f"two different charts want {path}")
    for t in tables:
        files[t.csv] = table_csv(t)
        files[t.json] = table_json(t)
    files.update(extra)
    for w in weeks:
        for name, data in w.downloads.items():
            files[f"data/{w.week}/{name}"] = data
    for name in STATIC:
        with open(os.path.join(templates, "static", name), "rb") as f:
            files[f"static/{name}"] = f.read()
    files[MARKER] = b"Written by 'portcensus render'; the whole folder is replaced on each build.\n"
    return files


def _safe(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def write_site(files: dict[str, bytes], site: str, before_swap=None) -> None:
    """Write ``files`` as the folder ``site``, replacing a previous build in one
    swap. Refuses a folder that holds anything but a previous build (or a lone
    README.md, which is kept)."""
    site = os.path.abspath(site)
    keep: dict[str, bytes] = {}
    recover(site)
    if os.path.lexists(site):
        if not os.path.isdir(site):
            raise ReportError(f"{site} exists and is not a folder")
        entries = set(os.listdir(site))
        if MARKER not in entries and entries - {"README.md"}:
            raise ReportError(f"refusing to replace {site}: it holds files that 'portcensus render' "
                              "did not write (choose an empty or new --site folder)")
        if "README.md" in entries and "README.md" not in files:
            with open(os.path.join(site, "README.md"), "rb") as f:
                keep["README.md"] = f.read()
    bad = [p for p in files if not _safe(p)]
    if bad:
        raise ReportError(f"refusing to write outside the site folder: {bad[0]!r}")
    parent = os.path.dirname(site)
    os.makedirs(parent, exist_ok=True)
    # Half-written builds of runs that were killed (callers hold the run lock).
    for stale in glob.glob(os.path.join(parent, glob.escape(f".{os.path.basename(site)}.new-") + "*")):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(site)}.new-", dir=parent)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a web server must read the site
        items = sorted({**keep, **files}.items())
        for i, (rel, data) in enumerate(items):
            path = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            if before_swap and i == len(items) // 2:
                before_swap()   # crash-test seam: the new build is half written
        swap_in(tmp, site)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render_site(out: str, site: str, build_date: str | None = None, k: int = DEFAULT_K,
                plan_path: str | None = None, from_clean: bool = False,
                before_swap=None, site_config: str | None = None) -> dict[str, bytes]:
    """Build the site from ``out`` and write it to ``site``; returns the files.
    ``site_config``: TOML file with the [site] table (default: the demo's)."""
    from pipelines.leakcheck import check_build
    from pipelines.week import published_weeks
    files = build_site(out, build_date, k, load_plan(plan_path), from_clean,
                       identity=load_site_config(site_config))
    # The last look before anything is written: a build that names an
    # address of its weeks (or any address/MAC/DN shape) is never swapped in.
    check_build(files, out, published_weeks(out))
    write_site(files, site, before_swap)
    return files
