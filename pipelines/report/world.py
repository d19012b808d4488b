"""Country outlines for the world map, read from the repository (never
fetched): pipelines/report/data/world_110m.json is Natural Earth's 1:110m
admin-0 countries (public domain), simplified, keyed by ISO 3166 alpha-2 as
the aggregates' ``country`` values are (provenance and the one-time
conversion: pipelines/report/data/make_world.py).

    shapes = projected()      # {"DE": [[(x, y), ...], ...], ...}

Projected with the Equal Earth projection (Šavrič, Patterson, Jenny 2018):
an equal-area map, so a big pale country does not look like a big number.
"""
from __future__ import annotations

import functools
import json
import math
import os

WORLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "world_110m.json")
A1, A2, A3, A4 = 1.340264, -0.081106, 0.000893, 0.003796
M = math.sqrt(3) / 2


def equal_earth(lon: float, lat: float) -> tuple[float, float]:
    """Degrees -> Equal Earth plane coordinates (unit sphere)."""
    lam, phi = math.radians(lon), math.radians(lat)
    theta = math.asin(M * math.sin(phi))
    t2 = theta * theta
    t6 = t2 * t2 * t2
    x = lam * math.cos(theta) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)))
    y = theta * (A1 + A2 * t2 + t6 * (A3 + A4 * t2))
    return round(x, 4), round(y, 4)


@functools.cache
def projected() -> dict[str, tuple[tuple[tuple[float, float], ...], ...]]:
    """{alpha-2 code: rings of projected points}, read and projected once."""
    with open(WORLD, encoding="utf-8") as f:
        doc = json.load(f)
    out = {}
    for code, rings in doc["countries"].items():
        out[code] = tuple(tuple(equal_earth(r[i] / 10, r[i + 1] / 10) for i in range(0, len(r), 2))
                          for r in rings)
    return out
