"""Anthropic Messages: its typed stream events and its ``message`` object.

A stream runs ``message_start`` (input usage), a ``ping``, then per content block
``content_block_start``, ``content_block_delta``s and ``content_block_stop`` (a
``thinking`` block with ``thinking_delta``s and a ``signature_delta`` when reasoning is
on, then the ``text`` block), ``message_delta`` with the ``stop_reason`` and the output
usage, and ``message_stop``. Further pings come every ``ping_interval_ms``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mock_server.plan import Plan
from mock_server.render.frames import CONTENT, REASONING, Identity, Piece
from mock_server.render.openai import dumps, json_string

__all__ = ["AnthropicStream", "anthropic_usage", "messages_body", "stop_reason"]

_PING = Piece('{"type":"ping"}', event="ping")


def anthropic_usage(plan: Plan, output_tokens: int) -> dict[str, Any]:
    """A message's ``usage``. With a prefix cache, as Anthropic counts: ``input_tokens``
    are the uncached ones, ``cache_read_input_tokens`` the cached (nothing is ever
    reported written to the cache: ``cache_creation_input_tokens`` is 0)."""
    if not plan.prefix_cache:
        return {"input_tokens": plan.prompt_tokens, "output_tokens": output_tokens}
    return {
        "input_tokens": plan.prompt_tokens - plan.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": plan.cached_tokens,
        "output_tokens": output_tokens,
    }


def stop_reason(plan: Plan) -> str:
    """Anthropic's word for the plan's finish."""
    return "max_tokens" if plan.finish == "length" else "end_turn"


def _signature(plan: Plan) -> str:
    return hashlib.sha256(plan.reasoning_text.encode()).hexdigest()[:48]


class AnthropicStream:
    """The Messages event stream of one plan."""

    content_type = "text/event-stream; charset=utf-8"
    json_tokens = True

    def __init__(self, plan: Plan, identity: Identity, *, ping_interval_ms: float) -> None:
        self._plan = plan
        self._identity = identity
        self._ping_interval_ms = ping_interval_ms
        self._pinged = False
        self._index = 0 if plan.reasoning else -1  # the current block's index
        self._text_head = '{"type":"content_block_delta","index":'
        self._text_mid = ',"delta":{"type":"text_delta","text":'
        self._thinking_mid = ',"delta":{"type":"thinking_delta","thinking":'

    def _event(self, payload: dict[str, Any]) -> Piece:
        return Piece(dumps(payload), event=payload["type"])

    def preamble(self) -> list[Piece]:
        message: dict[str, Any] = {
            "id": f"msg_{self._identity.response_id}",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._plan.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(self._plan, 0),
        }
        return [self._event({"type": "message_start", "message": message})]

    def start(self, phase: str) -> list[Piece]:
        if phase == REASONING:
            self._index = 0
            block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            self._index = 1 if self._plan.reasoning else 0
            block = {"type": "text", "text": ""}
        pieces = [
            self._event(
                {"type": "content_block_start", "index": self._index, "content_block": block}
            )
        ]
        if not self._pinged:  # the real API pings once right after the first block opens
            self._pinged = True
            pieces.append(_PING)
        return pieces

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        middle = self._text_mid if phase == CONTENT else self._thinking_mid
        data = self._text_head + str(self._index) + middle + json_string(text) + "}}"
        return Piece(data, event="content_block_delta")

    def end(self, phase: str) -> list[Piece]:
        pieces = []
        if phase == REASONING:
            delta = {"type": "signature_delta", "signature": _signature(self._plan)}
            pieces.append(
                self._event({"type": "content_block_delta", "index": self._index, "delta": delta})
            )
        pieces.append(self._event({"type": "content_block_stop", "index": self._index}))
        return pieces

    def finish(self) -> list[Piece]:
        delta = {"stop_reason": stop_reason(self._plan), "stop_sequence": None}
        usage = {"output_tokens": self._plan.completion_tokens}
        return [self._event({"type": "message_delta", "delta": delta, "usage": usage})]

    def terminator(self) -> list[Piece]:
        return [self._event({"type": "message_stop"})]

    def error(self) -> list[Piece]:
        error = {"type": "overloaded_error", "message": "mock fault: error_event"}
        return [self._event({"type": "error", "error": error})]

    def periodic(self) -> tuple[float, Piece] | None:
        return (self._ping_interval_ms, _PING) if self._ping_interval_ms else None


def messages_body(plan: Plan, identity: Identity) -> dict[str, Any]:
    """The non-streaming ``message`` object."""
    content: list[dict[str, Any]] = []
    if plan.reasoning:
        content.append(
            {"type": "thinking", "thinking": plan.reasoning_text, "signature": _signature(plan)}
        )
    content.append({"type": "text", "text": plan.text})
    return {
        "id": f"msg_{identity.response_id}",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": plan.model,
        "stop_reason": stop_reason(plan),
        "stop_sequence": None,
        "usage": anthropic_usage(plan, plan.completion_tokens),
    }
