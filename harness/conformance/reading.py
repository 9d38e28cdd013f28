"""The captured responses, read: each body in one pass, into bounded facts. Pure, no I/O.

A body within the suite's size bound can hold a million events, so a reading keeps none
of them. ``harness.conformance.events`` yields them one at a time with their places in
the body; as they pass, each area of checks folds what it needs into its ``Digest``
(counts, the first and last places, a few pieces of evidence). A ``Reading`` keeps
those digests, the arrival time of each token, and the body itself (bounded), so that
evidence can show its bytes.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from harness.conformance.captured import STREAM_PURPOSES, Captured, Ending, Exchange, Purpose
from harness.conformance.events import (
    EventPass,
    Line,
    ReadEvent,
    Spot,
    content_type_to_read,
    iter_lines,
    load_payload,
    read_events,
    split_lines,
)
from harness.dialects import StreamReader, StreamResult, get
from harness.dialects.stream import is_plain_text

__all__ = [
    "Digest",
    "Line",
    "ReadEvent",
    "Reading",
    "Spot",
    "Suite",
    "iter_lines",
    "load_payload",
    "read_events",
    "read_exchange",
    "read_suite",
    "split_lines",
]


class Digest:
    """What one area of checks keeps of a stream, folded in while the stream is read.

    A subclass keeps bounded state (counts, the first and last places, a few pieces of
    evidence), never the events. ``read_exchange`` makes one of each kind per exchange;
    once the stream's dialect is known (at its first event) it sets ``dialect`` and, when
    the kind applies to that dialect, calls ``event`` for every event in body order.
    Kinds that ask for them get ``line`` for every line of an event stream's body first.

    Attributes:
        dialects: the dialects whose streams it reads (None: all of them).
        wants_lines: whether it reads the body's lines.
        suite_dialect: the dialect of the whole suite.
        dialect: the dialect the stream was read as (None until known, or when unknown).
    """

    dialects: ClassVar[frozenset[str] | None] = None
    wants_lines: ClassVar[bool] = False

    def __init__(self, suite_dialect: str | None) -> None:
        self.suite_dialect = suite_dialect
        self.dialect: str | None = None

    def line(self, line: Line, content: bytes) -> None:
        """One line of the body (``content`` is ``body[line.start:line.end]``)."""

    def event(self, event: ReadEvent) -> None:
        """The next event of the stream."""


D = TypeVar("D", bound=Digest)


@dataclass(frozen=True)
class Reading:
    """One exchange, read.

    Attributes:
        exchange: what was captured.
        framing: ``"sse"``, or ``"text"`` for a ``text/plain`` body.
        dialect: the dialect it was read as (None when there was nothing to read).
        event_count: how many events it carried.
        token_times_ns: the arrival time of each token-bearing event, in order.
        result: the response rebuilt from them (None for a response that is not a stream).
        unterminated_at: the offset of a last block the body ended inside, if any.
        fatal: why the body could not be read to its end, if it could not.
        digests: what each area of checks kept of it, by kind (or what the kind raised).
        how: the dialect and pointer asked for, and the suite's dialect.
    """

    exchange: Exchange
    framing: str
    dialect: str | None
    event_count: int
    token_times_ns: Sequence[int]
    result: StreamResult | None
    unterminated_at: int | None
    fatal: str | None
    digests: dict[type[Digest], Digest | Exception] = field(
        default_factory=dict, repr=False, compare=False
    )
    how: tuple[str, str | None, str | None] = ("auto", None, None)

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

    @property
    def t_first_byte_ns(self) -> int | None:
        arrivals = self.exchange.chunks.arrivals_ns
        return arrivals[0] if arrivals else None

    @property
    def ttft_ns(self) -> int | None:
        times = self.token_times_ns
        return times[0] - self.exchange.t_sent_ns if times else None

    def digest(self, kind: type[D]) -> D:
        """What the checks of one area kept of this stream.

        Raises:
            Exception: what the digest raised while the stream was read.
        """
        found = self.digests.get(kind)
        if found is None:  # not folded in the suite's pass: one pass for it alone
            dialect, pointer, suite_dialect = self.how
            again = read_exchange(
                self.exchange, dialect, pointer, digests=(kind,), suite_dialect=suite_dialect
            )
            found = self.digests[kind] = again.digests[kind]
        if isinstance(found, Exception):
            raise found
        return found  # type: ignore[return-value]


class _Folds:
    """The digests of one stream, each dropped (its error kept) when it raises."""

    def __init__(self, kinds: Iterable[type[Digest]], suite_dialect: str | None) -> None:
        self.made: dict[type[Digest], Digest | Exception] = {
            kind: kind(suite_dialect) for kind in kinds
        }
        self.lines = [d for d in self.made.values() if isinstance(d, Digest) and d.wants_lines]
        self.events: list[Digest] | None = None  # chosen once the dialect is known

    def line(self, line: Line, content: bytes) -> None:
        for digest in self.lines:
            try:
                digest.line(line, content)
            except Exception as exc:  # a digest is a boundary: its check reports this
                self._fail(digest, exc)

    def start(self, dialect: str | None) -> None:
        self.events = []
        for digest in self.made.values():
            if isinstance(digest, Digest):
                digest.dialect = dialect
                if digest.dialects is None or dialect in digest.dialects:
                    self.events.append(digest)

    def event(self, event: ReadEvent) -> None:
        assert self.events is not None
        for digest in self.events:
            try:
                digest.event(event)
            except Exception as exc:  # a digest is a boundary: its check reports this
                self._fail(digest, exc)

    def _fail(self, digest: Digest, exc: Exception) -> None:
        self.made[type(digest)] = exc
        for live in (self.lines, self.events or []):
            if digest in live:
                live.remove(digest)


def read_exchange(
    exchange: Exchange,
    dialect: str = "auto",
    pointer: str | None = None,
    *,
    digests: Iterable[type[Digest]] = (),
    suite_dialect: str | None = None,
) -> Reading:
    """Read one exchange's body with the dialect given (``auto``: detected), folding its
    events into a digest of each kind given."""
    folds = _Folds(digests, suite_dialect)
    how = (dialect, pointer, suite_dialect)
    times = array("q")
    if not exchange.ok or not exchange.chunks:
        folds.start(None)
        return Reading(exchange, "sse", None, 0, times, None, None, None, folds.made, how)
    reading = EventPass(exchange, dialect, pointer)
    reader = reading.reader
    count = 0
    for event in reading.events(folds.line if folds.lines else None):
        if folds.events is None:
            folds.start(reader.dialect.name if reader.dialect is not None else None)
        folds.event(event)
        count += 1
        if event.token:
            times.append(event.arrival_ns)
    if folds.events is None:
        folds.start(reader.dialect.name if reader.dialect is not None else None)
    return Reading(
        exchange=exchange,
        framing="text" if reading.plain else "sse",
        dialect=reader.dialect.name if reader.dialect is not None else None,
        event_count=count,
        token_times_ns=times,
        result=reader.result(),
        unterminated_at=reading.unterminated_at,
        fatal=None if reader.fatal is None else str(reader.fatal),
        digests=folds.made,
        how=how,
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


def _detected(exchange: Exchange) -> str | None:
    """The dialect of an exchange's body, from its content type or its first event."""
    reader = StreamReader(get("auto"), content_type=content_type_to_read(exchange))
    for _, data in exchange.chunks:
        if reader.dialect is not None or reader.fatal is not None:
            break
        reader.feed(data)
    return reader.dialect.name if reader.dialect is not None else None


