"""OpenAI Responses API events: names, order, sequence numbers, end, usage, text.

The ``openai`` SDK parses every event's data as JSON and reads its ``type``. Its stream
helper (``client.responses.stream``) builds the response as the events come: it raises
when the first event is not ``response.created``, when an event names an output item
whose ``response.output_item.added`` it has not seen, and when a text delta names a
content part that was never added. Those, and a stream that ends without its final
event, are FAILs. The SSE event name is only read by EventSource listeners, so a missing
or different one is a WARN, as are sequence numbers that do not rise and a final text
that is not its deltas joined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.conformance.checks.evidence import (
    Streams,
    Typed,
    at_event,
    cut_streams,
    grouped,
    of_request,
    order_findings,
    over,
    tool_calls_not_json,
    typed,
    typed_event_problems,
)
from harness.conformance.model import CheckFactory, Evidence, Finding, Severity, Skip
from harness.conformance.reading import ReadEvent, Reading, Suite

__all__ = ["CHECKS"]

RESPONSES = frozenset({"openai-responses"})
#: The events that end a stream, with the final ``response``.
_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ADDED = "response.output_item.added"
_PART_ADDED = "response.content_part.added"
#: The events that read a content part of a message item by its ``content_index``.
_PART_EVENTS = frozenset(
    {"response.output_text.delta", "response.output_text.done", "response.content_part.done"}
)


def _streams(suite: Suite) -> Streams | Skip:
    streams = tuple(r for r in suite.sse_streams if r.dialect in RESPONSES)
    return streams or Skip("no Responses API stream was received")


def _errored(events: list[Typed]) -> bool:
    return any(kind == "error" for _, kind, _ in events)


@over(_streams)
def _json(streams: Streams) -> Sequence[Finding] | Skip:
    return grouped(JSON, typed_event_problems(streams, "")[0])


@over(_streams)
def _event_name(streams: Streams) -> Sequence[Finding] | Skip:
    unnamed = "a {kind!r} event has no 'event:' line: EventSource listeners miss it"
    return grouped(EVENT_NAME, typed_event_problems(streams, unnamed)[1])


def _order_problem(events: list[Typed]) -> tuple[str, ReadEvent] | None:
    """The first event out of the documented order, as the SDK's stream helper sees it."""
    items: dict[Any, str] = {}  # output_index: the item's type, once added
    done: set[Any] = set()  # output indexes whose output_item.done came
    parts: set[tuple[Any, Any]] = set()  # (output_index, content_index) added
    final: str | None = None
    for number, (event, kind, payload) in enumerate(events):
        if kind == "error":
            return None  # errors.in-stream judges the rest
        if number == 0 and kind != "response.created":
            return f"the first event is {kind!r}, not 'response.created'", event
        if final is not None:
            return f"{kind!r} after {final}", event
        if kind in _FINAL:
            final = kind
            continue
        index = payload.get("output_index")
        if kind == _ADDED:
            if index in items:
                return f"output item {index!r} is added twice", event
            item = payload.get("item")
            items[index] = item.get("type", "") if isinstance(item, dict) else ""
            continue
        if "output_index" not in payload:
            continue
        if index not in items:
            return f"{kind} for output item {index!r}, which was never added", event
        if index in done:
            return f"{kind} for output item {index!r} after its output_item.done", event
        if kind == "response.output_item.done":
            done.add(index)
        elif kind == _PART_ADDED:
            parts.add((index, payload.get("content_index")))
        elif kind in _PART_EVENTS and items[index] == "message":
            part = payload.get("content_index")
            if (index, part) not in parts:
                return f"{kind} for content part {part!r} of item {index!r}, never added", event
    return None


@over(_streams)
def _order(streams: Streams) -> Sequence[Finding] | Skip:
    return order_findings(ORDER, streams, _order_problem)


