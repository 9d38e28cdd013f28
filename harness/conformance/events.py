"""A captured body's events, one at a time, each with its place in the body. Pure, no I/O.

Events are decoded by ``harness.dialects.StreamReader`` (so by ``harness.sse``), never by
a second parser. To know where each event sits in the body, the body is fed to the reader
in pieces cut at the ends of its blank lines (found by scanning for line ends, which is
all the framing checks need of the raw bytes) as well as at the edges of the reads it
arrived in: a piece then completes at most one event, whose end offset and arrival time
are the piece's. The decoder's output does not depend on how its input is cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.conformance.captured import Exchange
from harness.dialects import Delta, DeltaKind, StreamReader, get
from harness.dialects.base import parse_json
from harness.dialects.stream import is_plain_text
from harness.sse import Event

__all__ = [
    "EventPass",
    "content_type_to_read",
    "Line",
    "ReadEvent",
    "Spot",
    "iter_lines",
    "load_payload",
    "read_events",
    "split_lines",
]

_LINE_END = re.compile(rb"\r\n|\r|\n")
#: How an event stream begins: a field of its own (any value) or a comment line.
_SSE_START = re.compile(rb"(?:\xef\xbb\xbf)?(?:(?:data|event|id|retry)(?::|\r|\n)|:)")
_UNREAD: Any = object()


def load_payload(data: str | bytes) -> Any:
    """``data`` as JSON, read as the dialects read it; None when it is not JSON, or
    nests too deeply to read."""
    try:
        return parse_json(data)  # type: ignore[arg-type]  # msgspec and json read bytes too
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a body: ``body[start:end]`` is its content, ``ending`` its line end
    (``b""`` for a last line the body ended inside)."""

    start: int
    end: int
    ending: bytes

    @property
    def stop(self) -> int:
        """The offset just after its line end."""
        return self.end + len(self.ending)


def iter_lines(body: bytes) -> Iterator[Line]:
    """The lines of ``body`` as WHATWG counts them (CRLF, LF or CR end a line), in order."""
    position = 0
    for match in _LINE_END.finditer(body):
        yield Line(position, match.start(), match.group())
        position = match.end()
    if position < len(body):
        yield Line(position, len(body), b"")


def split_lines(body: bytes) -> list[Line]:
    """Every line of ``body`` (see ``iter_lines``)."""
    return list(iter_lines(body))


@dataclass(frozen=True, slots=True)
class Spot:
    """Where an event is in a body: ``body[start:end]``, from the line after the previous
    blank line to the end of its own blank line."""

    start: int
    end: int


class ReadEvent:
    """One dispatched event, where it is in the body and what it meant.

    Attributes:
        number: its position in the stream, from 0.
        event: the event as ``harness.sse`` dispatched it.
        deltas: what the dialect read in it.
        token: whether it carried content or reasoning text.
        start: the offset where its block begins (after the previous blank line).
        end: the offset just after the blank line that dispatched it.
        arrival_ns: when the read that completed it arrived.
        error: why its payload does not fit the dialect, if it does not.
        split: whether it began in an earlier read than the one that completed it.
    """

    __slots__ = (
        "_kinds",
        "_payload",
        "arrival_ns",
        "deltas",
        "end",
        "error",
        "event",
        "number",
        "split",
        "start",
        "token",
    )

    def __init__(
        self,
        number: int,
        event: Event,
        deltas: tuple[Delta, ...],
        token: bool,
        start: int,
        end: int,
        arrival_ns: int,
        error: str | None = None,
        split: bool = False,
    ) -> None:
        self.number, self.event, self.deltas, self.token = number, event, deltas, token
        self.start, self.end, self.arrival_ns = start, end, arrival_ns
        self.error, self.split = error, split
        self._kinds: frozenset[DeltaKind] | None = None
        self._payload: Any = _UNREAD

    @property
    def spot(self) -> Spot:
        return Spot(self.start, self.end)

    def kinds(self) -> frozenset[DeltaKind]:
        if self._kinds is None:
            self._kinds = frozenset(delta.kind for delta in self.deltas)
        return self._kinds

    def payload(self) -> Any:
        """The event's data as JSON (read once), or None when it is not JSON."""
        if self._payload is _UNREAD:
            self._payload = load_payload(self.event.data)
        return self._payload


