"""OpenAI Chat Completions and legacy Completions: their chunks and their JSON bodies.

A chat stream is what OpenAI sends: a first chunk with ``delta.role``, one chunk per
token event (``delta.reasoning_content`` in the reasoning phase, ``delta.content`` after
it), a chunk with an empty delta and the ``finish_reason``, with
``stream_options.include_usage`` a chunk with empty ``choices`` and the usage (and
``"usage": null`` on every chunk before it), then ``data: [DONE]``. Every chunk repeats
the same ``id``, ``created`` and ``model``. Chunks are built from a pre-serialised
prefix, so a token costs one JSON string escape.

With ``n`` choices every chunk still carries one choice, named by its ``index``: a role
chunk per choice, the choices' token chunks interleaved, a finish chunk per choice, and
one usage chunk counting them all (completions alike, without the role chunks).
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
    """The chat ``usage`` object: the counts of what was sent (every choice)."""
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": plan.reasoning_tokens * plan.n},
    }


def completions_usage(plan: Plan) -> dict[str, Any]:
    """The legacy completions ``usage`` object (with its cached tokens when the server
    has a prefix cache)."""
    usage: dict[str, Any] = {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }
    if plan.prefix_cache:
        usage["prompt_tokens_details"] = {"cached_tokens": plan.cached_tokens}
    return usage


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
        self._choices_head = dumps(head)[:-1] + ',"choices":['
        self._heads = [
            self._choices_head + '{"index":' + str(choice) + ',"delta":' for choice in range(plan.n)
        ]
        self._tail = ',"logprobs":null,"finish_reason":null}]'
        self._tail += ',"usage":null}' if plan.include_usage else "}"
        self._token_prefixes = [
            {
                CONTENT: ("data: " + head + '{"content":').encode(),
                REASONING: ("data: " + head + '{"content":null,"reasoning_content":').encode(),
            }
            for head in self._heads
        ]
        self._token_suffix = ("}" + self._tail + "\n\n").encode()

    def _chunk(self, delta: str, choice: int = 0) -> Piece:
        return Piece(self._heads[choice] + delta + self._tail)

    def token_bytes(self, phase: str, text: str, choice: int = 0) -> bytes:
        """``encode(token(phase, text, _, choice).data)`` with LF line ends, built faster.

        A stream makes one of these per token when it is admitted, so the prefixes and
        suffix are encoded once per stream and each token's JSON string once per text.
        """
        return self._token_prefixes[choice][phase] + json_bytes(text) + self._token_suffix

    def preamble(self) -> list[Piece]:
        role = '{"role":"assistant","content":"","refusal":null}'
        return [self._chunk(role, choice) for choice in range(self._plan.n)]

    def start(self, phase: str) -> list[Piece]:
        return []

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        if phase == CONTENT:
            return self._chunk('{"content":' + json_string(text) + "}", choice)
        delta = '{"content":null,"reasoning_content":' + json_string(text) + "}"
        return self._chunk(delta, choice)

    def end(self, phase: str) -> list[Piece]:
        return []

    def finish(self) -> list[Piece]:
        tail = ',"logprobs":null,"finish_reason":' + dumps(self._plan.finish) + "}]"
        tail += ',"usage":null}' if self._plan.include_usage else "}"
        pieces = [Piece(head + "{}" + tail) for head in self._heads]
        if self._plan.include_usage:
            usage = dumps(chat_usage(self._plan))
            pieces.append(Piece(self._choices_head + '],"usage":' + usage + "}"))
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

    def _chunk(self, text: str, finish: str | None, choice: int = 0) -> Piece:
        fields = {"text": text, "index": choice, "logprobs": None, "finish_reason": finish}
        return Piece(self._head + dumps(fields) + "]" + self._null_usage)

    def preamble(self) -> list[Piece]:
        return []

    def start(self, phase: str) -> list[Piece]:
        return []

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        return self._chunk(text, None, choice)

    def end(self, phase: str) -> list[Piece]:
        return []

    def finish(self) -> list[Piece]:
        pieces = [self._chunk("", self._plan.finish, choice) for choice in range(self._plan.n)]
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
    choices = []
    for index in range(plan.n):
        texts = plan.choice(index)
        message: dict[str, Any] = {"role": "assistant", "content": texts.text, "refusal": None}
        if plan.reasoning_tokens:
            message["reasoning_content"] = texts.reasoning_text
        choices.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": plan.finish}
        )
    return {
        "id": f"chatcmpl-{identity.response_id}",
        "object": "chat.completion",
        "created": identity.created_s,
        "model": plan.model,
        "system_fingerprint": _FINGERPRINT,
        "choices": choices,
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
            {
                "text": plan.choice(index).text,
                "index": index,
                "logprobs": None,
                "finish_reason": plan.finish,
            }
            for index in range(plan.n)
        ],
        "usage": completions_usage(plan),
    }
