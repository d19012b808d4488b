"""``--config FILE``: one typed TOML file for every command.

Keys are the long flags with underscores (``raw``, ``geoip_country_db``,
``force``, ``k``); a value must have the flag's type: ``force = "no"`` is an
error, not a truthy string. One file can serve every command (cron runs
``weekly`` and ``status --check`` with the same file): a key that another
command knows is left alone by this one, a key no command knows is refused.
A ``[beam]`` table holds Apache Beam options for run/reprocess/weekly, handed
to Beam before the command line's own Beam flags (so those win)::

    raw = "/srv/scans/raw"
    out = "/srv/portcensus/data"
    exclude = "/etc/portcensus/exclude.conf"
    k = 10
    quiet = true

    [beam]
    runner = "DirectRunner"
    direct_running_mode = "multi_processing"
    direct_num_workers = 2

Command-line flags win over the file. Errors are ``ConfigFileError`` with
``key: what is wrong``.
"""
from __future__ import annotations

import argparse
import tomllib

CONFIG_HELP = ("TOML file with defaults for these flags (keys as the long flags with underscores: "
               "raw = \"/srv/raw\", force = true) and a [beam] table of Beam options; types are "
               "checked and unknown keys refused; command-line flags win")
BEAM_TABLE = "beam"
_NOT_SETTINGS = {"help", "version", "config", "command"}
# Shrinking the recorded opt-out list (pipelines/optout_state.py) is a
# one-time, logged act: in a config file it would repeat on every cron run
# and quietly undo every later opt-out. Command line only.
COMMAND_LINE_ONLY = {"replace_optout", "drop_optout_entries"}


class ConfigFileError(ValueError):
    """The file cannot be used; the message names the key."""


def load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"not valid TOML: {exc}") from None


def _settings(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in _NOT_SETTINGS  # noqa: SLF001
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))}  # noqa: SLF001


def _type_name(action: argparse.Action) -> str:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):  # noqa: SLF001
        return "true or false"
    if action.nargs in ("+", "*"):
        return "a list of strings"
    return {int: "an integer", float: "a number"}.get(action.type, "a string")


def check_value(key: str, value, action: argparse.Action):
    """``value`` as the flag would have it, or ConfigFileError."""
    want = _type_name(action)
    if want == "true or false":
        ok = isinstance(value, bool)
    elif want == "a list of strings":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif action.type is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif action.type is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif action.type is None:
        ok = isinstance(value, str)
    else:   # a custom argparse type (e.g. a positive integer): let it judge the text
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        if ok:
            try:
                value = action.type(str(value))
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise ConfigFileError(f"{key}: {exc}") from None
    if not ok:
        raise ConfigFileError(f"{key}: expected {want}, not {value!r}")
    if action.choices is not None and value not in action.choices:
        raise ConfigFileError(f"{key}: must be one of {', '.join(map(str, action.choices))}, not {value!r}")
    return value


def beam_flags(table) -> list[str]:
    """The ``[beam]`` table as Beam command-line flags (true: a bare flag)."""
    if not isinstance(table, dict):
        raise ConfigFileError(f"{BEAM_TABLE}: expected a table ([beam]), not {table!r}")
    flags = []
    for key, value in table.items():
        name = "--" + key.replace("-", "_")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool):
                if v:
                    flags.append(name)
            elif isinstance(v, (str, int, float)):
                flags.append(f"{name}={v}")
            else:
                raise ConfigFileError(f"{BEAM_TABLE}.{key}: expected a string, number or true/false, not {v!r}")
    return flags


def defaults_for(command_parser: argparse.ArgumentParser, all_parsers: dict, values: dict,
                 takes_beam: bool) -> tuple[dict, list[str]]:
    """({dest: typed value} for this command, Beam flags) from the file's values."""
    mine = _settings(command_parser)
    others: dict[str, argparse.Action] = {}
    for p in all_parsers.values():
        for dest, action in _settings(p).items():
            others.setdefault(dest, action)
    typed, beam = {}, []
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key in COMMAND_LINE_ONLY:
            raise ConfigFileError(f"{raw_key}: only on the command line (--{key.replace('_', '-')}): shrinking the "
                                  "recorded opt-out list is a one-time act, and a config file would repeat it "
                                  "on every run")
        if key == BEAM_TABLE:
            flags = beam_flags(value)
            beam = flags if takes_beam else []
        elif key in mine:
            typed[key] = check_value(raw_key, value, mine[key])
        elif key in others:
            check_value(raw_key, value, others[key])   # wrong for another command is still wrong
        else:
            raise ConfigFileError(f"{raw_key}: unknown setting (no portcensus command has --{key.replace('_', '-')})")
    return typed, beam
