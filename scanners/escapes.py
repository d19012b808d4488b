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


# -- the public side: characters no published banner may carry raw -----------
# C0 (but \n and \t, which public banners use as line and field breaks), DEL,
# C1 (U+0080-U+009F: the 8-bit CSI U+009B moves a terminal's cursor just as
# ESC [ does), NEL/LS/PS (U+0085, U+2028, U+2029: line breaks to JavaScript
# and some CSV readers), the bidi embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069: they reorder what a reader sees, "Trojan
# Source"), the marks U+200E/U+200F/U+061C, and the noncharacters
# (U+FDD0-U+FDEF and the last two code points of every plane). Each comes out
# as a ``\uXXXX`` (``\U00XXXXXX`` beyond the BMP) text escape.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ufdd0-\ufdef\ufffe\uffff"
                     + "".join(f"{chr(p * 0x10000 + 0xfffe)}{chr(p * 0x10000 + 0xffff)}" for p in range(1, 17))
                     + "]")
# Invisible characters that only serve to split a token so that a pattern
# misses it ("10.20\u200b.16.40"): dropped before anything is matched.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200d\u2060-\u2064\ufeff]")


def _escape_char(m: re.Match) -> str:
    cp = ord(m.group(0))
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def escape_unsafe(text: str) -> str:
    """Text with every character of ``_UNSAFE`` written as a ``\\uXXXX`` escape.

    >>> escape_unsafe("a\\x1b[31mb\\u202ec\\x9b")
    'a\\\\u001b[31mb\\\\u202ec\\\\u009b'

    Idempotent (an escape is plain ASCII); everything else passes unchanged."""
    return _UNSAFE.sub(_escape_char, text)


def drop_invisible(text: str) -> str:
    """Text without zero-width and other invisible format characters."""
    return _INVISIBLE.sub("", text)


def has_unsafe(text: str) -> bool:
    return _UNSAFE.search(text) is not None