@over(_streams)
def _sequence(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        previous: int | None = None
        for event, kind, payload in typed(reading):
            number = payload.get("sequence_number")
            if not isinstance(number, int) or isinstance(number, bool):
                message = "an event without an integer sequence_number"
                items.append((message, at_event(reading, event, kind)))
                break
            if previous is not None and number <= previous:
                detail = f"{kind}: {number} after {previous}"
                items.append(("sequence_number does not rise", at_event(reading, event, detail)))
                break
            previous = number
    return grouped(SEQUENCE, items)


@over(_streams)
def _final_event(streams: Streams) -> Sequence[Finding] | Skip:
    message = (
        "the stream ended without response.completed, response.incomplete or "
        "response.failed: it was cut and the client cannot tell"
    )
    return grouped(FINAL, [(message, of_request(r)) for r in cut_streams(streams)])


def _final(events: list[Typed]) -> Typed | None:
    return next(((e, k, p) for e, k, p in reversed(events) if k in _FINAL), None)


@over(_streams)
def _usage(streams: Streams) -> Sequence[Finding] | Skip:
    items: list[tuple[str, Evidence]] = []
    for reading in (r for r in streams if r.complete):
        events = typed(reading)
        final = _final(events)
        if final is None or final[1] == "response.failed" or _errored(events):
            continue
        event, kind, payload = final
        response = payload.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        for key in ("input_tokens", "output_tokens"):
            if not isinstance(usage.get(key), int):
                items.append((f"{kind} carries no usage.{key}", at_event(reading, event)))
        tokens = usage.get("output_tokens")
        token_events = sum(1 for e in reading.events if e.token)
        if isinstance(tokens, int) and tokens < token_events:
            message = f"usage says {tokens} output tokens, but {token_events} events carried text"
            items.append((message, of_request(reading)))
    return grouped(USAGE, items)


def _text_mismatch(reading: Reading) -> tuple[str, Evidence] | None:
    joined: dict[tuple[Any, Any], list[str]] = {}
    for event, kind, payload in typed(reading):
        where = (payload.get("output_index"), payload.get("content_index"))
        if kind == "response.output_text.delta" and isinstance(payload.get("delta"), str):
            joined.setdefault(where, []).append(payload["delta"])
        elif kind == "response.output_text.done" and isinstance(payload.get("text"), str):
            deltas = "".join(joined.get(where, []))
            if payload["text"] != deltas:
                detail = f"done: {len(payload['text'])} characters, deltas: {len(deltas)}"
                message = "output_text.done's text is not its deltas joined"
                return message, at_event(reading, event, detail)
    return None


@over(_streams)
def _text_done(streams: Streams) -> Sequence[Finding] | Skip:
    items = [m for r in streams if r.complete and (m := _text_mismatch(r)) is not None]
    return grouped(TEXT_DONE, items)


@over(_streams)
def _tool_json(streams: Streams) -> Sequence[Finding] | Skip:
    message = "function call {index} ({name}): its argument fragments do not join into JSON"
    return tool_calls_not_json(TOOL_JSON, streams, message)


check = CheckFactory("responses", RESPONSES)

# fmt: off
JSON = check("responses.json", Severity.FAIL, "every data is typed JSON",
             "the SDK parses each event's data as a JSON object and reads its type", _json)
EVENT_NAME = check("responses.event-name", Severity.WARN, "event name = data type",
                   "EventSource listeners pick events by name; the SDK reads the type",
                   _event_name)
ORDER = check("responses.event-order", Severity.FAIL, "documented event order",
              "response.created first; an item added before its content, a content part "
              "before its text; nothing after the final event: the SDK's stream helper "
              "raises otherwise", _order)
SEQUENCE = check("responses.sequence", Severity.WARN, "rising sequence numbers",
                 "every event carries a sequence_number, each above the last", _sequence)
FINAL = check("responses.final-event", Severity.FAIL, "a final event",
              "response.completed, .incomplete or .failed tells a complete stream from a "
              "dropped connection", _final_event)
USAGE = check("responses.usage", Severity.WARN, "usage present and consistent",
              "the final response carries input and output tokens that cover the text",
              _usage)
TEXT_DONE = check("responses.text-done", Severity.WARN, "final text = deltas",
                  "output_text.done repeats the text its deltas built; clients read either",
                  _text_done)
TOOL_JSON = check("responses.tool-arguments-json", Severity.FAIL, "tool arguments are JSON",
                  "function_call_arguments fragments must join into JSON", _tool_json)
# fmt: on

CHECKS = (JSON, EVENT_NAME, ORDER, SEQUENCE, FINAL, USAGE, TEXT_DONE, TOOL_JSON)
