"""Run configuration: built once from the command line, validated up front,
then passed inward as plain picklable values (no globals, no environment
reads inside transforms)."""
from __future__ import annotations

import dataclasses
import hashlib
import os

from pipelines.normalize import Limits

DEFAULT_RAW = "data/raw"
DEFAULT_OUT = "data/out"
DEFAULT_BUCKETS = 16
DEFAULT_BATCH_ROWS = 100_000
PIPELINE_VERSION = "0.1.0"


class ConfigError(Exception):
    """A setting cannot work; the message tells the operator what to change."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    week: str
    raw: str = DEFAULT_RAW
    out: str = DEFAULT_OUT
    exclude: str | None = None
    buckets: int = DEFAULT_BUCKETS
    batch_rows: int = DEFAULT_BATCH_ROWS
    limits: Limits = Limits()

    def validate(self) -> "RunConfig":
        from pipelines.discover import DiscoveryError, check_week
        try:
            check_week(self.week)
        except DiscoveryError as exc:
            raise ConfigError(str(exc)) from None
        if not 1 <= self.buckets <= 4096:
            raise ConfigError(f"--buckets must be 1..4096, not {self.buckets}")
        if not 1_000 <= self.batch_rows <= 5_000_000:
            raise ConfigError(f"--batch-rows must be 1000..5000000, not {self.batch_rows}")
        if self.exclude and not os.path.isfile(self.exclude) and "://" not in self.exclude:
            raise ConfigError(f"--exclude {self.exclude}: no such file")
        return self

    def run_info(self) -> dict:
        """What the manifest records about how the week was processed (no clock)."""
        info = {
            "pipeline_version": PIPELINE_VERSION,
            "buckets": self.buckets,
            "max_banner_bytes": self.limits.max_banner_bytes,
            "exclude_file": os.path.basename(self.exclude) if self.exclude else None,
            "exclude_sha256": _sha256(self.exclude) if self.exclude else None,
        }
        return info


def _sha256(path: str) -> str:
    from apache_beam.io.filesystems import FileSystems
    h = hashlib.sha256()
    with FileSystems.open(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
