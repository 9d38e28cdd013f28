"""OpenAI Chat Completions and legacy Completions: their chunks and their JSON bodies.

A chat stream is what OpenAI sends: a first chunk with ``delta.role``, one chunk per
token event (``delta.reasoning_content`` in the reasoning phase, ``delta.content`` after
it), a chunk with an empty delta and the ``finish_reason``, with
``stream_options.include_usage`` a chunk with empty ``choices`` and the usage (and
``"usage": null`` on every chunk before it), then ``data: [DONE]``. Every chunk repeats
the same ``id``, ``created`` and ``model``. Chunks are built from a pre-serialised
prefix, so a token costs one JSON string escape.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from mock_server.plan import Plan
from mock_server.render.frames import CONTENT, REASONING, Identity, Piece

__all__ = [
    "ChatStream",
    "CompletionsStream",
    "chat_body",
    "chat_usage",
    "completions_body",
    "completions_usage",
    "dumps",
    "json_string",
]

_DONE = Piece("[DONE]")
_FINGERPRINT = "fp_mock"


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is (as the real APIs send it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=65536)
def json_string(text: str) -> str:
    """A token's text as a JSON string, memoised: tokens repeat the vocabulary's words."""
    return json.dumps(text, ensure_ascii=False)


@functools.lru_cache(maxsize=65536)
def json_bytes(text: str) -> bytes:
    """``json_string(text)`` as UTF-8 bytes, memoised the same way."""
    return json_string(text).encode()


def _error_piece(message: str) -> Piece:
    error = {"message": message, "type": "server_error", "param": None, "code": None}
    return Piece(dumps({"error": error}))


def chat_usage(plan: Plan) -> dict[str, Any]:
    """The chat ``usage`` object: the counts of what was sent."""
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
    }


def completions_usage(plan: Plan) -> dict[str, Any]:
    """The legacy completions ``usage`` object."""
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


class ChatStream:
    """The ``chat.completion.chunk`` stream of one plan."""

    content_type = "text/event-stream; charset=utf-8"
    json_tokens = True

    def __init__(self, plan: Plan, identity: Identity) -> None:
        self._plan = plan
        head = {
            "id": f"chatcmpl-{identity.response_id}",
            "object": "chat.completion.chunk",
            "created": identity.created_s,
            "model": plan.model,
            "system_fingerprint": _FINGERPRINT,
        }
        self._head = dumps(head)[:-1] + ',"choices":[{"index":0,"delta":'
        self._tail = ',"logprobs":null,"finish_reason":null}]'
        self._tail += ',"usage":null}' if plan.include_usage else "}"
        line = "data: " + self._head
        self._token_prefix = {
            CONTENT: (line + '{"content":').encode(),
            REASONING: (line + '{"content":null,"reasoning_content":').encode(),
        }
        self._token_suffix = ("}" + self._tail + "\n\n").encode()

    def _chunk(self, delta: str) -> Piece:
        return Piece(self._head + delta + self._tail)

    def token_bytes(self, phase: str, text: str) -> bytes:
        """``encode(token(phase, text).data)`` with LF line ends, built faster.

        A stream makes one of these per token when it is admitted, so the prefix and
        suffix are encoded once per stream and each token's JSON string once per text.
        """
        return self._token_prefix[phase] + json_bytes(text) + self._token_suffix

    def preamble(self) -> list[Piece]:
        return [self._chunk('{"role":"assistant","content":"","refusal":null}')]

    def start(self, phase: str) -> list[Piece]:
        return []

    def token(self, phase: str, text: str, position: int) -> Piece:
        if phase == CONTENT:
            return self._chunk('{"content":' + json_string(text) + "}")
        return self._chunk('{"content":null,"reasoning_content":' + json_string(text) + "}")

    def end(self, phase: str) -> list[Piece]:
        return []

    def finish(self) -> list[Piece]:
        tail = ',"logprobs":null,"finish_reason":' + dumps(self._plan.finish) + "}]"
        tail += ',"usage":null}' if self._plan.include_usage else "}"
        pieces = [Piece(self._head + "{}" + tail)]
        if self._plan.include_usage:
            head = self._head[: -len('{"index":0,"delta":')]
            pieces.append(Piece(head + '],"usage":' + dumps(chat_usage(self._plan)) + "}"))
        return pieces

    def terminator(self) -> list[Piece]:
        return [_DONE]

    def error(self) -> list[Piece]:
        return [_error_piece("mock fault: error_event")]

    def periodic(self) -> tuple[float, Piece] | None:
        return None


class CompletionsStream:
    """The legacy ``text_completion`` stream of one plan."""

    content_type = "text/event-stream; charset=utf-8"
    json_tokens = True

    def __init__(self, plan: Plan, identity: Identity) -> None:
        self._plan = plan
        head = {
            "id": f"cmpl-{identity.response_id}",
            "object": "text_completion",
            "created": identity.created_s,
            "model": plan.model,
        }
        self._head = dumps(head)[:-1] + ',"choices":['
        self._null_usage = ',"usage":null}' if plan.include_usage else "}"

    def _chunk(self, text: str, finish: str | None) -> Piece:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return Piece(self._head + dumps(choice) + "]" + self._null_usage)

    def preamble(self) -> list[Piece]:
        return []

    def start(self, phase: str) -> list[Piece]:
        return []

    def token(self, phase: str, text: str, position: int) -> Piece:
        return self._chunk(text, None)

    def end(self, phase: str) -> list[Piece]:
        return []

    def finish(self) -> list[Piece]:
        pieces = [self._chunk("", self._plan.finish)]
        if self._plan.include_usage:
            usage = dumps(completions_usage(self._plan))
            pieces.append(Piece(self._head + '],"usage":' + usage + "}"))
        return pieces

    def terminator(self) -> list[Piece]:
        return [_DONE]

    def error(self) -> list[Piece]:
        return [_error_piece("mock fault: error_event")]

    def periodic(self) -> tuple[float, Piece] | None:
        return None


def chat_body(plan: Plan, identity: Identity) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": plan.text, "refusal": None}
    if plan.reasoning_tokens:
        message["reasoning_content"] = plan.reasoning_text
    return {
        "id": f"chatcmpl-{identity.response_id}",
        "object": "chat.completion",
        "created": identity.created_s,
        "model": plan.model,
        "system_fingerprint": _FINGERPRINT,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": plan.finish}
        ],
        "usage": chat_usage(plan),
    }


def completions_body(plan: Plan, identity: Identity) -> dict[str, Any]:
    """The non-streaming ``text_completion`` object."""
    return {
        "id": f"cmpl-{identity.response_id}",
        "object": "text_completion",
        "created": identity.created_s,
        "model": plan.model,
        "choices": [
            {"text": plan.text, "index": 0, "logprobs": None, "finish_reason": plan.finish}
        ],
        "usage": completions_usage(plan),
    }
