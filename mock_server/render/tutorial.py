"""The home-made formats that FastAPI tutorials teach.

* ``/tutorial/content``: ``data: {"content": "..."}`` per token event, ended by
  ``data: [DONE]``.
* ``/tutorial/events``: named events: ``event: start``, ``event: content`` with an
  ``id:`` line (1, 2, ...), ``event: complete`` with ``finish_reason``, ``usage`` and
  ``full_content``; ``event: error`` on a fault.
* ``/tutorial/text``: the tokens as a ``text/plain`` chunked body, nothing else.
* ``/tutorial/counter``: ``data: {"count": n}`` for n = 1..max, as sse-starlette examples
  do; the body just ends.
"""

from __future__ import annotations

from typing import Any

from mock_server.plan import Plan
from mock_server.render.frames import Identity, Piece
from mock_server.render.openai import completions_usage, dumps, json_string

__all__ = ["ContentStream", "CounterStream", "EventsStream", "TextStream"]

_SSE = "text/event-stream; charset=utf-8"


def _error(message: str = "mock fault: error_event") -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error"}}


class _Base:
    content_type = _SSE
    json_tokens = True

    def __init__(self, plan: Plan, identity: Identity) -> None:
        self._plan = plan
        self._identity = identity

    def preamble(self) -> list[Piece]:
        return []

    def start(self, phase: str) -> list[Piece]:
        return []

    def end(self, phase: str) -> list[Piece]:
        return []

    def finish(self) -> list[Piece]:
        return []

    def terminator(self) -> list[Piece]:
        return []

    def error(self) -> list[Piece]:
        return [Piece(dumps(_error()))]

    def periodic(self) -> tuple[float, Piece] | None:
        return None


class ContentStream(_Base):
    """``data: {"content": ...}`` events and ``data: [DONE]``."""

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        return Piece('{"content":' + json_string(text) + "}")

    def terminator(self) -> list[Piece]:
        return [Piece("[DONE]")]


class EventsStream(_Base):
    """Named ``start`` / ``content`` / ``complete`` / ``error`` events."""

    def preamble(self) -> list[Piece]:
        start = {"request_id": self._identity.request_id, "model": self._plan.model}
        return [Piece(dumps(start), event="start")]

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        return Piece('{"content":' + json_string(text) + "}", event="content", id=str(position))

    def terminator(self) -> list[Piece]:
        complete = {
            "finish_reason": self._plan.finish,
            "usage": completions_usage(self._plan),
            "full_content": self._plan.text,
        }
        return [Piece(dumps(complete), event="complete")]

    def error(self) -> list[Piece]:
        return [Piece(dumps(_error()), event="error")]


class TextStream(_Base):
    """A ``text/plain`` body: the token texts and nothing else (no error channel)."""

    content_type = "text/plain; charset=utf-8"
    json_tokens = False

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        return Piece(text, raw=True)

    def error(self) -> list[Piece]:
        return []


class CounterStream(_Base):
    """``data: {"count": n}`` events."""

    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece:
        return Piece('{"count":' + text + "}")
