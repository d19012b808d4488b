"""A DataTable as data: the CSV and JSON published beside every table.

Numbers stay numbers (fractions with 6 decimals), links become their text,
and attacker-written text that would start a spreadsheet formula gets a
leading ``'``.
"""
from __future__ import annotations

import csv
import io
import json

from pipelines.report.context import DataTable, Link


def _plain(value):
    """A cell as data: links become their text, fractions keep 6 decimals."""
    if isinstance(value, Link):
        return value.text
    if isinstance(value, float):
        return round(value, 6)
    return value


def table_rows(table: DataTable) -> list[dict]:
    keys = [c.key for c in table.columns]
    return [dict(zip(keys, (_plain(v) for v in row))) for row in table.rows]


def _csv_cell(value):
    # Attacker-written text must not become a spreadsheet formula (see
    # pipelines.aggregate.FORMULA_START); numbers are left alone.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def table_csv(table: DataTable) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if v is None else _csv_cell(_plain(v)) for v in row])
    return buf.getvalue().encode()


def table_json(table: DataTable) -> bytes:
    doc = {"title": table.title, "note": table.note, "columns": [c.key for c in table.columns],
           "rows": table_rows(table)}
    return (json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=True) + "\n").encode()
