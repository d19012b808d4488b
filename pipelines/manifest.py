"""The run manifest: per-file and total counts that prove nothing was lost.

For every input file and for the week:

    read == accepted + quarantined + excluded + merged

and for every input file its bytes (``bytes_identity``, issue 13): the raw
bytes are decoded or in a damaged range, the decompressed bytes are in lines
the readers judged or in a damaged range.

``read`` and ``quarantined_at_read`` come from the reader, ``quarantined``
adds what validation refused, ``excluded`` is the opt-out count, and
``accepted``/``merged`` come from the dedup stage. They are counted in
different stages, so the identity is a real check, not arithmetic: if it does
not hold the manifest says so and the run fails.

The manifest holds no wall-clock time, so the same inputs give the same bytes.
"""
from __future__ import annotations

import json

from pipelines.coverage import coverage
from pipelines.schema import CLEAN_SCHEMA, QUARANTINE_SCHEMA, field_docs

MANIFEST_VERSION = 1
COUNT_KEYS = ("read", "accepted", "quarantined", "excluded", "merged")


class IdentityError(Exception):
    """The accounting identity failed: a record was lost or counted twice."""


def build_manifest(week: str, reports: list[dict], counts: dict, written: dict,
                   run_info: dict, seen: tuple[int | None, int | None] = (None, None)) -> dict:
    """``seen``: the earliest first_seen and latest last_seen of the clean
    rows (UTC microseconds), shown beside the week's window."""
    files_counts = counts.get("files", {})
    files = []
    totals = {k: 0 for k in COUNT_KEYS}
    reasons_total: dict[str, int] = {}
    excluded_total: dict[str, int] = {}     # ExclusionReason value -> records
    damaged = 0
    for rep in sorted(reports, key=lambda r: r["file"]):
        c = files_counts.get(rep["file"], {})
        entry = {
            "file": rep["file"],
            "bytes": rep["bytes"],
            "sha256": rep["sha256"],
            "format": rep["format"],
            "compression": rep["compression"],
            "tool": rep["tool"],
            "tool_version": rep["tool_version"],
            "facts": rep["facts"],
            "read": rep["read"],
            "accepted": c.get("accepted", 0),
            "quarantined": c.get("quarantined", 0),
            "excluded": c.get("excluded", 0),
            "merged": c.get("merged", 0),
            "quarantine_reasons": dict(sorted(c.get("reasons", {}).items())),
            "excluded_reasons": dict(sorted(c.get("excluded_reasons", {}).items())),
            "damaged": bool(rep["damage"]),
            "damage": rep["damage"],
        }
        if "bytes_accounting" in rep:   # issue 13: bytes are accounted too
            entry["bytes_accounting"] = rep["bytes_accounting"]
            entry["salvage"] = rep.get("salvage", [])
            entry["bytes_identity_holds"] = bytes_identity(rep["bytes_accounting"], rep["damage"])
        entry["identity_holds"] = (entry["read"] == sum(entry[k] for k in COUNT_KEYS[1:])
                                   and entry.get("bytes_identity_holds", True))
        for k in COUNT_KEYS:
            totals[k] += entry[k]
        for r, n in entry["quarantine_reasons"].items():
            reasons_total[r] = reasons_total.get(r, 0) + n
        for r, n in entry["excluded_reasons"].items():
            excluded_total[r] = excluded_total.get(r, 0) + n
        damaged += entry["damaged"]
        files.append(entry)
    totals["identity_holds"] = (totals["read"] == sum(totals[k] for k in COUNT_KEYS[1:])
                                and all(f["identity_holds"] for f in files))
    return {
        "manifest_version": MANIFEST_VERSION,
        "week": week,
        "totals": totals,
        "files_read": len(files),
        "files_damaged": damaged,
        "quarantine_reasons": dict(sorted(reasons_total.items())),
        "excluded_reasons": dict(sorted(excluded_total.items())),
        "coverage": coverage(files),
        "port_evidence": port_evidence(files),
        "time": {"first_seen": iso_us(seen[0]), "last_seen": iso_us(seen[1]),
                 "window": run_info.get("week_window")},
        "identification": identification_shares(counts.get("identification", {})),
        # hosts per aggregate dimension whose value the public gate refused (gate.py)
        "public_redacted": counts.get("public_redacted", {}),
        "observations": written,
        "run": run_info,
        "files": files,
        "schema": {"clean": field_docs(CLEAN_SCHEMA), "quarantine": field_docs(QUARANTINE_SCHEMA)},
    }


