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

import hashlib
from collections.abc import Hashable, Sequence
from typing import Any

from harness.conformance.checks.evidence import (
    Streams,
    TypedDigest,
    at_event,
    cut_streams,
    found_items,
    grouped,
    of_request,
    over,
    tool_calls_not_json,
)
from harness.conformance.model import CheckFactory, Evidence, Finding, Severity, Skip, brief
from harness.conformance.reading import ReadEvent, Spot, Suite

__all__ = ["CHECKS", "ResponsesDigest"]

RESPONSES = frozenset({"openai-responses"})
#: The events that end a stream, with the final ``response``.
_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ADDED = "response.output_item.added"
_PART_ADDED = "response.content_part.added"
#: The events that read a content part of a message item by its ``content_index``.
_PART_EVENTS = frozenset(
    {"response.output_text.delta", "response.output_text.done", "response.content_part.done"}
)
#: Output items and content parts beyond this many in one stream are not followed.
MAX_TRACKED = 4096


def _key(value: Any) -> Hashable:
    """An index from a payload as a key: itself when it is a JSON scalar."""
    if value is None or isinstance(value, str | int | float):
        return value
    return ("not a scalar", brief(value))


def _count(value: Any) -> int | None:
    """A token count from a usage object: None when it is not an integer."""
    return value if isinstance(value, int) else None


class _Order:
    """The documented order, as the SDK's stream helper sees it, followed event by event:
    the first event out of place."""

    def __init__(self) -> None:
        self.seen = 0
        self.items: dict[Hashable, bool] = {}  # output_index: the item is a message
        self.done: set[Hashable] = set()  # output indexes whose output_item.done came
        self.parts: set[tuple[Hashable, Hashable]] = set()  # (output, content) added
        self.final: str | None = None
        self.over = False  # an error or a problem came, or too many items to follow

    def step(self, kind: str, payload: dict[str, Any]) -> str | None:
        if self.over:
            return None
        problem = self._problem(kind, payload)
        tracked = len(self.items) + len(self.done) + len(self.parts)
        self.over = kind == "error" or problem is not None or tracked > MAX_TRACKED
        return problem

    def _problem(self, kind: str, payload: dict[str, Any]) -> str | None:
        self.seen += 1
        if kind == "error":
            return None  # errors.in-stream judges the rest
        if self.seen == 1 and kind != "response.created":
            return f"the first event is {brief(kind)}, not 'response.created'"
        if self.final is not None:
            return f"{brief(kind)} after {self.final}"
        if kind in _FINAL:
            self.final = kind
            return None
        index = _key(payload.get("output_index"))
        shown = brief(payload.get("output_index"))
        if kind == _ADDED:
            if index in self.items:
                return f"output item {shown} is added twice"
            item = payload.get("item")
            self.items[index] = isinstance(item, dict) and item.get("type", "") == "message"
            return None
        if "output_index" not in payload:
            return None
        said = brief(kind, bare=True)
        if index not in self.items:
            return f"{said} for output item {shown}, which was never added"
        if index in self.done:
            return f"{said} for output item {shown} after its output_item.done"
        part = payload.get("content_index")
        if kind == "response.output_item.done":
            self.done.add(index)
        elif kind == _PART_ADDED:
            self.parts.add((index, _key(part)))
        elif kind in _PART_EVENTS and self.items[index] and (index, _key(part)) not in self.parts:
            return f"{said} for content part {brief(part)} of item {shown}, never added"
        return None


class _Joined:
    """The deltas of one content part, joined: their length and a hash of their text."""

    __slots__ = ("hash", "length")

    def __init__(self) -> None:
        self.hash = hashlib.blake2b(digest_size=16)
        self.length = 0

    def add(self, text: str) -> None:
        self.hash.update(text.encode("utf-8", "surrogatepass"))
        self.length += len(text)

    def same(self, text: str) -> bool:
        whole = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
        return len(text) == self.length and whole.digest() == self.hash.digest()


