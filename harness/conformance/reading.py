"""The captured responses, read: each body in one pass, into bounded facts. Pure, no I/O.

Events are decoded by ``harness.dialects.StreamReader`` (so by ``harness.sse``), never by
a second parser. To know where each event sits in the body, the body is fed to the reader
in pieces cut at the ends of its blank lines (found by scanning for line ends, which is
all the framing checks need of the raw bytes) as well as at the edges of the reads it
arrived in: a piece then completes at most one event, whose end offset and arrival time
are the piece's. The decoder's output does not depend on how its input is cut.

A body within the suite's size bound can hold a million events, so a reading keeps none
of them. ``read_events`` yields them one at a time; as they pass, each area of checks
folds what it needs into its ``Digest`` (counts, the first and last places, a few pieces
of evidence). A ``Reading`` keeps those digests, the arrival time of each token, and the
body itself (bounded), so that evidence can show its bytes.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from harness.conformance.captured import STREAM_PURPOSES, Captured, Ending, Exchange, Purpose
from harness.dialects import Delta, DeltaKind, StreamReader, StreamResult, get
from harness.dialects.base import parse_json
from harness.dialects.stream import is_plain_text
from harness.sse import Event

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

_LINE_END = re.compile(rb"\r\n|\r|\n")
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


class _Pass:
    """One pass over a body: its events, with what the reader made of them at the end."""

    def __init__(self, exchange: Exchange, dialect: str, pointer: str | None) -> None:
        self.exchange = exchange
        content_type = exchange.header("content-type")
        self.reader = StreamReader(get(dialect, pointer=pointer), content_type=content_type)
        self.plain = self.reader.dialect is not None and self.reader.dialect.framing == "text"
        self.unterminated_at: int | None = None

    def events(self, on_line: Callable[[Line, bytes], None] | None = None) -> Iterator[ReadEvent]:
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
                        number, read.event, read.deltas, read.token, start, cut, arrival_ns,
                        error, start < read_start,
                    )  # fmt: skip
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
                number, read.event, read.deltas, read.token, block_start, len(body),
                last_arrival, None, block_start < offset,
            )  # fmt: skip
            number += 1
        if not plain and reader.discarded:
            self.unterminated_at = last_blank or 0


def read_events(
    exchange: Exchange, dialect: str = "auto", pointer: str | None = None
) -> Iterator[ReadEvent]:
    """The events of one exchange's body, one at a time, read with the dialect given."""
    if exchange.ok and exchange.chunks:
        yield from _Pass(exchange, dialect, pointer).events()


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
    reading = _Pass(exchange, dialect, pointer)
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
    reader = StreamReader(get("auto"), content_type=exchange.header("content-type"))
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
        if any(not is_plain_text(e.header("content-type")) for e in received):
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
    suite (left to detection, so that it reads as text rather than as broken SSE)."""
    return dialect == "text" or not is_plain_text(exchange.header("content-type"))
