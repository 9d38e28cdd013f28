"""The captured responses, read: lines and events with their byte offsets. Pure, no I/O.

Events are decoded by ``harness.dialects.StreamReader`` (so by ``harness.sse``), never by
a second parser. To know where each event sits in the body, the body is fed to the reader
in pieces cut at the ends of its blank lines (found by scanning for line ends, which is
all the framing checks need of the raw bytes) as well as at the edges of the reads it
arrived in: a piece then completes at most one event, whose end offset and arrival time
are the piece's. The decoder's output does not depend on how its input is cut.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from harness.conformance.captured import STREAM_PURPOSES, Captured, Ending, Exchange, Purpose
from harness.dialects import Delta, DeltaKind, StreamReader, StreamResult, get
from harness.dialects.stream import Read, is_plain_text
from harness.sse import Event

__all__ = ["Line", "ReadEvent", "Reading", "Suite", "read_exchange", "read_suite", "split_lines"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


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


def split_lines(body: bytes) -> list[Line]:
    """The lines of ``body`` as WHATWG counts them (CRLF, LF or CR end a line)."""
    lines = []
    position = 0
    for match in _LINE_END.finditer(body):
        lines.append(Line(position, match.start(), match.group()))
        position = match.end()
    if position < len(body):
        lines.append(Line(position, len(body), b""))
    return lines


@dataclass(frozen=True, slots=True)
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
    """

    number: int
    event: Event
    deltas: tuple[Delta, ...]
    token: bool
    start: int
    end: int
    arrival_ns: int
    error: str | None = None

    def kinds(self) -> set[DeltaKind]:
        return {delta.kind for delta in self.deltas}

    def payload(self) -> Any:
        """The event's data as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.event.data)
        except (ValueError, RecursionError):
            return None


@dataclass(frozen=True)
class Reading:
    """One exchange, read.

    Attributes:
        exchange: what was captured.
        framing: ``"sse"``, or ``"text"`` for a ``text/plain`` body.
        dialect: the dialect it was read as (None when there was nothing to read).
        events: its events, in order.
        result: the response rebuilt from them (None for a response that is not a stream).
        lines: the body's lines (SSE framing only).
        unterminated_at: the offset of a last block the body ended inside, if any.
        fatal: why the body could not be read to its end, if it could not.
    """

    exchange: Exchange
    framing: str
    dialect: str | None
    events: tuple[ReadEvent, ...]
    result: StreamResult | None
    lines: tuple[Line, ...]
    unterminated_at: int | None
    fatal: str | None

    @property
    def label(self) -> str:
        return self.exchange.label

    @property
    def body(self) -> bytes:
        return self.exchange.body

    @property
    def complete(self) -> bool:
        """The server ended the body, cleanly or by breaking the connection: it is all
        the client got (not abandoned or cut by the client, nor timed out)."""
        return self.exchange.ending in (Ending.EOF, Ending.BROKEN)

    @cached_property
    def token_times_ns(self) -> tuple[int, ...]:
        return tuple(e.arrival_ns for e in self.events if e.token)

    @property
    def t_first_byte_ns(self) -> int | None:
        return self.exchange.chunks[0][0] if self.exchange.chunks else None

    @property
    def ttft_ns(self) -> int | None:
        times = self.token_times_ns
        return times[0] - self.exchange.t_sent_ns if times else None

    def events_of(self, *kinds: DeltaKind) -> Iterator[ReadEvent]:
        wanted = set(kinds)
        return (e for e in self.events if wanted & e.kinds())


def read_exchange(exchange: Exchange, dialect: str = "auto", pointer: str | None = None) -> Reading:
    """Read one exchange's body with the dialect given (``auto``: detected)."""
    if not exchange.ok or not exchange.chunks:
        return Reading(exchange, "sse", None, (), None, (), None, None)
    content_type = exchange.header("content-type")
    reader = StreamReader(get(dialect, pointer=pointer), content_type=content_type)
    plain = reader.dialect is not None and reader.dialect.framing == "text"
    body = exchange.body
    lines = () if plain else tuple(split_lines(body))
    boundaries = [] if plain else [line.stop for line in lines if line.start == line.end]
    events: list[ReadEvent] = []

    def add(read: Read, start: int, end: int, at_ns: int, error: str | None = None) -> None:
        events.append(
            ReadEvent(len(events), read.event, read.deltas, read.token, start, end, at_ns, error)
        )

    block_start = 0
    offset = 0
    for arrival_ns, data in exchange.chunks:
        stop = offset + len(data)
        low, high = bisect.bisect_right(boundaries, offset), bisect.bisect_right(boundaries, stop)
        cuts = boundaries[low:high]  # the blank-line ends inside this read
        for cut in cuts if cuts and cuts[-1] == stop else [*cuts, stop]:
            errors_before = len(reader.errors)
            for read in reader.feed(body[offset:cut]):
                error = str(reader.errors[-1]) if len(reader.errors) > errors_before else None
                add(read, offset if plain else block_start, cut, arrival_ns, error)
            if plain or cut in cuts:
                block_start = cut
            offset = cut
        if reader.fatal is not None:
            break
    last_arrival = exchange.chunks[-1][0]
    for read in reader.close():  # plain text's last bytes
        add(read, block_start, len(body), last_arrival)
    unterminated = None
    if not plain and reader.discarded:
        unterminated = boundaries[-1] if boundaries else 0
    return Reading(
        exchange=exchange,
        framing="text" if plain else "sse",
        dialect=reader.dialect.name if reader.dialect is not None else None,
        events=tuple(events),
        result=reader.result(),
        lines=lines,
        unterminated_at=unterminated,
        fatal=None if reader.fatal is None else str(reader.fatal),
    )


