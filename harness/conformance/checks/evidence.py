"""What the checks share: the streams they judge, and how they point at what they found
(a request, an offset, the bytes there)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from harness.conformance.model import Check, Evidence, Finding, Severity, Skip, excerpt
from harness.conformance.reading import ReadEvent, Reading, Suite

__all__ = [
    "MAX_EVIDENCE",
    "Streams",
    "Typed",
    "at_event",
    "at_offset",
    "cut_streams",
    "grouped",
    "ms",
    "of_request",
    "order_findings",
    "over",
    "tool_calls_not_json",
    "typed",
    "typed_event_problems",
]

#: At most this many pieces of evidence per finding.
MAX_EVIDENCE = 3


#: The streams of a suite that a check judges.
Streams = tuple[Reading, ...]
Outcome = Sequence[Finding] | Skip


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


def at_event(reading: Reading, event: ReadEvent, detail: str | None = None) -> Evidence:
    body = reading.body[event.start : event.end]
    shown = body if len(body) <= 160 else body[:160]
    return Evidence(request=reading.label, offset=event.start, excerpt=shown, detail=detail)


def of_request(reading: Reading | Any, detail: str | None = None) -> Evidence:
    label = reading.label
    return Evidence(request=label, detail=detail)


def ms(ns: float | None) -> str:
    """Nanoseconds as milliseconds, for messages."""
    return "-" if ns is None else f"{ns / 1e6:,.0f} ms"


def grouped(
    check: Check,
    items: Iterable[tuple[str, Evidence]],
    severity: Severity | None = None,
) -> list[Finding]:
    """One finding per distinct message, with the first few pieces of evidence of each
    and how many requests showed it."""
    evidence: dict[str, list[Evidence]] = {}
    for message, item in items:
        evidence.setdefault(message, []).append(item)
    findings = []
    for message, items_of in evidence.items():
        requests = len({e.request for e in items_of})
        suffix = f" (in {requests} requests)" if requests > 1 else ""
        findings.append(
            check.finding(message + suffix, *items_of[:MAX_EVIDENCE], severity=severity)
        )
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
        except ValueError:
            said = message.format(index=call.index, name=call.name)
            items.append((said, of_request(reading, call.arguments[:120])))
    return grouped(check, items)


#: An event whose data is a JSON object with a string ``type``: the event, that type and
#: the object.
Typed = tuple[ReadEvent, str, dict[str, Any]]


def typed(reading: Reading) -> list[Typed]:
    """The events of a stream whose data is a JSON object naming its ``type`` (the
    Anthropic and Responses APIs' events), in order."""
    found = []
    for event in reading.events:
        payload = event.payload()
        if isinstance(payload, dict) and isinstance(payload.get("type"), str):
            found.append((event, payload["type"], payload))
    return found


def typed_event_problems(
    streams: Streams, unnamed: str
) -> tuple[list[tuple[str, Evidence]], list[tuple[str, Evidence]]]:
    """What is wrong with the events of APIs that name each event twice, in the SSE
    ``event`` field and in the data's ``type``.

    Args:
        streams: the streams to look in.
        unnamed: what to say of an event with no ``event:`` line, with ``{kind}`` for
            its type.

    Returns:
        ``(untyped, misnamed)``: events whose data is not a JSON object with a ``type``;
        events whose name is missing or differs from that type.
    """
    untyped: list[tuple[str, Evidence]] = []
    misnamed: list[tuple[str, Evidence]] = []
    for reading in streams:
        for event in reading.events:
            payload = event.payload()
            kind = payload.get("type") if isinstance(payload, dict) else None
            if not isinstance(kind, str):
                message = "an event's data is not a JSON object with a 'type'"
                untyped.append((message, at_event(reading, event)))
            elif event.event.type == "message":
                misnamed.append((unnamed.format(kind=kind), at_event(reading, event)))
            elif event.event.type != kind:
                message = f"event name {event.event.type!r} differs from the data's type {kind!r}"
                misnamed.append((message, at_event(reading, event)))
    return untyped, misnamed


def order_findings(
    check: Check,
    streams: Streams,
    first_problem: Callable[[list[Typed]], tuple[str, ReadEvent] | None],
) -> list[Finding]:
    """The streams whose typed events break the order ``first_problem`` knows: what it
    says of the first event out of place in each, at that event."""
    items = []
    for reading in streams:
        problem = first_problem(typed(reading))
        if problem is not None:
            items.append((problem[0], at_event(reading, problem[1])))
    return grouped(check, items)


def cut_streams(streams: Streams) -> list[Reading]:
    """The streams read to their end that lack the event that ends a response, and did
    not end with an error: cut, and the client cannot tell."""
    return [
        r
        for r in streams
        if r.complete and r.result is not None and not r.result.done and r.result.error is None
    ]
