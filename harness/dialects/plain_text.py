"""Plain text streams (``text/plain``): every body chunk is text.

Such a body has no events, so ``TextFramer`` stands in for the SSE decoder: it decodes
UTF-8 incrementally and wraps each chunk's text in an ``Event`` of type ``"text"``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal

from harness.dialects.base import Delta, DeltaKind
from harness.sse import Event

__all__ = ["PlainText", "TextFramer"]

TEXT_EVENT = "text"


class TextFramer:
    """Turns a plain-text body into one ``Event`` per chunk that decodes to text.

    It has the shape of ``harness.sse.Decoder`` (``feed``, ``single_data``, ``close``,
    ``discarded``), so a reader handles both framings alike. A multi-byte character split
    across chunks is held back until it is complete; invalid bytes become U+FFFD.
    """

    __slots__ = ("_decoder", "discarded")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.discarded = False

    def feed(self, data: bytes) -> list[Event]:
        text = self._decoder.decode(data)
        return [Event(TEXT_EVENT, text)] if text else []

    def single_data(self, data: bytes) -> None:
        """Always None: a text body holds no ``data:`` events to read apart."""
        return None

    def close(self) -> list[Event]:
        text = self._decoder.decode(b"", final=True)
        return [Event(TEXT_EVENT, text)] if text else []


@dataclass(frozen=True, slots=True)
class PlainText:
    """The ``text`` dialect: all text is content; the end of the body ends the stream."""

    name: str = "text"
    framing: Literal["sse", "text"] = "text"

    def interpret(self, event: Event) -> tuple[Delta, ...]:
        if not event.data:
            return ()
        return (Delta(kind=DeltaKind.CONTENT, text=event.data),)
