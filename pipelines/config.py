"""Run configuration: built once from the command line, validated up front,
then passed inward as plain picklable values (no globals, no environment
reads inside transforms)."""
from __future__ import annotations

import dataclasses
import os

from pipelines.normalize import DEFAULT_WEEK_SLACK_HOURS, Limits, week_window
from pipelines.responders import ResponderThresholds

# The embedded default GeoIP data (DB-IP Lite, CC BY 4.0) ships in the repo as
# .xz; it is decompressed once into the cache folder on first use.
GEOIP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "geoip")
DEFAULT_COUNTRY_DB = os.path.join(GEOIP_DIR, "dbip-country-lite.mmdb.xz")
DEFAULT_ASN_DB = os.path.join(GEOIP_DIR, "dbip-asn-lite.mmdb.xz")
DEFAULT_GEOIP_CACHE = os.path.join(GEOIP_DIR, "cache")

DEFAULT_RAW = "data/raw"
DEFAULT_OUT = "data/out"
# --buckets when none is given: one dedup bucket per 2 MiB of raw input, rounded
# up to a power of two, at most AUTO_BUCKETS_MAX. Each bucket costs a fixed
# ~55-80 ms (its merge, enrichment, partial aggregates and one Parquet file
# per port; docs/BENCHMARKS.md), which is most of a small week's run, while a
# big week needs enough buckets to keep each merge small and both workers
# busy. The input size is known before the graph is built and is the same on
# every rerun, so the choice is deterministic (the manifest records it).
# At most 64, not 32: a week run on two threads merges two buckets at once,
# and at 10M records 32 buckets peaked at 1.05-1.13 GB against 0.82-0.90 GB
# with 64, for ~65 ms of CPU per extra bucket: 5-12% more CPU at 10M
# (docs/BENCHMARKS.md). Per 2 MiB, not per MiB: the 2M bench week in 16
# buckets ran 10.2-11.4 s against 11.8-15.0 s in 32 for the same peak memory
# (503-573 MB against 477-605; 8 buckets reached 823 MB), the demo week in 2
# 3.8-4.3 s against 4.0-4.7 s in 4; weeks of more than 64 MiB still get 64.
AUTO_BYTES_PER_BUCKET = 2 << 20
AUTO_BUCKETS_MAX = 64
DEFAULT_BATCH_ROWS = 100_000
# The merge holds at most about this many records at once: a bigger bucket is
# merged in several passes (pipelines/spill.py). ~0.8 KB of working memory per
# record, measured in docs/BENCHMARKS.md.
DEFAULT_MERGE_ROWS = 1_000_000
# How the dedup shuffle moves rows: "files" (Arrow IPC under the run's staging
# folder; only names cross the GroupByKey, so memory stays flat on one
# machine) or "beam" (the packed rows themselves through the runner's
# shuffle, for runners with a managed shuffle service such as Dataflow's).
SHUFFLE_MODES = ("files", "beam")
DEFAULT_REGRESSION_THRESHOLD = 0.02
PIPELINE_VERSION = "0.1.0"
# Ports that get their own clean-data partition (the weekly plan's ports, see
# scanners/scanplan.toml). Observations on any other port (a sweep of 1-1024,
# a zgrab2 run on 8080) go to port-other, so a few hosts answering on every
# port cannot turn a week into thousands of tiny files.
DEFAULT_PARTITION_PORTS = (21, 22, 25, 80, 88, 389, 443, 500, 636, 1433, 1723, 3306, 5432, 11211)


