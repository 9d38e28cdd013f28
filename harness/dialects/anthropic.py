"""Anthropic Messages streaming: typed events around indexed content blocks.

A stream runs ``message_start`` (the message, with its input usage), then per content
block ``content_block_start``, ``content_block_delta``s and ``content_block_stop``, then
``message_delta`` (the stop reason and the final output usage) and ``message_stop``;
``ping`` may come anywhere and ``error`` ends a failed stream::

    event: content_block_delta
    data: {"type": "content_block_delta", "index": 0,
           "delta": {"type": "text_delta", "text": "Hi"}}

A block is text (``text_delta``), thinking (``thinking_delta``, then a
``signature_delta``) or a tool call (``tool_use`` with id and name, then
``input_json_delta`` fragments). The usage of ``message_delta`` updates the usage of
``message_start`` key by key, which is what the accumulator's merge does; the output
count of ``message_start`` is a placeholder and is not taken. Anthropic adds
event and delta types over time, so unknown ones are IGNORABLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.dialects.base import Delta, DeltaKind
from harness.dialects.fields import Fields
from harness.sse import Event

__all__ = ["Anthropic"]

_IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)
_DONE = (Delta(kind=DeltaKind.DONE),)

#: Content blocks that are tool calls (client tools, server tools, MCP tools).
_CALL_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})

#: Block types and delta types whose text field is content or reasoning.
_TEXT_FIELDS = {
    "text": ("text", DeltaKind.CONTENT),
    "text_delta": ("text", DeltaKind.CONTENT),
    "thinking": ("thinking", DeltaKind.REASONING),
    "thinking_delta": ("thinking", DeltaKind.REASONING),
}


@dataclass(frozen=True, slots=True)
class Anthropic:
    """The ``anthropic`` dialect: ``/v1/messages`` with ``stream: true``."""

    name: str = "anthropic"
    framing: Literal["sse", "text"] = "sse"

    def interpret(self, event: Event) -> tuple[Delta, ...]:
        """Return what one event adds to the response.

        The type is the data's ``type``, else the SSE event name.

        Args:
            event: one SSE event of the stream.

        Returns:
            The event's deltas; IGNORABLE for ``ping``, ``content_block_stop``,
            signature and citation deltas, and unknown events.

        Raises:
            DialectError: the data is not a JSON object, it has no type, or a field has
                the wrong type.
        """
        fields = Fields(self.name, event.data)
        payload = fields.load()
        kind = fields.string(payload, "type") or (event.type if event.type != "message" else "")
        if not kind:
            raise fields.error("the event has no type (neither an SSE event name nor 'type')")
        if kind == "content_block_delta":
            return _block_delta(fields, payload)
        if kind == "content_block_start":
            return _block_start(fields, payload)
        if kind == "message_start":
            message = fields.mapping(payload, "message") or {}
            usage = fields.mapping(message, "usage", "message") or {}
            # its output_tokens is a placeholder (1): the count is message_delta's alone,
            # so a stream cut before it has no output count rather than a wrong one
            usage = {key: value for key, value in usage.items() if key != "output_tokens"}
            return (Delta(kind=DeltaKind.USAGE, usage=usage),) if usage else _IGNORABLE
        if kind == "message_delta":
            return _message_delta(fields, payload)
        if kind == "message_stop":
            return _DONE
        if kind == "error":
            error = payload.get("error")
            return (Delta(kind=DeltaKind.ERROR, error=payload if error is None else error),)
        return _IGNORABLE


def _block_start(fields: Fields, payload: dict[str, Any]) -> tuple[Delta, ...]:
    index = fields.integer(payload, "index")
    block = fields.mapping(payload, "content_block") or {}
    block_type = fields.string(block, "type", "content_block")
    if block_type in _CALL_BLOCKS:
        return (
            Delta(
                kind=DeltaKind.TOOL_CALL,
                index=index,
                tool_id=fields.string(block, "id", "content_block"),
                tool_name=fields.string(block, "name", "content_block"),
            ),
        )
    return _text(fields, block, block_type, "content_block")


def _block_delta(fields: Fields, payload: dict[str, Any]) -> tuple[Delta, ...]:
    index = fields.integer(payload, "index")
    delta = fields.mapping(payload, "delta") or {}
    delta_type = fields.string(delta, "type", "delta")
    if delta_type == "input_json_delta":
        text = fields.string(delta, "partial_json", "delta") or ""
        return (Delta(kind=DeltaKind.TOOL_CALL, text=text, index=index),)
    return _text(fields, delta, delta_type, "delta")


def _text(
    fields: Fields, obj: dict[str, Any], obj_type: str | None, path: str
) -> tuple[Delta, ...]:
    known = _TEXT_FIELDS.get(obj_type or "")
    if known is None:
        return _IGNORABLE
    key, kind = known
    text = fields.string(obj, key, path)
    return (Delta(kind=kind, text=text),) if text else _IGNORABLE


def _message_delta(fields: Fields, payload: dict[str, Any]) -> tuple[Delta, ...]:
    deltas: list[Delta] = []
    delta = fields.mapping(payload, "delta") or {}
    reason = fields.string(delta, "stop_reason", "delta")
    if reason is not None:
        deltas.append(Delta(kind=DeltaKind.FINISH, finish_reason=reason))
    usage = fields.mapping(payload, "usage") or {}
    # A null count here means "not reported", not zero: the SDK keeps message_start's.
    reported = {key: value for key, value in usage.items() if value is not None}
    if reported:
        deltas.append(Delta(kind=DeltaKind.USAGE, usage=reported))
    return tuple(deltas) or _IGNORABLE