class ResponsesDigest(TypedDigest):
    """What the Responses API checks keep of a stream.

    Attributes:
        disorder: the first event out of the documented order, and what is wrong.
        unsequenced: the first event without a rising integer sequence_number: what is
            wrong, the detail, where.
        final: the last final event: its type, where, and its response's
            ``input_tokens`` and ``output_tokens`` (None when not an integer).
        mismatch: the first output_text.done whose text is not its deltas joined:
            the detail and where.
    """

    dialects = RESPONSES
    unnamed = "a {kind} event has no 'event:' line: EventSource listeners miss it"

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self._order = _Order()
        self.disorder: tuple[str, Spot] | None = None
        self._previous: int | None = None
        self.unsequenced: tuple[str, str, Spot] | None = None
        self.final: tuple[str, Spot, Any, Any] | None = None
        self._joined: dict[tuple[Hashable, Hashable], _Joined] = {}
        self.mismatch: tuple[str, Spot] | None = None

    def typed(self, event: ReadEvent, kind: str, payload: dict[str, Any]) -> None:
        problem = self._order.step(kind, payload)
        if problem is not None:
            self.disorder = (problem, event.spot)
        self._sequence(event, kind, payload)
        if kind in _FINAL:
            response = payload.get("response")
            usage = response.get("usage") if isinstance(response, dict) else None
            usage = usage if isinstance(usage, dict) else {}
            inputs, outputs = (usage.get(k) for k in ("input_tokens", "output_tokens"))
            self.final = (kind, event.spot, _count(inputs), _count(outputs))
        if self.mismatch is None:
            self._text(event, kind, payload)

    def _sequence(self, event: ReadEvent, kind: str, payload: dict[str, Any]) -> None:
        if self.unsequenced is not None:
            return
        number = payload.get("sequence_number")
        said = brief(kind, bare=True)
        if not isinstance(number, int) or isinstance(number, bool):
            message = "an event without an integer sequence_number"
            self.unsequenced = (message, said, event.spot)
        elif self._previous is not None and number <= self._previous:
            detail = f"{said}: {brief(number)} after {brief(self._previous)}"
            self.unsequenced = ("sequence_number does not rise", detail, event.spot)
        self._previous = number

    def _text(self, event: ReadEvent, kind: str, payload: dict[str, Any]) -> None:
        where = (_key(payload.get("output_index")), _key(payload.get("content_index")))
        if kind == "response.output_text.delta" and isinstance(payload.get("delta"), str):
            joined = self._joined.get(where)
            if joined is None:
                if len(self._joined) >= MAX_TRACKED:
                    return
                joined = self._joined[where] = _Joined()
            joined.add(payload["delta"])
        elif kind == "response.output_text.done" and isinstance(payload.get("text"), str):
            text = payload["text"]
            joined = self._joined.get(where) or _Joined()
            if not joined.same(text):
                detail = f"done: {len(text)} characters, deltas: {joined.length}"
                self.mismatch = (detail, event.spot)


def _streams(suite: Suite) -> Streams | Skip:
    streams = tuple(r for r in suite.sse_streams if r.dialect in RESPONSES)
    return streams or Skip("no Responses API stream was received")


@over(_streams)
def _json(streams: Streams) -> Sequence[Finding] | Skip:
    return grouped(JSON, found_items((r, r.digest(ResponsesDigest).untyped) for r in streams))


@over(_streams)
def _event_name(streams: Streams) -> Sequence[Finding] | Skip:
    found = found_items((r, r.digest(ResponsesDigest).misnamed) for r in streams)
    return grouped(EVENT_NAME, found)


@over(_streams)
def _order(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        disorder = reading.digest(ResponsesDigest).disorder
        if disorder is not None:
            items.append((disorder[0], at_event(reading, disorder[1])))
    return grouped(ORDER, items)


@over(_streams)
def _sequence(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        unsequenced = reading.digest(ResponsesDigest).unsequenced
        if unsequenced is not None:
            message, detail, spot = unsequenced
            items.append((message, at_event(reading, spot, detail)))
    return grouped(SEQUENCE, items)


@over(_streams)
def _final_event(streams: Streams) -> Sequence[Finding] | Skip:
    message = (
        "the stream ended without response.completed, response.incomplete or "
        "response.failed: it was cut and the client cannot tell"
    )
    return grouped(FINAL, [(message, of_request(r)) for r in cut_streams(streams)])


@over(_streams)
def _usage(streams: Streams) -> Sequence[Finding] | Skip:
    items: list[tuple[str, Evidence]] = []
    for reading in (r for r in streams if r.complete):
        digest = reading.digest(ResponsesDigest)
        final = digest.final
        if final is None or final[0] == "response.failed" or digest.errored:
            continue
        kind, spot, input_tokens, output_tokens = final
        for key, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if value is None:
                items.append((f"{kind} carries no usage.{key}", at_event(reading, spot)))
        token_events = len(reading.token_times_ns)
        if output_tokens is not None and output_tokens < token_events:
            message = (
                f"usage says {brief(output_tokens)} output tokens, but {token_events} events "
                "carried text"
            )
            items.append((message, of_request(reading)))
    return grouped(USAGE, items)


@over(_streams)
def _text_done(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in (r for r in streams if r.complete):
        mismatch = reading.digest(ResponsesDigest).mismatch
        if mismatch is not None:
            message = "output_text.done's text is not its deltas joined"
            items.append((message, at_event(reading, mismatch[1], mismatch[0])))
    return grouped(TEXT_DONE, items)


@over(_streams)
def _tool_json(streams: Streams) -> Sequence[Finding] | Skip:
    message = "function call {index} ({name}): its argument fragments do not join into JSON"
    return tool_calls_not_json(TOOL_JSON, streams, message)


check = CheckFactory("responses", RESPONSES)

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
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
