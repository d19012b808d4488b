"""Synthetic scanner output in the real tools' exact formats.

* ``writers``    -- pure functions: records in, bytes out, byte-for-byte the way
  masscan 1.3.2 (``-oD``/ndjson, ``-oJ``, ``-oL``, ``-oX``), zmap 2.1.1
  (``-O csv -f ...``) and zgrab2 (JSON Lines) write them.
* ``population`` -- a seeded, 2013-shaped Internet population (hosts, banners,
  SSH host keys) for the demo week.
* ``demo``       -- ``write_demo_week``: the demo week's raw files plus a truth
  dict (what the pipeline must accept, lose and merge).
* ``bulk``       -- ``write_bulk``: millions of masscan ndjson records, fast,
  for ``make bench``.

Everything is deterministic from a seed: same seed, byte-identical files.
"""
