"""Exit codes of the ``portcensus`` command, in one place (README, ``--help``).

0 ok; 1 failed; 2 usage or configuration error; 3 published, but some inputs
were damaged; 4 another run holds the lock; 5 the leak check found an
identifier in the new site build, which was not swapped in
(pipelines/leakcheck.py); 6 a week was not replaced because the new run is a
regression; 7 ``status --check`` found a problem.
"""
from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DAMAGED, EXIT_BUSY = 0, 1, 2, 3, 4
EXIT_LEAK = 5           # the site build would publish an identifier: not swapped in (pipelines/leakcheck.py)
EXIT_REGRESSION = 6     # a week was not replaced: the new run is worse (pipelines/regression.py)
EXIT_CHECK = 7          # status --check found a damaged, stale or out-of-date week
# weekly exits with its worst week's code: a failure outranks a blocked
# (leaking) site, which outranks a bad input, which outranks a refused
# regression, which outranks damaged inputs.
_SEVERITY = {EXIT_OK: 0, EXIT_DAMAGED: 1, EXIT_REGRESSION: 2, EXIT_USAGE: 3, EXIT_LEAK: 4, EXIT_FAILED: 9}


def worst(codes) -> int:
    """The most severe of ``codes`` (unknown codes rank just below a failure)."""
    return max(codes, key=lambda code: _SEVERITY.get(code, 8), default=EXIT_OK)


class WeeksFailed(Exception):
    """``weekly`` finished, but some weeks failed (nothing of them was
    published). ``errors``: [(week, exception)]; ``codes``: the other weeks'
    exit codes. ``pipelines.cli.translate`` turns it into the worst code."""

    def __init__(self, message: str, errors: list, codes: list[int]):
        super().__init__(message)
        self.errors, self.codes = errors, codes
