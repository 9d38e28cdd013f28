"""Home-made streams: the formats FastAPI and Flask tutorials teach.

They come in a few shapes, all handled here::

    data: {"content": "Hel"}          a JSON object with a text field
    data: lo                          the token itself (``yield f"data: {token}\\n\\n"``)
    event: token                      named events: text only from content-like names,
    data: {"token": "!"}              control events (start, complete, done, end, error)
    event: complete                   never add text; ``complete`` may restate the whole
    data: {"full_content": "Hello!"}  text, kept as a cross-check in ``full_text``
    data: [DONE]                      the terminator, copied from OpenAI

An event's name is its SSE ``event`` field; for unnamed events, the data's ``type`` when
it is a string (``{"type": "delta", "text": ...}``). A JSON pointer (RFC 6901) chooses the
text field; without one the first of ``content``, ``text``, ``delta`` and ``token`` (also
``delta.content`` / ``delta.text``) is the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.dialects.base import Delta, DeltaKind, JSONTooDeep, parse_json
from harness.errors import ConfigError, DialectError
from harness.sse import Event

__all__ = ["GenericJSON", "parse_pointer"]

_IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)
_DONE = Delta(kind=DeltaKind.DONE)

_TEXT_KEYS = ("content", "text", "delta", "token")
_FULL_TEXT_KEYS = ("full_content", "full_text")
_TEXT_HINTS = ("content", "delta", "token", "chunk", "message", "text")
_CONTROL_WORDS = {
    "start": "start",
    "complete": "complete",
    "completed": "complete",
    "done": "end",
    "end": "end",
    "error": "error",
}
_WORD = re.compile(r"[a-z0-9]+")
_ESCAPE = re.compile(r"~(?![01])")


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """Split an RFC 6901 JSON pointer into its unescaped reference tokens.

    Args:
        pointer: ``""`` (the whole document) or ``/``-separated tokens, with ``~1`` for
            ``/`` and ``~0`` for ``~``.

    Returns:
        The tokens (``"/choices/0/text"`` gives ``("choices", "0", "text")``).

    Raises:
        ConfigError: the pointer does not start with ``/`` or has a ``~`` not followed
            by ``0`` or ``1``; the field is ``pointer``.
    """
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ConfigError("pointer", f"a JSON pointer starts with '/', not {pointer!r}")
    if _ESCAPE.search(pointer):
        raise ConfigError("pointer", f"'~' must be followed by 0 or 1 in {pointer!r}")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


@dataclass(frozen=True, slots=True)
class GenericJSON:
    """The ``generic`` dialect: JSON or raw-text tokens in ``data`` lines.

    Args:
        pointer: an RFC 6901 pointer to the text field (``"/content"``,
            ``"/choices/0/text"``); None finds the common names by itself.
        terminator: the data that ends the stream, or None when none does.

    Raises:
        ConfigError: ``pointer`` is not a JSON pointer, or ``terminator`` is empty.
    """

    pointer: str | None = None
    terminator: str | None = "[DONE]"
    name: str = field(default="generic", init=False)
    framing: Literal["sse", "text"] = field(default="sse", init=False)
    _tokens: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pointer is not None:
            object.__setattr__(self, "_tokens", parse_pointer(self.pointer))
        if self.terminator is not None and not self.terminator.strip():
            raise ConfigError("terminator", "an empty terminator would end every stream")

    def interpret(self, event: Event) -> tuple[Delta, ...]:
        """Return what one event adds to the response.

        Args:
            event: one SSE event of the stream.

        Returns:
            CONTENT for the text of text events; FINISH, USAGE and ERROR read from
            ``finish_reason``, ``usage`` and ``error`` fields; DONE for the terminator
            and for ``done``/``end``/``complete`` events; IGNORABLE when nothing applies.

        Raises:
            DialectError: the data looks like a JSON object but does not parse, or the
                pointer leads to an object or an array.
        """
        data = event.data
        if self.terminator is not None and data.strip() == self.terminator:
            return (_DONE,)
        value, parsed = self._parse(data)
        role = _role(event.type, value)
        deltas: list[Delta] = []
        if role == "text":
            text = self._text(value, parsed, data)
            if text:
                deltas.append(Delta(kind=DeltaKind.CONTENT, text=text))
        if isinstance(value, dict):
            deltas.extend(_reported_fields(value, role))
        elif role == "error":
            deltas.append(Delta(kind=DeltaKind.ERROR, error=value))
        if role in ("complete", "end") or (isinstance(value, dict) and value.get("done") is True):
            deltas.append(_DONE)
        return tuple(deltas) or _IGNORABLE

    def _parse(self, data: str) -> tuple[Any, bool]:
        try:
            return parse_json(data), True
        except JSONTooDeep as exc:
            raise DialectError(self.name, "data nests too deeply to parse", data) from exc
        except ValueError as exc:
            if data.lstrip().startswith("{"):
                raise DialectError(self.name, f"data is not valid JSON ({exc})", data) from exc
            return data, False  # not JSON: the data is the token itself

    def _text(self, value: Any, parsed: bool, data: str) -> str | None:
        if not parsed:
            return data
        if self._tokens is not None:
            found = _resolve(value, self._tokens)
            if isinstance(found, (dict, list)):
                raise DialectError(
                    self.name, f"the pointer {self.pointer!r} leads to a JSON container", data
                )
            if isinstance(found, str):
                return found
            if isinstance(found, (int, float)) and not isinstance(found, bool):
                return str(found)
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return _text_field(value)
        if isinstance(value, list):
            return None
        return data  # a bare number, true or null sent as a raw token


def _role(event_type: str, value: Any) -> str:
    """``"text"``, a control role (start, complete, end, error) or ``"other"``."""
    name = event_type.lower()
    if name == "message":
        kind = value.get("type") if isinstance(value, dict) else None
        if not isinstance(kind, str):
            return "text"
        name = kind.lower()
    for word in _WORD.findall(name):
        role = _CONTROL_WORDS.get(word)
        if role is not None:
            return role
    return "text" if any(hint in name for hint in _TEXT_HINTS) else "other"


def _text_field(payload: dict[str, Any]) -> str | None:
    for key in _TEXT_KEYS:
        value = payload.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict):  # {"delta": {"content": ...}}
            for inner in ("content", "text"):
                nested = value.get(inner)
                if isinstance(nested, str):
                    return nested
    return None


def _reported_fields(payload: dict[str, Any], role: str) -> list[Delta]:
    """USAGE, FINISH and ERROR from any event's object; the text is read elsewhere."""
    deltas: list[Delta] = []
    usage = payload.get("usage")
    if isinstance(usage, dict) and usage:
        deltas.append(Delta(kind=DeltaKind.USAGE, usage=usage))
    reason = payload.get("finish_reason")
    full_text = None
    if role == "complete":
        full_text = next(
            (payload[k] for k in _FULL_TEXT_KEYS if isinstance(payload.get(k), str)), None
        )
    if isinstance(reason, str) or full_text is not None:
        deltas.append(
            Delta(
                kind=DeltaKind.FINISH,
                finish_reason=reason if isinstance(reason, str) else None,
                full_text=full_text,
            )
        )
    error = payload.get("error")
    if role == "error":
        if error is None:
            error = payload.get("message", payload)
        deltas.append(Delta(kind=DeltaKind.ERROR, error=error))
    elif error not in (None, False, ""):
        deltas.append(Delta(kind=DeltaKind.ERROR, error=error))
    return deltas


def _resolve(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value at ``tokens`` in ``document``, or None when there is none."""
    value = document
    for token in tokens:
        if isinstance(value, dict):
            if token not in value:
                return None
            value = value[token]
        elif isinstance(value, list):
            if not (token.isascii() and token.isdigit()) or (len(token) > 1 and token[0] == "0"):
                return None
            position = int(token)
            if position >= len(value):
                return None
            value = value[position]
        else:
            return None
    return value
