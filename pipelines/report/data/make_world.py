"""One-time conversion of Natural Earth's 110m admin-0 countries into
``world_110m.json`` (kept in the repository; the site build never fetches
geometry). Not imported by portcensus; needs ``pyshp`` and the shapefile.

    python pipelines/report/data/make_world.py naturalearth_lowres.shp > pipelines/report/data/world_110m.json

Source used: ``geopandas/datasets/naturalearth_lowres/`` in the geopandas
0.14.4 wheel on PyPI, which is Natural Earth's ``ne_110m_admin_0_countries``
(public domain) reduced to name and ISO 3166 alpha-3 code. Here: alpha-3
becomes alpha-2 (pycountry), as the aggregates' country values are; Kosovo
(-99) is XK as DB-IP writes it; Somaliland and Northern Cyprus, which ISO
3166 does not list, are drawn as part of SO and CY; Antarctica is left out
(no responders, and half the map's height); rings are simplified
(Douglas-Peucker, 0.2 degrees) and stored as integers of 0.1 degree.
"""
from __future__ import annotations

import json
import sys

TOLERANCE = 2          # in tenths of a degree
FIX = {"-99": "XK", "CYN": "CY", "SOL": "SO"}


def _simplify(pts: list[tuple[int, int]], tol: float) -> list[tuple[int, int]]:
    if len(pts) < 3:
        return pts
    (x1, y1), (x2, y2) = pts[0], pts[-1]
    dx, dy = x2 - x1, y2 - y1
    norm = (dx * dx + dy * dy) ** 0.5
    best, idx = -1.0, 0
    for i in range(1, len(pts) - 1):
        x, y = pts[i]
        d = (abs(dy * (x - x1) - dx * (y - y1)) / norm) if norm else ((x - x1) ** 2 + (y - y1) ** 2) ** 0.5
        if d > best:
            best, idx = d, i
    if best <= tol:
        return [pts[0], pts[-1]]
    return _simplify(pts[: idx + 1], tol)[:-1] + _simplify(pts[idx:], tol)


def ring(points) -> list[int]:
    pts = []
    for x, y in points:
        p = (round(x * 10), round(y * 10))
        if not pts or pts[-1] != p:
            pts.append(p)
    # split the closed ring in two halves so its ends are kept
    half = len(pts) // 2
    pts = _simplify(pts[: half + 1], TOLERANCE)[:-1] + _simplify(pts[half:], TOLERANCE)
    return [c for p in pts for c in p] if len(pts) >= 4 else []


def main(path: str) -> None:
    import pycountry
    import shapefile
    out: dict[str, list[list[int]]] = {}
    for sr in shapefile.Reader(path).iterShapeRecords():
        rec = sr.record.as_dict()
        a3 = FIX.get(rec["iso_a3"], rec["iso_a3"])
        if a3 == "ATA":
            continue
        code = a3 if len(a3) == 2 else pycountry.countries.get(alpha_3=a3).alpha_2
        parts = list(sr.shape.parts) + [len(sr.shape.points)]
        for a, b in zip(parts, parts[1:]):
            r = ring(sr.shape.points[a:b])
            if r:
                out.setdefault(code, []).append(r)
    doc = {"source": "Natural Earth 1:110m Admin 0 Countries (public domain), via the geopandas 0.14.4 "
                     "wheel's naturalearth_lowres; see make_world.py",
           "units": "tenths of a degree, lon/lat pairs, one flat list per ring",
           "countries": dict(sorted(out.items()))}
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
