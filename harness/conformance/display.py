"""How reports show what a server sent: bounded in size, control characters escaped.

Every string a report carries may hold bytes a server chose: an escape sequence that
would drive the reader's terminal, a NUL that XML 1.0 cannot carry even as an entity,
a bidi override that reorders a line, a lone surrogate that cannot be written as UTF-8.
``printable`` is the one escaping every renderer applies (terminal, Markdown, JUnit,
JSON): such characters become visible escapes, ``\\x1b``, ``\\x00``, ``\\u202e``, and
line ends ``\\n``, ``\\r``, ``\\t`` as in Python. ``brief`` shows a value from a payload
in a message, bounded however large or deeply nested the value is.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

__all__ = ["brief", "printable", "show_bytes"]

#: C0 and C1 controls and DEL, surrogates, the two non-characters XML forbids, the bidi
#: embeddings, overrides and isolates, and the Unicode line and paragraph separators.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: The longest value ``brief`` shows, in characters (longer ones are cut in the middle).
BRIEF_CHARS = 60

_brief = reprlib.Repr()
_brief.maxstring = BRIEF_CHARS
_brief.maxother = BRIEF_CHARS
_brief.maxlong = BRIEF_CHARS
_brief.maxlevel = 3


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character, surrogate, XML-forbidden character and
    bidi control replaced by its visible escape (``\\x1b``, ``\\n``, ``\\u202e``)."""
    return _UNPRINTABLE.sub(_escape, text)


def show_bytes(data: bytes) -> str:
    """Bytes as a readable, escaped string (line ends, control characters and invalid
    UTF-8 visible)."""
    return printable(data.decode("utf-8", "backslashreplace"))


def brief(value: Any, *, bare: bool = False) -> str:
    """``repr(value)`` bounded: long strings cut, deep or long containers elided (so a
    payload nested a thousand deep shows as ``[[[...]]]``, without recursing).

    Args:
        value: what to show.
        bare: show a string without quotes, as ``str`` would.
    """
    if bare and isinstance(value, str):
        if len(value) <= BRIEF_CHARS:
            return value
        half = (BRIEF_CHARS - 3) // 2
        return value[:half] + "..." + value[-half:]
    return _brief.repr(value)
