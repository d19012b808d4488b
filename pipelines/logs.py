"""Logging for operators: JSON lines to a file, short text to stderr.

``setup_logging(out)`` sends every record to ``OUT/logs/portcensus.log`` as
one JSON object per line (time, level, message and any ``extra=`` fields) and
to stderr as ``portcensus: message``. Progress lines are drawn only when
stderr is a terminal, so cron mail stays quiet.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time

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


def setup_logging(out: str | None, verbose: bool = False) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.INFO)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.INFO if verbose else logging.WARNING)
    err.setFormatter(OneLine())
    err.addFilter(_not_beam_noise)
    root.addHandler(err)
    if out:
        os.makedirs(os.path.join(out, "logs"), exist_ok=True)
        fh = logging.FileHandler(os.path.join(out, "logs", "portcensus.log"))
        fh.setLevel(logging.INFO)
        fh.setFormatter(JsonLines())
        fh.addFilter(_not_beam_noise)
        fh.addFilter(lambda r: r.name.startswith("portcensus") or r.levelno >= logging.WARNING)
        root.addHandler(fh)


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
