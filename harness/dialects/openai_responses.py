"""OpenAI Responses API streaming: typed semantic events.

Every event names its type twice, in the SSE ``event`` field and in the data's ``type``::

    event: response.output_text.delta
    data: {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
           "content_index": 0, "delta": "Hi", "sequence_number": 4}

The stream ends with ``response.completed``, ``response.incomplete`` or
``response.failed``, whose ``response`` holds the usage and status; OpenAI sends no
``[DONE]`` (one added by a proxy is read as DONE). A function call is an output item
(``response.output_item.added`` with ``call_id`` and ``name``) whose arguments then
arrive as ``response.function_call_arguments.delta``, keyed by ``output_index``. The API
adds event types often, so a type this dialect does not know is IGNORABLE, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.dialects.base import Delta, DeltaKind
from harness.dialects.fields import Fields
from harness.dialects.openai_chat import DONE_SENTINEL
from harness.sse import Event

__all__ = ["OpenAIResponses"]

_IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)
_DONE = Delta(kind=DeltaKind.DONE)

#: Events whose ``delta`` is text, and the kind of text.
_TEXT_EVENTS = {
    "response.output_text.delta": DeltaKind.CONTENT,
    "response.reasoning_summary_text.delta": DeltaKind.REASONING,
    "response.reasoning_text.delta": DeltaKind.REASONING,
    "response.refusal.delta": DeltaKind.REFUSAL,
}

#: Events whose ``delta`` is argument text of the call at ``output_index``.
_ARGUMENT_EVENTS = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)

#: Output items that are calls the client must answer.
_CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})


@dataclass(frozen=True, slots=True)
class OpenAIResponses:
    """The ``openai-responses`` dialect: ``/v1/responses`` with ``stream: true``."""

    name: str = "openai-responses"
    framing: Literal["sse", "text"] = "sse"

    def interpret(self, event: Event) -> tuple[Delta, ...]:
        """Return what one event adds to the response.

        The type is the data's ``type``, else the SSE event name.

        Args:
            event: one SSE event of the stream.

        Returns:
            The event's deltas; IGNORABLE for lifecycle, ``.added``/``.done`` and unknown
            events.

        Raises:
            DialectError: the data is not a JSON object, it has no type, or a field has
                the wrong type.
        """
        fields = Fields(self.name, event.data)
        if event.data.strip() == DONE_SENTINEL:  # not sent by OpenAI; some proxies add it
            return (_DONE,)
        payload = fields.load()
        kind = fields.string(payload, "type") or (event.type if event.type != "message" else "")
        if not kind:
            raise fields.error("the event has no type (neither an SSE event name nor 'type')")
        text_kind = _TEXT_EVENTS.get(kind)
        if text_kind is not None:
            text = fields.string(payload, "delta") or ""
            return (Delta(kind=text_kind, text=text),) if text else _IGNORABLE
        if kind in _ARGUMENT_EVENTS:
            return (
                Delta(
                    kind=DeltaKind.TOOL_CALL,
                    text=fields.string(payload, "delta") or "",
                    index=fields.integer(payload, "output_index"),
                ),
            )
        if kind == "response.output_item.added":
            return _item_added(fields, payload)
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            return _terminal(fields, payload, kind)
        if kind == "error":
            error = payload.get("error")
            if error is None:  # the error's fields are the event's own
                error = {k: v for k, v in payload.items() if k not in ("type", "sequence_number")}
            return (Delta(kind=DeltaKind.ERROR, error=error),)
        return _IGNORABLE


def _item_added(fields: Fields, payload: dict[str, Any]) -> tuple[Delta, ...]:
    item = fields.mapping(payload, "item")
    if item is None or fields.string(item, "type", "item") not in _CALL_ITEMS:
        return _IGNORABLE
    arguments = fields.string(item, "arguments", "item") or fields.string(item, "input", "item")
    return (
        Delta(
            kind=DeltaKind.TOOL_CALL,
            text=arguments or "",
            index=fields.integer(payload, "output_index"),
            tool_id=fields.string(item, "call_id", "item"),
            tool_name=fields.string(item, "name", "item"),
        ),
    )


def _terminal(fields: Fields, payload: dict[str, Any], kind: str) -> tuple[Delta, ...]:
    response = fields.mapping(payload, "response") or {}
    deltas: list[Delta] = []
    usage = fields.mapping(response, "usage", "response")
    if usage is not None:
        deltas.append(Delta(kind=DeltaKind.USAGE, usage=usage))
    status = fields.string(response, "status", "response")
    if kind == "response.failed":
        error = response.get("error")
        if error is None:
            error = status or "failed"
        deltas.append(Delta(kind=DeltaKind.ERROR, error=error))
    elif kind == "response.incomplete":
        details = fields.mapping(response, "incomplete_details", "response") or {}
        reason = fields.string(details, "reason", "response.incomplete_details")
        deltas.append(Delta(kind=DeltaKind.FINISH, finish_reason=reason or status or "incomplete"))
    else:
        deltas.append(Delta(kind=DeltaKind.FINISH, finish_reason=status or "completed"))
    deltas.append(_DONE)
    return tuple(deltas)
