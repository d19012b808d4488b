"""Undo masscan's banner escapes, back to the bytes the service sent.

masscan never writes a banner byte raw unless it is printable ASCII and not
one of ``< > & \\ " '`` (``normalize_string`` in masscan ``src/util-*.c`` /
``normalize_json_string`` in ``src/out-json.c``, ``src/out-ndjson.c``):

* JSON (``-oJ``) and ndjson (``--output-format ndjson``, ``-oD``) write every
  other byte as ``\\u00NN``. A JSON decoder therefore yields a str whose code
  points *are* the bytes (Latin-1 mojibake: ``caf\\u00c3\\u00a9`` -> ``cafÃ©``).
* ``-oL``, ``-oG`` and ``-oX`` write ``\\xNN`` with lower-case hex
  (``caf\\xc3\\xa9``); a backslash itself becomes ``\\x5c``, never ``\\\\``.

The column helpers follow the "parse each distinct banner once" rule: a scan
has millions of banner records but far fewer distinct banners, so the column
is dictionary-encoded, each distinct value is converted once in Python, and
the result is mapped back with ``take``.

Pure: bytes/str/Arrow in, bytes/Arrow out; no I/O.
"""
from __future__ import annotations

import re
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

# \xNN is what masscan writes; \\ is accepted because other tools (and
# hand-made test files) use it, and no masscan output can contain a bare
# backslash that is not the start of \x5c.
_BACKSLASH_X = re.compile(rb"\\(?:x([0-9a-fA-F]{2})|(\\))")


def latin1_to_bytes(s: str) -> bytes:
    """Original banner bytes from a JSON-decoded masscan banner.

    >>> latin1_to_bytes('caf\\u00c3\\u00a9').decode()
    'café'

    A code point above 0xFF cannot have come from masscan's ``\\u00NN``; such a
    string is returned as its UTF-8 encoding (lone surrogates passed through
    rather than raising, because the input is attacker-controlled).
    """
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def _unhex(m: re.Match) -> bytes:
    if m.group(2) is not None:
        return b"\\"
    return bytes((int(m.group(1), 16),))


def unescape_backslash_x(data: bytes | str) -> bytes:
    """Original bytes of a ``\\xNN``-escaped masscan banner (-oL, -oG, -oX).

    >>> unescape_backslash_x(rb'caf\\xc3\\xa9 \\x0d\\x0a')
    b'caf\\xc3\\xa9 \\r\\n'

    A backslash that starts no valid escape is kept as it is (the text was
    not written by masscan; keeping it loses nothing). A str is taken as the
    UTF-8 text of the file (surrogate escapes round-trip).
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if b"\\" not in data:
        return data
    return _BACKSLASH_X.sub(_unhex, data)


def banner_text(b: bytes) -> tuple[str, bool]:
    """(text, fallback): UTF-8 text of a banner; invalid bytes become ``\\xNN``
    and ``fallback`` is True (the CLEAN_SCHEMA ``banner_fallback`` rule).

    >>> banner_text(b'caf\\xc3\\xa9'), banner_text(b'\\xff')
    (('café', False), ('\\\\xff', True))
    """
    try:
        return b.decode("utf-8"), False
    except UnicodeDecodeError:
        return b.decode("utf-8", "backslashreplace"), True


# -- Arrow columns ------------------------------------------------------------

def _as_array(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks()
    return arr


def _per_distinct(arr: pa.Array, fn: Callable, out_type: pa.DataType) -> pa.Array:
    """Apply ``fn`` once per distinct non-null value of ``arr``; keep nulls."""
    enc = arr.dictionary_encode()
    converted = pa.array([fn(v) for v in enc.dictionary.to_pylist()], out_type)
    return pc.take(converted, enc.indices)


def decode_column_latin1(arr: pa.Array) -> pa.BinaryArray:
    """``latin1_to_bytes`` over a string column of JSON-decoded banners."""
    arr = _as_array(arr)
    if len(arr) == 0 or arr.null_count == len(arr):
        return pa.nulls(len(arr), pa.binary())
    # All-ASCII is the common case (masscan escapes \r\n etc. to code points
    # < 0x80): then the UTF-8 bytes already are the original bytes.
    if pc.all(pc.string_is_ascii(arr)).as_py() is not False:
        return arr.cast(pa.binary())
    return _per_distinct(arr, latin1_to_bytes, pa.binary())


def decode_column_backslash_x(arr: pa.Array) -> pa.BinaryArray:
    """``unescape_backslash_x`` over a string or binary column."""
    arr = _as_array(arr)
    if len(arr) == 0 or arr.null_count == len(arr):
        return pa.nulls(len(arr), pa.binary())
    binary = arr.cast(pa.binary()) if pa.types.is_string(arr.type) else arr
    if not pc.any(pc.match_substring(binary, b"\\")).as_py():
        return binary
    return _per_distinct(binary, unescape_backslash_x, pa.binary())


def banner_text_column(arr: pa.Array) -> tuple[pa.StringArray, pa.BooleanArray]:
    """``banner_text`` over a binary column: (text, fallback); both null where
    the banner is null."""
    arr = _as_array(arr)
    if len(arr) == 0 or arr.null_count == len(arr):
        return pa.nulls(len(arr), pa.string()), pa.nulls(len(arr), pa.bool_())
    try:
        text = arr.cast(pa.string())  # validates UTF-8 for the whole column
    except pa.ArrowInvalid:
        enc = arr.dictionary_encode()
        pairs = [banner_text(v) for v in enc.dictionary.to_pylist()]
        texts = pa.array([t for t, _ in pairs], pa.string())
        flags = pa.array([f for _, f in pairs], pa.bool_())
        return pc.take(texts, enc.indices), pc.take(flags, enc.indices)
    fallback = pc.if_else(arr.is_valid(), False, pa.scalar(None, pa.bool_()))
    return text, fallback