def read_suite(captured: Captured, digests: Iterable[type[Digest]] = ()) -> Suite:
    """Read every exchange of ``captured``, with one dialect for the whole suite, folding
    each into a digest of each kind given (others are folded when first asked for)."""
    kinds = tuple(digests)
    dialect = captured.dialect
    if dialect == "auto" and captured.pointer is None:
        for exchange in captured.exchanges:
            if exchange.purpose in STREAM_PURPOSES and exchange.ok and exchange.chunks:
                detected = _detected(exchange)
                if detected is not None:
                    dialect = detected
                    break
    elif dialect == "auto":
        dialect = "generic"
    if dialect == "auto":  # streams came, but not one event could be read from them
        received = [e for e in captured.exchanges if e.purpose in STREAM_PURPOSES and e.ok]
        if any(not is_plain_text(content_type_to_read(e)) for e in received):
            dialect = "generic"  # judged by the rules every event stream follows
    suite_dialect = None if dialect == "auto" else dialect
    readings = tuple(
        read_exchange(
            exchange,
            dialect if _sse_dialect(dialect, exchange) else "auto",
            captured.pointer if dialect == "generic" else None,
            digests=kinds,
            suite_dialect=suite_dialect,
        )
        for exchange in captured.exchanges
    )
    return Suite(captured, readings, suite_dialect)


def _sse_dialect(dialect: str, exchange: Exchange) -> bool:
    """Read with the suite's dialect, except a ``text/plain`` body in an SSE dialect's
    suite that holds no event stream (left to detection, so that it reads as text rather
    than as broken SSE)."""
    return dialect == "text" or not is_plain_text(content_type_to_read(exchange))
