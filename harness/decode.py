"""``sse-harness decode``: read one saved response body and say what it contained.

``decode_body`` feeds the body through a ``StreamReader`` (whole, or in fixed-size
chunks to mimic a network) and returns a JSON-able summary: the rebuilt response and what
the stream looked like on the way (events, token-bearing events, the terminator,
protocol errors, an unterminated last event).
"""

from __future__ import annotations

from typing import Any

from harness.dialects import StreamReader, get
from harness.errors import ConfigError
from harness.sse import DEFAULT_MAX_EVENT_BYTES

__all__ = ["decode_body"]


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
    is not an exception: what came before is summarised, the error is listed in
    ``protocol_errors`` and ``truncated`` is true.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ConfigError("chunk_size", f"must be a positive number of bytes, not {chunk_size}")
    reader = StreamReader(
        get(dialect, pointer=pointer), content_type=content_type, max_event_bytes=max_event_bytes
    )
    step = chunk_size or max(len(body), 1)
    for start in range(0, len(body), step):
        reader.feed(body[start : start + step])
    reader.close()
    unreadable = [str(reader.fatal)] if reader.fatal is not None else []
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
    return summary
