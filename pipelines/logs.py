"""Logging for operators: JSON lines to a file, short text to stderr.

``setup_logging(out)`` sends every record to ``OUT/logs/portcensus.log`` as
one JSON object per line (time, level, message and any ``extra=`` fields) and
to stderr as ``portcensus: message``. Every JSON line carries the run's id
(``run_id``, one per command), so the lines of one cron run can be picked out;
the CLI ends every command with a ``finished`` line holding its exit code and
duration, no-op runs included. Progress lines are drawn only when stderr is a
terminal, so cron mail stays quiet.

Under ``--quiet`` stderr carries portcensus's own warnings and anyone's errors
only, and ``runner_stderr_captured`` keeps the runner's worker processes
(``--direct_running_mode multi_processing`` starts SDK workers that log INFO
to the stderr they inherit) from writing to it: their output goes to the log.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import uuid

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        doc.update({k: v for k, v in vars(record).items() if k not in _STD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, sort_keys=True)


class OneLine(logging.Formatter):
    """``portcensus: message`` and nothing else: tracebacks go to the log
    file only, never to the operator's terminal or cron mail."""

    def format(self, record: logging.LogRecord) -> str:
        return f"portcensus: {record.getMessage()}"


def _not_beam_noise(record: logging.LogRecord) -> bool:
    # Beam warns at import time about Google Cloud client libraries we do not use.
    return "apitools not found" not in record.getMessage()


_RUN_ID = [uuid.uuid4().hex[:12]]


def start_run() -> str:
    """A new run id: the CLI calls this once per command (tests call the
    entry point several times in one process)."""
    _RUN_ID[0] = uuid.uuid4().hex[:12]
    return _RUN_ID[0]


def run_id() -> str:
    """The current run's id (in every log line and the ``finished`` line)."""
    return _RUN_ID[0]


def _with_run_id(record: logging.LogRecord) -> bool:
    record.run_id = _RUN_ID[0]
    return True


def _ours_or_error(record: logging.LogRecord) -> bool:
    return record.name.startswith("portcensus") or record.levelno >= logging.ERROR


def setup_logging(out: str | None, verbose: bool = False, quiet: bool = False) -> None:
    """stderr (and ``OUT/logs/portcensus.log`` when ``out`` is given). With
    ``quiet`` other libraries' warnings (Beam's) go to the file only."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.INFO)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.INFO if verbose else logging.WARNING)
    err.setFormatter(OneLine())
    err.addFilter(_not_beam_noise)
    if quiet and not verbose:
        err.addFilter(_ours_or_error)
    root.addHandler(err)
    if out:
        os.makedirs(os.path.join(out, "logs"), exist_ok=True)
        fh = logging.FileHandler(os.path.join(out, "logs", "portcensus.log"))
        fh.setLevel(logging.INFO)
        fh.setFormatter(JsonLines())
        fh.addFilter(_not_beam_noise)
        fh.addFilter(lambda r: r.name.startswith("portcensus") or r.levelno >= logging.WARNING)
        fh.addFilter(_with_run_id)
        root.addHandler(fh)


OUR_PREFIX = "portcensus: "
MAX_CAPTURED_LINES = 200


@contextlib.contextmanager
def runner_stderr_captured(enabled: bool = True):
    """Point file descriptor 2 at a temporary file while the block runs.

    Worker processes a runner starts inherit it, so their log lines (Beam's
    SDK harness prints ~20 INFO lines per worker before it reads any option)
    land there instead of in cron mail. Afterwards our own lines
    (``portcensus: ...``) are written to the real stderr, and the rest goes
    to the log file as one ``runner output`` record (last 200 lines), so a
    worker's traceback is kept where the operator looks for details."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace").splitlines()
            ours = [line for line in text if line.startswith(OUR_PREFIX)]
            theirs = [line for line in text if not line.startswith(OUR_PREFIX)]
            for line in ours:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()
            if theirs:
                logging.getLogger("portcensus.runner").info(
                    "runner output", extra={"lines": len(theirs), "text": "\n".join(theirs[-MAX_CAPTURED_LINES:])})


class Progress:
    """A one-line progress display on a terminal; silent otherwise (cron)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done: int, total: int, label: str, *rest) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * done / max(total, 1))
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:50]:<50}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
