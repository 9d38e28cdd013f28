"""The OpenAI Responses API: its named stream events and its ``response`` object.

A stream runs ``response.created``, ``response.in_progress``; with reasoning, a
``reasoning`` output item whose summary text arrives as
``response.reasoning_summary_text.delta``; then a ``message`` item (``output_item.added``,
``content_part.added``, ``output_text.delta`` per token event, ``output_text.done``,
``content_part.done``, ``output_item.done``); and ends with ``response.completed`` (or
``response.incomplete`` with reason ``max_output_tokens``), which carries the usage.
Every event names its type in the SSE ``event`` field and in ``type``, and carries an
increasing ``sequence_number``.
"""

from __future__ import annotations

from typing import Any

from mock_server.plan import Plan
from mock_server.render.frames import CONTENT, REASONING, Identity, Piece
from mock_server.render.openai import dumps, json_string

__all__ = ["ResponsesStream", "responses_body"]


def _usage(plan: Plan) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_tokens},
        "output_tokens": plan.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def _ids(identity: Identity) -> tuple[str, str, str]:
    return (
        f"resp_{identity.response_id}",
        f"rs_{identity.response_id}",
        f"msg_{identity.response_id}",
    )


def _reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def _response(
    plan: Plan, identity: Identity, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    incomplete = status == "incomplete"
    return {
        "id": _ids(identity)[0],
        "object": "response",
        "created_at": identity.created_s,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(plan) if status != "in_progress" else None,
        "metadata": {},
    }


def _final_output(plan: Plan, identity: Identity) -> list[dict[str, Any]]:
    _, reasoning_id, message_id = _ids(identity)
    output = []
    if plan.reasoning:
        output.append(_reasoning_item(reasoning_id, plan.reasoning_text))
    output.append(_message_item(message_id, plan.text, "completed"))
    return output


def _final_status(plan: Plan) -> str:
    return "incomplete" if plan.finish == "length" else "completed"


class ResponsesStream:
    """The Responses API event stream of one plan."""

    content_type = "text/event-stream; charset=utf-8"
    json_tokens = True

    def __init__(self, plan: Plan, identity: Identity) -> None:
        self._plan = plan
        self._identity = identity
        _, self._reasoning_id, self._message_id = _ids(identity)
        self._sequence = 0
        self._message_index = 1 if plan.reasoning else 0
        head = '{"type":"response.output_text.delta","sequence_number":'
        self._text_head = head
        self._text_mid = ',"item_id":' + dumps(self._message_id)
        self._text_mid += f',"output_index":{self._message_index},"content_index":0,"delta":'
        self._summary_mid = ',"item_id":' + dumps(self._reasoning_id)
        self._summary_mid += ',"output_index":0,"summary_index":0,"delta":'

    def _event(self, kind: str, fields: dict[str, Any]) -> Piece:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return Piece(dumps(payload), event=kind)

    def preamble(self) -> list[Piece]:
        created = _response(self._plan, self._identity, "in_progress", [])
        return [
            self._event("response.created", {"response": created}),
            self._event("response.in_progress", {"response": created}),
        ]

    def start(self, phase: str) -> list[Piece]:
        if phase == REASONING:
            item = {"id": self._reasoning_id, "type": "reasoning", "summary": []}
            part: dict[str, Any] = {"type": "summary_text", "text": ""}
            where = {"item_id": self._reasoning_id, "output_index": 0, "summary_index": 0}
            return [
                self._event("response.output_item.added", {"output_index": 0, "item": item}),
                self._event("response.reasoning_summary_part.added", {**where, "part": part}),
            ]
        index = self._message_index
        item = _message_item(self._message_id, "", "in_progress")
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        where = {"item_id": self._message_id, "output_index": index, "content_index": 0}
        return [
            self._event("response.output_item.added", {"output_index": index, "item": item}),
            self._event("response.content_part.added", {**where, "part": part}),
        ]

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        sequence = self._sequence
        self._sequence += 1
        if phase == CONTENT:
            data = self._text_head + str(sequence) + self._text_mid + json_string(text)
            return Piece(data + ',"logprobs":[]}', event="response.output_text.delta")
        kind = "response.reasoning_summary_text.delta"
        data = '{"type":"' + kind + '","sequence_number":' + str(sequence)
        return Piece(data + self._summary_mid + json_string(text) + "}", event=kind)

    def end(self, phase: str) -> list[Piece]:
        if phase == REASONING:
            text = self._plan.reasoning_text
            part: dict[str, Any] = {"type": "summary_text", "text": text}
            where = {"item_id": self._reasoning_id, "output_index": 0, "summary_index": 0}
            item = _reasoning_item(self._reasoning_id, text)
            return [
                self._event("response.reasoning_summary_text.done", {**where, "text": text}),
                self._event("response.reasoning_summary_part.done", {**where, "part": part}),
                self._event("response.output_item.done", {"output_index": 0, "item": item}),
            ]
        text = self._plan.text
        index = self._message_index
        where = {"item_id": self._message_id, "output_index": index, "content_index": 0}
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = _message_item(self._message_id, text, "completed")
        return [
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []}),
            self._event("response.content_part.done", {**where, "part": part}),
            self._event("response.output_item.done", {"output_index": index, "item": item}),
        ]

    def finish(self) -> list[Piece]:
        return []

    def terminator(self) -> list[Piece]:
        status = _final_status(self._plan)
        response = _response(
            self._plan, self._identity, status, _final_output(self._plan, self._identity)
        )
        return [self._event(f"response.{status}", {"response": response})]

    def error(self) -> list[Piece]:
        fields = {"code": "server_error", "message": "mock fault: error_event", "param": None}
        return [self._event("error", fields)]

    def periodic(self) -> tuple[float, Piece] | None:
        return None


def responses_body(plan: Plan, identity: Identity) -> dict[str, Any]:
    """The non-streaming ``response`` object."""
    return _response(plan, identity, _final_status(plan), _final_output(plan, identity))