def auto_buckets(input_bytes: int) -> int:
    """The default bucket count for a week of ``input_bytes`` raw bytes (see AUTO_BYTES_PER_BUCKET)."""
    want = max(1, -(-max(0, input_bytes) // AUTO_BYTES_PER_BUCKET))
    return min(AUTO_BUCKETS_MAX, 1 << (want - 1).bit_length())


class ConfigError(Exception):
    """A setting cannot work; the message tells the operator what to change."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    week: str
    raw: str = DEFAULT_RAW
    out: str = DEFAULT_OUT
    exclude: str | None = None
    buckets: int | None = None      # None: auto_buckets() of the week's input size
    batch_rows: int = DEFAULT_BATCH_ROWS
    merge_rows: int = DEFAULT_MERGE_ROWS
    shuffle: str = "files"
    limits: Limits = Limits()
    responders: ResponderThresholds = ResponderThresholds()
    country_db: str | None = DEFAULT_COUNTRY_DB
    asn_db: str | None = DEFAULT_ASN_DB
    geoip_cache: str = DEFAULT_GEOIP_CACHE
    partition_ports: tuple[int, ...] = DEFAULT_PARTITION_PORTS
    k: int = 10                     # public cells: values seen on fewer hosts fold into "other"
    pause_at: str | None = None     # crash-test seam, see pipelines/faults.py
    week_slack_hours: int = DEFAULT_WEEK_SLACK_HOURS   # records this far outside the ISO week still count
    allow_special_purpose: bool = False   # keep IANA special-purpose space (test networks only)
    # The regression guard (pipelines/regression.py): a week that would replace
    # its published version with fewer usable records (by more than this
    # share), more damaged files or lower coverage is refused unless accepted.
    regression_threshold: float = DEFAULT_REGRESSION_THRESHOLD
    accept_regression: bool = False
    # A file may decompress to at most max(256 MiB, this x its size): a bomb
    # becomes decompression_limit damage, not an outage (issue 13).
    max_inflation: float = 100.0

    def validate(self) -> "RunConfig":
        from pipelines.discover import DiscoveryError, check_week
        try:
            check_week(self.week)
        except DiscoveryError as exc:
            raise ConfigError(str(exc)) from None
        if self.buckets is not None and not 1 <= self.buckets <= 4096:
            raise ConfigError(f"--buckets must be 1..4096, not {self.buckets}")
        if not 1_000 <= self.batch_rows <= 5_000_000:
            raise ConfigError(f"--batch-rows must be 1000..5000000, not {self.batch_rows}")
        if self.merge_rows < 1_000:
            raise ConfigError(f"--merge-rows must be at least 1000, not {self.merge_rows}")
        if self.shuffle not in SHUFFLE_MODES:
            raise ConfigError(f"--shuffle must be one of {', '.join(SHUFFLE_MODES)}, not {self.shuffle!r}")
        if self.exclude and not os.path.isfile(self.exclude) and "://" not in self.exclude:
            raise ConfigError(f"--exclude {self.exclude}: no such file")
        if self.exclude:
            from pipelines.optout import OptOutError, load_optout
            try:
                load_optout(self.exclude)  # parse errors surface now, not on a worker
            except OptOutError as exc:
                raise ConfigError(str(exc)) from None
        if not 0 <= self.week_slack_hours <= 168:
            raise ConfigError(f"--week-slack must be 0..168 hours, not {self.week_slack_hours}")
        if not 0 <= self.regression_threshold < 1:
            raise ConfigError(f"--regression-threshold must be 0 <= T < 1 (a share, 0.02 = 2%), "
                              f"not {self.regression_threshold}")
        if self.k < 1:
            raise ConfigError(f"-k must be at least 1, not {self.k}")
        if not self.max_inflation >= 1:
            raise ConfigError(f"--max-inflation must be at least 1 (decompressed/compressed), "
                              f"not {self.max_inflation}")
        th = self.responders
        if th.min_hosts < 2 or not 0 < th.min_share <= 1 or th.many_ports < 2:
            raise ConfigError("responder thresholds: --responder-min-hosts >= 2, "
                              "0 < --responder-min-share <= 1, --many-ports >= 2")
        from pipelines.geoip import GeoIPError, open_database
        for role, path, flag in (("country", self.country_db, "--geoip-country-db"),
                                 ("asn", self.asn_db, "--geoip-asn-db")):
            if path:
                try:
                    open_database(path, role, self.geoip_cache).close()
                except GeoIPError as exc:
                    raise ConfigError(f"{flag}: {exc}") from None
        return self

    def sized_for(self, input_bytes: int) -> "RunConfig":
        """This config with its bucket count settled (auto_buckets when none was given)."""
        if self.buckets is not None:
            return self
        return dataclasses.replace(self, buckets=auto_buckets(input_bytes))

    def normalize_limits(self) -> Limits:
        """The validation limits with this week's time window."""
        return dataclasses.replace(self.limits, window=week_window(self.week, self.week_slack_hours),
                                   exclude_special_purpose=not self.allow_special_purpose)

    def run_info(self) -> dict:
        """What the manifest records about how the week was processed (no clock)."""
        from pipelines.state import file_sha256
        info = {
            "pipeline_version": PIPELINE_VERSION,
            "code_sha256": _code(),
            "buckets": self.buckets,
            "max_banner_bytes": self.limits.max_banner_bytes,
            "exclude_file": os.path.basename(self.exclude) if self.exclude else None,
            "exclude_sha256": file_sha256(self.exclude) if self.exclude else None,
            "optout": _optout_summary(self.exclude),
            "responder_thresholds": dataclasses.asdict(self.responders),
            "k": self.k,
            "week_window": _window_info(self.week, self.week_slack_hours),
            "special_purpose": _special_info(self.allow_special_purpose),
            "geoip": _geoip_info(self.country_db, self.asn_db, self.geoip_cache),
            # what change detection compares: the list's meaning, not its bytes
            "optout_entries_sha256": _optout_digest(self.exclude),
            "optout_list": _optout_list(self.out, self.exclude),
        }
        return info


def _window_info(week: str, slack_hours: int) -> dict:
    from pipelines.manifest import iso_us
    lo, hi = week_window(week, slack_hours)
    return {"start": iso_us(lo), "end": iso_us(hi), "slack_hours": slack_hours}


def _special_info(allowed: bool) -> dict:
    from pipelines.special_purpose import default
    return {"excluded": not allowed, **default().summary()}


def _optout_summary(path: str | None) -> dict | None:
    if not path:
        return None
    from pipelines.optout import load_optout
    return load_optout(path).summary()


def _optout_list(out: str, path: str | None) -> dict | None:
    # whether the list applied is OUT's recorded one (pipelines/optout_state.py)
    from pipelines.optout_state import manifest_facts
    return manifest_facts(out, path)


def _optout_digest(path: str | None) -> str | None:
    from pipelines.state import optout_digest
    return optout_digest(path)


def _geoip_info(country: str | None, asn: str | None, cache: str) -> dict:
    """Type, build date and checksum of each database, so a week reprocessed
    later can say which data it used."""
    from pipelines.geoip import database_info
    out = {}
    for role, path in (("country", country), ("asn", asn)):
        if path:
            info = dict(database_info(path, cache))
            info["file"] = os.path.basename(path)
            out[role] = info
    return out


def _code() -> str:
    from pipelines.state import code_fingerprint
    return code_fingerprint()