@dataclass(frozen=True)
class Suite:
    """Every exchange of a captured suite, read; what the checks judge.

    Attributes:
        captured: the raw capture.
        readings: one per exchange, in order.
        dialect: the dialect the streams speak: the one asked for, else the one detected
            in the first stream that could be read (None when none could).
    """

    captured: Captured
    readings: tuple[Reading, ...]
    dialect: str | None

    def of(self, *purposes: Purpose) -> tuple[Reading, ...]:
        return tuple(r for r in self.readings if r.exchange.purpose in purposes)

    @property
    def streams(self) -> tuple[Reading, ...]:
        """The readings of valid stream requests that got a 2xx response."""
        return tuple(
            r for r in self.readings if r.exchange.purpose in STREAM_PURPOSES and r.exchange.ok
        )

    @property
    def sse_streams(self) -> tuple[Reading, ...]:
        return tuple(r for r in self.streams if r.framing == "sse")

    @property
    def baseline(self) -> tuple[Reading, ...]:
        """Streams read to their end one at a time (ordinary, usage, long)."""
        return tuple(
            r for r in self.streams if r.exchange.purpose is not Purpose.BURST and r.complete
        )


def read_suite(captured: Captured) -> Suite:
    """Read every exchange of ``captured``, with one dialect for the whole suite."""
    dialect = captured.dialect
    if dialect == "auto" and captured.pointer is None:
        for exchange in captured.exchanges:
            if exchange.purpose in STREAM_PURPOSES and exchange.ok:
                detected = read_exchange(exchange).dialect
                if detected is not None:
                    dialect = detected
                    break
    elif dialect == "auto":
        dialect = "generic"
    if dialect == "auto":  # streams came, but not one event could be read from them
        received = [e for e in captured.exchanges if e.purpose in STREAM_PURPOSES and e.ok]
        if any(not is_plain_text(e.header("content-type")) for e in received):
            dialect = "generic"  # judged by the rules every event stream follows
    readings = tuple(
        read_exchange(
            exchange,
            dialect if _sse_dialect(dialect, exchange) else "auto",
            captured.pointer if dialect == "generic" else None,
        )
        for exchange in captured.exchanges
    )
    return Suite(captured, readings, None if dialect == "auto" else dialect)


def _sse_dialect(dialect: str, exchange: Exchange) -> bool:
    """Read with the suite's dialect, except a ``text/plain`` body in an SSE dialect's
    suite (left to detection, so that it reads as text rather than as broken SSE)."""
    return dialect == "text" or not is_plain_text(exchange.header("content-type"))
