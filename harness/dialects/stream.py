"""Reading one response body: framing, dialect and accumulation in one sans-IO object.

``StreamReader`` is what every entry point (``run``, ``check``, ``decode``, the locust
user) feeds with body bytes. It picks the framing (SSE or plain text), resolves the
dialect (given, or detected from the content type and the first event), interprets every
event and folds the deltas into the response. A payload that does not fit its dialect is
recorded in ``errors`` and the stream goes on; a body the decoder cannot read further (a
line or event over its size limit) is recorded in ``fatal`` and the rest of the body is
ignored. Either way nothing already read is lost.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from harness.dialects.base import Accumulator, Delta, Dialect, StreamResult
from harness.dialects.detect import detect
from harness.dialects.plain_text import PlainText, TextFramer
from harness.errors import DialectError, EventTooLarge, SSEError
from harness.sse import DEFAULT_MAX_EVENT_BYTES, Decoder, Event

__all__ = ["Read", "StreamReader"]


class Read(msgspec.Struct, frozen=True, gc=False):
    """One event as read: the event, what it added, whether it bore a token, and whether
    it was the stream's terminator (the first event with a DONE delta).

    Nothing it holds (an event, a tuple of deltas, two flags) can refer back to a read,
    so the garbage collector need not track it (``gc=False``)."""

    event: Event
    deltas: tuple[Delta, ...]
    token: bool
    terminator: bool = False


def is_plain_text(content_type: str | None) -> bool:
    """True for a ``text/plain`` content type (any parameters)."""
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "text/plain"


class StreamReader:
    """Reads one response body into events, deltas and the final response.

    Args:
        dialect: the dialect to read with; None detects it from ``content_type`` and the
            first event.
        content_type: the response's ``Content-Type``; ``text/plain`` means plain text.
        max_event_bytes: passed to the SSE decoder.
    """

    __slots__ = (
        "_accumulator",
        "_framer",
        "_plain",
        "content_events",
        "dialect",
        "errors",
        "events",
        "fatal",
    )

    def __init__(
        self,
        dialect: Dialect | None = None,
        *,
        content_type: str | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        if dialect is None and is_plain_text(content_type):
            dialect = PlainText()
        self.dialect: Dialect | None = dialect
        self._framer: Decoder | TextFramer = (
            TextFramer()
            if dialect is not None and dialect.framing == "text"
            else Decoder(max_event_bytes)
        )
        self._accumulator = Accumulator()
        self._plain = _plain_reader(dialect, self._framer)
        #: Events dispatched so far (for plain text: chunks that decoded to text).
        self.events = 0
        #: Token-bearing events: content or reasoning text, or tool-call arguments.
        self.content_events = 0
        #: Payloads that did not fit the dialect; each event's error is kept, in order.
        self.errors: list[DialectError] = []
        #: Why the body could not be read to its end, if it could not; nothing after it is.
        self.fatal: SSEError | None = None

    @property
    def discarded(self) -> bool:
        """True when ``close`` discarded an unterminated event."""
        return self._framer.discarded

    def feed(self, data: bytes) -> list[Read]:
        """Read the next chunk of the body.

        Returns:
            The events this chunk completed, read. After a fatal error (see ``fatal``)
            the events before it are still returned, and later chunks are ignored.
        """
        if self.fatal is not None:
            return []
        try:
            events = self._framer.feed(data)
        except EventTooLarge as exc:
            self.fatal = exc
            reads = self._read(list(exc.events))
            self._plain = None  # nothing after a fatal error is read
            return reads
        return self._read(events)

    def read_plain(self, data: bytes) -> str | None:
        """Read ``data`` when it is one event of plain answer text, without building the
        event, its delta and its ``Read``: the fast path of the common event.

        It applies when ``data`` is exactly one ``data:`` event with nothing pending
        (``Decoder.single_data``) and the dialect reads its payload as answer text or as
        nothing (``plain_content``, which openai-chat has). Reading it so changes the
        reader exactly as ``feed(data)`` would, which would return one ``Read`` with
        ``token`` true when the text is not empty, and no terminator.

        Returns:
            The event's answer text (``""`` for none), or None, having read nothing, when
            ``data`` is anything else: ``feed`` it then.
        """
        plain = self._plain
        if plain is None:  # no such reader, or a fatal error met
            return None
        payload = self._framer.single_data(data)
        if payload is None:
            return None
        found = plain(payload)
        if found is None:
            return None
        text, choice = found
        self.events += 1
        if text:
            self._accumulator.add_text(text, choice)
            self.content_events += 1
        return text

    def close(self) -> list[Read]:
        """End the body; returns what its end completes (plain text's last bytes)."""
        return self._read(self._framer.close())

    def result(self) -> StreamResult:
        """The response rebuilt from everything read so far."""
        return self._accumulator.result()

    def _read(self, events: list[Event]) -> list[Read]:
        if not events:
            return []
        reads = []
        dialect = self.dialect
        accumulator = self._accumulator
        for event in events:
            if dialect is None:
                dialect = self.dialect = detect(event)
                self._plain = _plain_reader(dialect, self._framer)
            try:
                deltas = dialect.interpret(event)
            except DialectError as exc:
                self.errors.append(exc)
                deltas = ()
            except Exception as exc:  # a dialect is a boundary: its bug is a bad event here
                name = getattr(dialect, "name", type(dialect).__name__)
                reason = f"could not read the event ({type(exc).__name__}: {exc})"
                self.errors.append(DialectError(name, reason, event.data))
                deltas = ()
            done = accumulator.done
            token = accumulator.add(deltas)
            self.events += 1
            if token:
                self.content_events += 1
            reads.append(Read(event, deltas, token, accumulator.done and not done))
        return reads


#: A dialect's ``plain_content``: an event's data (text or UTF-8 bytes) to its answer text
#: and choice, or None.
_PlainReader = Callable[[str | bytes], tuple[str, int] | None]


def _plain_reader(dialect: Dialect | None, framer: Decoder | TextFramer) -> _PlainReader | None:
    """The dialect's reader of plain answer text, when it has one and the body is SSE."""
    if dialect is None or not isinstance(framer, Decoder):
        return None
    return getattr(dialect, "plain_content", None)