def content_type_to_read(exchange: Exchange) -> str | None:
    """The Content-Type to read ``exchange``'s body by: its own, except for a
    ``text/plain`` body that holds an event stream (None: told from the events). A body
    is judged for what it is; the ``http.content-type`` check judges the label."""
    content_type = exchange.header("content-type")
    if is_plain_text(content_type) and _SSE_START.match(exchange.body.lstrip(b"\r\n")):
        return None
    return content_type


class EventPass:
    """One pass over an exchange's body.

    Attributes:
        reader: the ``StreamReader`` it feeds (its result, errors and fatal error once
            ``events`` has run out).
        plain: whether the body is plain text rather than an event stream.
        unterminated_at: once ``events`` has run out, where a last block the body ended
            inside begins (None when there was none).
    """

    def __init__(self, exchange: Exchange, dialect: str, pointer: str | None) -> None:
        self.exchange = exchange
        content_type = content_type_to_read(exchange)
        self.reader = StreamReader(get(dialect, pointer=pointer), content_type=content_type)
        self.plain = self.reader.dialect is not None and self.reader.dialect.framing == "text"
        self.unterminated_at: int | None = None

    def events(self, on_line: Callable[[Line, bytes], None] | None = None) -> Iterator[ReadEvent]:
        """The body's events in order; ``on_line`` gets each line of an event stream
        (and its content) before the events it ends."""
        reader, plain, body = self.reader, self.plain, self.exchange.body
        lines = iter(()) if plain else iter_lines(body)
        line = next(lines, None)
        number, block_start, offset, last_blank = 0, 0, 0, None
        for arrival_ns, stop in zip(
            self.exchange.chunks.arrivals_ns, self.exchange.chunks.ends, strict=True
        ):
            read_start = offset
            cuts: list[tuple[int, bool]] = []  # the blank-line ends inside this read
            while line is not None and line.stop <= stop:
                if on_line is not None:
                    on_line(line, body[line.start : line.end])
                if line.start == line.end:
                    cuts.append((line.stop, True))
                    last_blank = line.stop
                line = next(lines, None)
            if not cuts or cuts[-1][0] != stop:
                cuts.append((stop, False))
            for cut, blank in cuts:
                errors_before = len(reader.errors)
                for read in reader.feed(body[offset:cut]):
                    error = str(reader.errors[-1]) if len(reader.errors) > errors_before else None
                    start = offset if plain else block_start
                    yield ReadEvent(
                        number,
                        read.event,
                        read.deltas,
                        read.token,
                        start,
                        cut,
                        arrival_ns,
                        error,
                        start < read_start,
                    )
                    number += 1
                if plain or blank:
                    block_start = cut
                offset = cut
            if reader.fatal is not None:
                break
        while line is not None:  # the lines after a body the reader had to give up on
            if on_line is not None:
                on_line(line, body[line.start : line.end])
            if line.start == line.end:
                last_blank = line.stop
            line = next(lines, None)
        last_arrival = self.exchange.chunks.arrivals_ns[-1]
        for read in reader.close():  # plain text's last bytes
            yield ReadEvent(
                number,
                read.event,
                read.deltas,
                read.token,
                block_start,
                len(body),
                last_arrival,
                None,
                block_start < offset,
            )
            number += 1
        if not plain and reader.discarded:
            self.unterminated_at = last_blank or 0


def read_events(
    exchange: Exchange, dialect: str = "auto", pointer: str | None = None
) -> Iterator[ReadEvent]:
    """The events of one exchange's body, one at a time, read with the dialect given."""
    if exchange.ok and exchange.chunks:
        yield from EventPass(exchange, dialect, pointer).events()
