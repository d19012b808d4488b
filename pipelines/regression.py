"""The regression guard: a week is not silently replaced by a worse copy.

Before a reprocessed week is swapped in (``pipelines.week.process_week``), its
new manifest is compared with the published one. It is a regression when

* it has fewer usable records (``accepted + excluded``) by more than the
  threshold (default 2%): a damaged re-copy, a lost shard. Excluded records
  count as usable because an opt-out list that grew is not damage;
* more of its files are damaged; or
* its coverage estimate (pipelines/coverage.py) is lower.

A regression raises ``RegressionError`` (the CLI's exit code 6) with the diff,
and the published week stays as it was, unless the operator accepts it.

Example (one line, as the CLI prints it)::

    week 2013-W37 was not replaced: the new run is a regression: usable records
    58,812 -> 54,100 (-8.01%, threshold 2%); damaged files 2 -> 3 (newly damaged:
    masscan-p22-shard1of3.ndjson.gz); --accept-regression publishes it anyway
"""
from __future__ import annotations


class RegressionError(Exception):
    """The new run of a week is worse than the published one; ``diff`` lists how."""

    def __init__(self, week: str, diff: list[str]):
        self.week, self.diff = week, diff
        super().__init__(f"week {week} was not replaced: the new run is a regression: "
                         f"{'; '.join(diff)}; --accept-regression publishes it anyway")


def usable(manifest: dict) -> int:
    t = manifest.get("totals", {})
    return int(t.get("accepted", 0)) + int(t.get("excluded", 0))


def _damaged(manifest: dict) -> set[str]:
    return {f["file"] for f in manifest.get("files", []) if f.get("damaged")}


def _coverage(manifest: dict) -> float | None:
    return (manifest.get("coverage") or {}).get("fraction")


def regression_diff(old: dict | None, new: dict, threshold: float) -> list[str]:
    """How ``new`` is worse than the published ``old`` (empty: it is not)."""
    if old is None:
        return []
    diff = []
    before, after = usable(old), usable(new)
    if before and after < before * (1 - threshold):
        diff.append(f"usable records {before:,} -> {after:,} ({100 * (after - before) / before:+.2f}%, "
                    f"threshold {100 * threshold:g}%)")
    d_old, d_new = len(_damaged(old)), len(_damaged(new))
    if d_new > d_old:
        newly = sorted(_damaged(new) - _damaged(old))
        more = f" (newly damaged: {', '.join(newly[:3])}{' ...' if len(newly) > 3 else ''})" if newly else ""
        diff.append(f"damaged files {d_old} -> {d_new}{more}")
    c_old, c_new = _coverage(old), _coverage(new)
    if c_old is not None and c_new is not None and c_new < c_old - 1e-9:
        diff.append(f"coverage {c_old:.4f} -> {c_new:.4f}")
    return diff


def check_regression(old: dict | None, new: dict, threshold: float, accept: bool) -> list[str]:
    """Raise RegressionError when ``new`` is a regression of ``old`` and it was
    not accepted; returns the diff (empty, or accepted) for the log."""
    diff = regression_diff(old, new, threshold)
    if diff and not accept:
        raise RegressionError(new["week"], diff)
    return diff
