"""Text from a model file, a snapshot or a user's input, made safe to print on a terminal.

A label, a token or a metadata value is whatever the file's author wrote: it may hold an ANSI
escape (``ESC [ 2 J`` clears the screen), a BEL, a carriage return or a line end that forges
an output line, a bidi override that shows text reversed, or a lone surrogate that cannot be
encoded at all. The commands print such characters as escapes (``\\n``, ``\\x1b``,
``\\u202e``) and everything else as it is:

- C0 and C1 control characters and DEL (Unicode category Cc),
- the line and paragraph separators U+2028 and U+2029,
- the bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069),
- lone surrogates; U+DC80–U+DCFF, which is how Python keeps an undecodable byte of a file
  name, prints as that byte (``\\xff``).

Backslashes are not doubled, so ordinary text reads as it is; ``--json`` output is the exact
form (its escapes decode to the very same strings).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["byte_size", "printable", "printable_json"]

_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_ANY = re.compile(f"[\x00-\x1f{_OTHERS}]")
_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # keeps \t and \n
_BUT_C0 = re.compile(f"[{_OTHERS}]")  # json.dumps escapes C0 in strings; the rest is its own layout
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: Any, *, lines: bool = False) -> str:
    """``text`` (made a ``str``) with the characters above escaped.

    ``lines=True`` keeps line ends and tabs (``\\n``, ``\\t``) as they are: for generated text,
    whose newlines are the product, not a forgery.

    >>> printable("pos\\x1b[2J\\nneg")
    'pos\\\\x1b[2J\\\\nneg'
    """
    text = text if isinstance(text, str) else str(text)
    return (_BUT_LINES if lines else _ANY).sub(_escape, text)


def _json_escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def printable_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **kwargs)`` with the characters above as ``\\uXXXX``.

    JSON already escapes C0 controls; this also escapes DEL, C1 controls, the separators, the
    bidi controls and lone surrogates, so the line is safe to print and decodes to ``value``.
    """
    return _BUT_C0.sub(_json_escape, json.dumps(value, ensure_ascii=False, **kwargs))


def byte_size(n: float) -> str:
    """``n`` bytes for a message: ``"512 bytes"``, ``"1.5 MiB"``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} bytes"
