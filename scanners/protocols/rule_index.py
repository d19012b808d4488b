"""A literal prefilter for the rule engine: which rules *can* match a subject.

Most rules carry a literal that every match must contain: an anchored rule
``^Apache/(?P<version>...)`` needs the subject to start with ``Apache/``; a
``search = true`` rule ``Stronghold/(?P<v>...)`` needs ``Stronghold/``
somewhere in it. The literal is read from the compiled pattern itself (the
``re`` parser's tree), never declared by hand, so it cannot drift from the
pattern:

* the pattern's top-level items are flattened (groups without flag changes
  are opened; a branch, class, repeat or anything else ends the run);
* an anchored rule's key is the run of literals right after ``^``, at most
  ``KEY_LEN`` characters; the rules are kept in one dict per key length, so
  the candidates of a subject are a handful of dict look-ups of its first
  characters, however many rules there are;
* a rule without such a prefix (or a search rule) needs its longest run of
  required literals somewhere in the subject (``in``, one C call per distinct
  literal);
* a rule with no usable literal (or ``re.MULTILINE``/``re.LOCALE``, where
  ``^`` or case are not what they seem) is always a candidate.

Case-insensitive rules are keyed in lower case, and only on ASCII characters
other than ``i``, ``k`` and ``s``: those three have non-ASCII case partners
in Python's ``re`` (``İ``, ``ı``, ``K``, ``ſ``), so a key stops before them and
``str.lower()`` of the subject then decides exactly what ``re`` would.

Skipping a rule whose literal is absent never changes the answer (it could
not have matched); the candidates are then tried in rule order, so the first
match is the linear scan's first match. ``tests/unit/test_rule_index.py``
checks that on every example and on random and hostile subjects.
"""
from __future__ import annotations

import re

try:                                       # Python 3.11+: the parser's home
    import re._parser as _sre_parse       # type: ignore[import-not-found]
    import re._constants as _sre_const    # type: ignore[import-not-found]
except ImportError:                        # pragma: no cover - older Pythons
    import sre_constants as _sre_const    # type: ignore[no-redef]
    import sre_parse as _sre_parse        # type: ignore[no-redef]

KEY_LEN = 4
_SAFE_FOLD = frozenset("abcdefghjlmnopqrtuvwxyz0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _flatten(items) -> list:
    out = []
    for op, av in items:
        if op is _sre_const.SUBPATTERN and not av[1] and not av[2]:
            out.extend(_flatten(av[3]))
        else:
            out.append((op, av))
    return out


def _runs(items, fold: bool) -> tuple[str, list[str]]:
    """(literal prefix after a leading ^ or "" if not anchored, all literal runs)."""
    runs, run = [], []
    anchored = bool(items) and items[0] == (_sre_const.AT, _sre_const.AT_BEGINNING)
    prefix = None
    for i, (op, av) in enumerate(items[1:] if anchored else items):
        ch = chr(av) if op is _sre_const.LITERAL else None
        if ch is not None and fold and ch.lower() not in _SAFE_FOLD:
            ch = None
        if ch is not None:
            run.append(ch.lower() if fold else ch)
            continue
        if prefix is None:
            prefix = "".join(run) if anchored else ""
        if run:
            runs.append("".join(run))
        run = []
    if prefix is None:
        prefix = "".join(run) if anchored else ""
    if run:
        runs.append("".join(run))
    return prefix, runs


class RuleIndex:
    """Built once per rule set; ``candidates(subject, anchored_only)`` gives
    the positions (ascending) of the rules that may match ``subject``."""

    def __init__(self, rules) -> None:
        # exact[L] / folded[L]: key of length L -> rule positions
        self.exact: dict[int, dict[str, list[int]]] = {}
        self.folded: dict[int, dict[str, list[int]]] = {}
        self.needs: dict[tuple[str, bool], list[int]] = {}   # (literal, folded) -> positions
        self.always: list[int] = []
        self.searching: frozenset[int] = frozenset(i for i, r in enumerate(rules) if r.search)
        self.keyed = 0
        for i, rule in enumerate(rules):
            self._add(i, rule)
        self.exact_lengths = sorted(self.exact)
        self.folded_lengths = sorted(self.folded)

    def _add(self, i: int, rule) -> None:
        flags = rule.pattern.flags
        if flags & (re.MULTILINE | re.LOCALE):
            self.always.append(i)
            return
        fold = bool(flags & re.IGNORECASE)
        try:
            items = _flatten(list(_sre_parse.parse(rule.pattern.pattern, flags & ~re.UNICODE)))
        except Exception:                    # pragma: no cover - compiled already, so parses
            self.always.append(i)
            return
        prefix, runs = _runs(items, fold)
        if prefix and not rule.search:
            key = prefix[:KEY_LEN]
            (self.folded if fold else self.exact).setdefault(len(key), {}).setdefault(key, []).append(i)
            self.keyed += 1
        elif runs:
            self.needs.setdefault((max(runs, key=len), fold), []).append(i)
            self.keyed += 1
        else:
            self.always.append(i)

    def candidates(self, subject: str, anchored_only: bool = False) -> list[int]:
        found: list[int] = list(self.always)
        for length in self.exact_lengths:
            hit = self.exact[length].get(subject[:length])
            if hit:
                found.extend(hit)
        if self.folded_lengths:
            low = subject[:KEY_LEN].lower()
            for length in self.folded_lengths:
                hit = self.folded[length].get(low[:length]) if len(low) >= length else None
                if hit and len(subject[:length].lower()) == length:
                    found.extend(hit)
        if self.needs:
            lowered = None
            for (literal, fold), positions in self.needs.items():
                if fold:
                    lowered = subject.lower() if lowered is None else lowered
                    if literal in lowered:
                        found.extend(positions)
                elif literal in subject:
                    found.extend(positions)
        found.sort()
        if anchored_only and self.searching:
            return [i for i in found if i not in self.searching]
        return found