def iso_us(us: int | None) -> str | None:
    """UTC microseconds as ISO 8601 text (``2013-09-09T00:00:00Z``)."""
    if us is None:
        return None
    import datetime
    t = datetime.datetime.fromtimestamp(us / 1_000_000, datetime.timezone.utc)
    return t.isoformat(timespec="microseconds" if us % 1_000_000 else "seconds").replace("+00:00", "Z")


def port_evidence(files: list[dict]) -> dict:
    """Where ports did not come from the records themselves: zgrab2 records
    whose port is the module's default (``assumed``, counted per file), and
    bare zmap lists whose one port came from the sidecar or the file name."""
    assumed = {f["file"]: f["facts"]["ports_assumed"] for f in files if f["facts"].get("ports_assumed")}
    given = {f["file"]: {"source": f["facts"]["port_source"], "port": f["facts"].get("file_port")}
             for f in files if f["facts"].get("port_source") in ("sidecar", "filename")}
    return {"records_port_assumed": sum(assumed.values()), "files_port_assumed": assumed,
            "files_port_given": given}


def identification_shares(by_port: dict) -> dict:
    """Per "<port>/<transport>": the open hosts, how many the rules identified,
    how many had a banner no rule names (unidentified) or no banner at all,
    and unidentified_share = 1 - identified / open (6 decimals)."""
    out = {}
    for key, c in sorted(by_port.items()):
        entry = {k: int(c.get(k, 0)) for k in ("open", "identified", "unidentified", "no_banner")}
        entry["unidentified_share"] = (round(1 - entry["identified"] / entry["open"], 6)
                                       if entry["open"] else None)
        out[key] = entry
    return out


def bytes_identity(accounts: dict, damage: list[dict]) -> bool:
    """Every byte of a file is accounted for (issue 13):

    * raw: ``discovered_bytes == raw_decoded + sum(length of compressed damage)``
      and the decompressor saw every byte read (``raw_bytes == read_bytes``);
    * decompressed: ``decompressed_bytes == record_bytes + sum(length of the
      other damage)``, and no reader stopped early (``unread_bytes`` is 0).

    The counts come from different layers (reader, decompressor, line
    splitter), so a layer that drops bytes breaks it. A file never opened
    (a FIFO, a bad link) holds no bytes to account for."""
    if "decompressed_bytes" not in accounts:
        return not accounts.get("read_bytes") and not accounts.get("discovered_bytes")
    raw_lost = sum(d.get("length") or 0 for d in damage if d.get("compressed"))
    lost = sum(d.get("length") or 0 for d in damage if not d.get("compressed"))
    return (accounts["discovered_bytes"] == accounts["raw_decoded"] + raw_lost
            and accounts["raw_bytes"] == accounts["read_bytes"]
            and accounts["decompressed_bytes"] == accounts.get("record_bytes", 0) + lost
            and not accounts.get("unread_bytes"))


def check_identity(manifest: dict) -> None:
    if not manifest["totals"]["identity_holds"]:
        bad = [f["file"] for f in manifest["files"] if not f["identity_holds"]]
        t = manifest["totals"]
        unaccounted = [f["file"] for f in manifest["files"] if not f.get("bytes_identity_holds", True)]
        raise IdentityError(
            f"accounting identity failed for week {manifest['week']}: read {t['read']} != "
            f"accepted {t['accepted']} + quarantined {t['quarantined']} + excluded {t['excluded']}"
            f" + merged {t['merged']} (files: {', '.join(bad) or 'totals only'})"
            + (f"; bytes not all accounted in: {', '.join(unaccounted)}" if unaccounted else ""))


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=True) + "\n"
