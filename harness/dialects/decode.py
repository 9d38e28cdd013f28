"""``sse-harness decode``: read one saved response body and say what it contained.

``decode_body`` feeds the body through a ``StreamReader`` (whole, or in fixed-size
chunks to mimic a network) and returns a JSON-able summary: the rebuilt response and what
the stream looked like on the way (events, token-bearing events, the terminator,
protocol errors, an unterminated last event). ``render_summary`` writes it as JSON that
any terminal and any UTF-8 file can take, whatever the body held.
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness.dialects import StreamReader, get
from harness.errors import ConfigError
from harness.sse import DEFAULT_MAX_EVENT_BYTES

__all__ = ["MAX_DEPTH", "NESTED", "decode_body", "render_summary"]

#: Values from the stream nested deeper than this are summarised as ``NESTED``.
MAX_DEPTH = 32
NESTED = "(nested too deeply to show)"
#: Beyond the C0 controls ``json.dumps`` escapes itself: DEL and the C1 controls, lone
#: surrogates (which UTF-8 cannot carry), the bidi controls, the line separators.
_UNSAFE = re.compile("[\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def decode_body(
    body: bytes,
    *,
    content_type: str | None = None,
    dialect: str = "auto",
    pointer: str | None = None,
    chunk_size: int | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> dict[str, Any]:
    """Decode one response body into the summary ``sse-harness decode`` prints.

    Args:
        body: the response body, byte for byte.
        content_type: the response's ``Content-Type``; None reads the body as an event
            stream (unless ``dialect`` is ``text``), ``text/plain`` as plain text.
        dialect: a name from ``harness.dialects.DIALECT_NAMES``, or ``auto`` to detect.
        pointer: for the ``generic`` dialect, the JSON pointer to the text field.
        chunk_size: feed the body in chunks of this many bytes; None feeds it whole.
        max_event_bytes: the SSE decoder's bound on a line or an event.

    Returns:
        A JSON-able dict with ``dialect``, ``text``, ``reasoning``, ``refusal``,
        ``tool_calls``, ``finish_reason``, ``usage``, ``sse_events``, ``content_events``,
        ``done_sentinel``, ``error``, ``protocol_errors`` and ``truncated``; plus
        ``full_text`` when the stream restated its whole text, and ``choices`` (every
        choice but the first) when there was more than one choice.

    Raises:
        ConfigError: an unknown dialect, an invalid pointer or a chunk size below 1.

    A body the SSE decoder cannot read to its end (a line or event over its size limit)
    is not an exception, nor is one the reader fails on: what came before is summarised,
    the error is listed in ``protocol_errors`` and ``truncated`` is true. Values from the
    stream (usage, an error object, choices) nested deeper than ``MAX_DEPTH`` show as
    ``NESTED``.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ConfigError("chunk_size", f"must be a positive number of bytes, not {chunk_size}")
    reader = StreamReader(
        get(dialect, pointer=pointer), content_type=content_type, max_event_bytes=max_event_bytes
    )
    step = chunk_size or max(len(body), 1)
    unreadable: list[str] = []
    start = 0
    try:
        for start in range(0, len(body), step):
            reader.feed(body[start : start + step])
        reader.close()
    except Exception as exc:  # the reader is a boundary: a body it fails on is a finding
        said = f"{type(exc).__name__}: {exc}"[:300]
        unreadable.append(f"could not read the body from byte {start} on ({said})")
    if reader.fatal is not None:
        unreadable.append(str(reader.fatal))
    result = reader.result()
    summary: dict[str, Any] = {
        "dialect": reader.dialect.name if reader.dialect is not None else None,
        "text": result.text,
        "reasoning": result.reasoning,
        "refusal": result.refusal,
        "tool_calls": [call.as_dict() for call in result.tool_calls],
        "finish_reason": result.finish_reason,
        "usage": dict(result.usage) if result.usage is not None else None,
        "sse_events": reader.events,
        "content_events": reader.content_events,
        "done_sentinel": result.done,
        "error": result.error,
        "protocol_errors": [str(error) for error in reader.errors] + unreadable,
        "truncated": reader.discarded or bool(unreadable),
    }
    if result.full_text is not None:
        summary["full_text"] = result.full_text
    if result.choices:
        summary["choices"] = [dict(choice) for choice in result.choices]
    return {key: _bounded(value, MAX_DEPTH) for key, value in summary.items()}


def _bounded(value: Any, depth: int) -> Any:
    """``value`` with every container nested deeper than ``depth`` replaced by
    ``NESTED`` (a copy; JSON scalars as they are)."""
    if isinstance(value, dict):
        return NESTED if depth <= 0 else {k: _bounded(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return NESTED if depth <= 0 else [_bounded(v, depth - 1) for v in value]
    return value


def render_summary(summary: dict[str, Any]) -> str:
    """The summary as indented JSON. Characters a terminal or UTF-8 cannot take as they
    are (controls, lone surrogates, bidi controls) are JSON escapes, so the text is
    exact for a JSON reader and inert on a screen."""
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)  # inside strings
