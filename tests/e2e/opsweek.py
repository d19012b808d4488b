"""A tiny real week for the operator tests: masscan ``-oD`` ndjson shards
(gzip), public addresses, timestamps inside the ISO week, so every stage of
the real pipeline runs on it in a few seconds."""
from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os


def recent_week(weeks_back: int = 1, today: datetime.date | None = None) -> str:
    """The ISO week ``weeks_back`` weeks before today's (not stale for status --check)."""
    day = (today or datetime.date.today()) - datetime.timedelta(weeks=weeks_back)
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


def shard_lines(week: str, hosts: int, shards: int, k: int) -> list[bytes]:
    t0 = int(datetime.datetime.combine(
        datetime.date.fromisocalendar(int(week[:4]), int(week[6:]), 3), datetime.time(12),
        datetime.timezone.utc).timestamp())
    lines = []
    for i in range(k - 1, hosts, shards):
        rec = {"ip": f"31.13.{64 + i // 250}.{1 + i % 250}", "timestamp": str(t0 + i), "port": 22,
               "proto": "tcp", "rec_type": "status", "data": {"status": "open", "reason": "syn-ack", "ttl": 64}}
        lines.append(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
    return lines


def shard_name(k: int, shards: int) -> str:
    return f"masscan-p22-shard{k}of{shards}.ndjson.gz"


def write_shard(raw, week: str, k: int, lines: list[bytes], shards: int = 2, cut: bool = False) -> str:
    path = os.path.join(str(raw), week, shard_name(k, shards))
    blob = gzip.compress(b"".join(lines), mtime=0)
    with open(path, "wb") as f:
        f.write(blob[: len(blob) // 2] if cut else blob)
    return path


def tiny_week(raw, week: str, hosts: int = 400, shards: int = 2) -> None:
    os.makedirs(os.path.join(str(raw), week), exist_ok=True)
    for k in range(1, shards + 1):
        write_shard(raw, week, k, shard_lines(week, hosts, shards, k), shards)


def tree(path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``path`` (hidden ones too)."""
    out = {}
    for d, _, files in os.walk(str(path)):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, str(path))] = hashlib.sha256(fh.read()).hexdigest()
    return out
