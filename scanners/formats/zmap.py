"""zmap output formats for the registry, most specific first. The readers
live in ``zmap_csv``, ``zmap_json`` and ``zmap_list``; what they share
(field plan, port hint, validation) in ``zmap_common``."""
from __future__ import annotations

from scanners.formats.zmap_csv import read_csv, sniff_csv
from scanners.formats.zmap_json import read_json, sniff_json
from scanners.formats.zmap_list import read_list, sniff_list
from scanners.registry import Format

FORMATS = (
    Format("zmap-json", "zmap", sniff_json, read_json),
    Format("zmap-csv", "zmap", sniff_csv, read_csv),
    Format("zmap-list", "zmap", sniff_list, read_list),   # loosest: must stay last
)
