"""What the checks share: the streams they judge, how they keep what they found in each
(a bounded ``Found``), and how they point at it (a request, an offset, the bytes there)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

from harness.conformance.model import Check, Evidence, Finding, Severity, Skip, brief, excerpt
from harness.conformance.reading import Digest, ReadEvent, Reading, Spot, Suite
from harness.dialects import answer_complete

__all__ = [
    "MAX_EVIDENCE",
    "MAX_MESSAGES",
    "Found",
    "Streams",
    "TypedDigest",
    "at_event",
    "at_offset",
    "cut_streams",
    "found_items",
    "grouped",
    "ms",
    "of_request",
    "over",
    "tool_calls_not_json",
    "typed",
]

#: At most this many pieces of evidence per finding (and per message in one stream).
MAX_EVIDENCE = 3
#: At most this many different messages per check in one stream; the rest are counted.
MAX_MESSAGES = 12
#: At most this many bytes of an event are shown.
EVENT_EXCERPT_BYTES = 160


#: The streams of a suite that a check judges.
Streams = tuple[Reading, ...]
Outcome = Sequence[Finding] | Skip


class Placed(Protocol):
    """Anything placed in a body at ``body[start:end]`` (read-only, so a frozen ``Spot``
    is one)."""

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


def over(
    select: Callable[[Suite], Streams | Skip],
) -> Callable[[Callable[[Streams], Outcome]], Callable[[Suite], Outcome]]:
    """Turns a function that judges the streams ``select`` picks from a suite into a
    check's ``run``; when it picks none, the check skips with ``select``'s reason."""

    def decorate(judge: Callable[[Streams], Outcome]) -> Callable[[Suite], Outcome]:
        @functools.wraps(judge)
        def run(suite: Suite) -> Outcome:
            streams = select(suite)
            return streams if isinstance(streams, Skip) else judge(streams)

        return run

    return decorate


def at_offset(reading: Reading, offset: int, detail: str | None = None) -> Evidence:
    return Evidence(
        request=reading.label, offset=offset, excerpt=excerpt(reading.body, offset), detail=detail
    )


def at_event(reading: Reading, event: Placed, detail: str | None = None) -> Evidence:
    """The bytes of an event (a ``ReadEvent`` or its ``Spot``), its first ones if long."""
    end = min(event.end, event.start + EVENT_EXCERPT_BYTES)
    return Evidence(
        request=reading.label,
        offset=event.start,
        excerpt=reading.body[event.start : end],
        detail=detail,
    )


def of_request(reading: Reading | Any, detail: str | None = None) -> Evidence:
    label = reading.label
    return Evidence(request=label, detail=detail)


def ms(ns: float | None) -> str:
    """Nanoseconds as milliseconds, for messages."""
    return "-" if ns is None else f"{ns / 1e6:,.0f} ms"


class Found:
    """What one check found in one stream, bounded: the first ``MAX_EVIDENCE`` places of
    each message, for at most ``MAX_MESSAGES`` different messages (the others are only
    counted), in the order they were first seen."""

    __slots__ = ("_places", "dropped")

    def __init__(self) -> None:
        self._places: dict[str, list[tuple[Spot | None, str | None]]] = {}
        #: How many times a message beyond the first ``MAX_MESSAGES`` was seen.
        self.dropped = 0

    def __bool__(self) -> bool:
        return bool(self._places) or bool(self.dropped)

    def add(self, message: str, spot: Spot | None = None, detail: str | None = None) -> None:
        """``message`` seen at ``spot`` (an event's place; None: the request as a whole)."""
        places = self._places.get(message)
        if places is None:
            if len(self._places) >= MAX_MESSAGES:
                self.dropped += 1
                return
            places = self._places[message] = []
        if len(places) < MAX_EVIDENCE:
            places.append((spot, detail))

    def items(self, reading: Reading) -> list[tuple[str, Evidence]]:
        """Each message with each of its places as evidence, in ``reading``."""
        found = [
            (
                message,
                of_request(reading, detail) if spot is None else at_event(reading, spot, detail),
            )
            for message, places in self._places.items()
            for spot, detail in places
        ]
        if self.dropped:
            message = f"{self.dropped} more findings of other kinds (not listed)"
            found.append((message, of_request(reading)))
        return found


def found_items(pairs: Iterable[tuple[Reading, Found]]) -> list[tuple[str, Evidence]]:
    """The evidence of each stream's ``Found``, stream after stream."""
    return [item for reading, found in pairs for item in found.items(reading)]


def grouped(
    check: Check,
    items: Iterable[tuple[str, Evidence]],
    severity: Severity | None = None,
) -> list[Finding]:
    """One finding per distinct message, with the first few pieces of evidence of each
    and how many requests showed it."""
    evidence: dict[str, list[Evidence]] = {}
    requests: dict[str, set[str]] = {}
    for message, item in items:
        kept = evidence.setdefault(message, [])
        if len(kept) < MAX_EVIDENCE:
            kept.append(item)
        requests.setdefault(message, set()).add(item.request)
    findings = []
    for message, items_of in evidence.items():
        count = len(requests[message])
        suffix = f" (in {count} requests)" if count > 1 else ""
        findings.append(check.finding(message + suffix, *items_of, severity=severity))
    return findings


def tool_calls_not_json(
    check: Check,
    streams: Streams,
    message: str,
    empty: str = "",
) -> Sequence[Finding] | Skip:
    """The tool calls of complete streams whose argument fragments do not join into JSON.

    Args:
        check: the check that reports them.
        streams: the streams to look in.
        message: what to say of such a call, with ``{index}`` and ``{name}`` for its own.
        empty: what arguments that are empty stand for (``""``: they are not JSON).
    """
    calls = [(r, c) for r in streams if r.complete and r.result for c in r.result.tool_calls]
    if not calls:
        return Skip("no stream made a tool call")
    items = []
    for reading, call in calls:
        try:
            json.loads(call.arguments or empty)
        except (ValueError, RecursionError):
            said = message.format(index=call.index, name=brief(call.name, bare=True))
            items.append((said, of_request(reading, call.arguments[:120])))
    return grouped(check, items)


def typed(event: ReadEvent) -> tuple[str, dict[str, Any]] | None:
    """The ``type`` an event's data names and the data, when it is a JSON object with a
    string ``type`` (the Anthropic and Responses APIs' events)."""
    payload = event.payload()
    if isinstance(payload, dict) and isinstance(payload.get("type"), str):
        return payload["type"], payload
    return None


class TypedDigest(Digest):
    """What the checks of APIs that name each event twice, in the SSE ``event`` field and
    in the data's ``type``, keep of a stream.

    Attributes:
        unnamed: what to say of an event with no ``event:`` line, with ``{kind}`` for its
            type (set by each API's subclass).
        untyped: events whose data is not a JSON object with a ``type``.
        misnamed: events whose name is missing or differs from that type.
        errored: whether an event of type ``error`` came.
    """

    unnamed: ClassVar[str] = ""

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self.untyped = Found()
        self.misnamed = Found()
        self.errored = False

    def event(self, event: ReadEvent) -> None:
        found = typed(event)
        if found is None:
            self.untyped.add("an event's data is not a JSON object with a 'type'", event.spot)
            return
        kind, payload = found
        name = event.event.type
        if name == "message":
            self.misnamed.add(self.unnamed.format(kind=brief(kind)), event.spot)
        elif name != kind:
            message = f"event name {brief(name)} differs from the data's type {brief(kind)}"
            self.misnamed.add(message, event.spot)
        if kind == "error":
            self.errored = True
        self.typed(event, kind, payload)

    def typed(self, event: ReadEvent, kind: str, payload: dict[str, Any]) -> None:
        """The next event whose data names its type."""


def cut_streams(streams: Streams) -> list[Reading]:
    """The streams read to their end that lack the event that ends a response, and did
    not end with an error: cut, and the client cannot tell."""
    return [
        r
        for r in streams
        if r.complete
        and r.result is not None
        and not answer_complete(r.dialect, r.result)  # the rule run judges by
        and r.result.error is None
    ]
