"""Anthropic Messages events: names, order, stop reason, usage, terminator.

The ``anthropic`` SDK dispatches on the SSE event name and skips events without one, and
its accumulator indexes content blocks by position: an event without its name, or a
delta for a block that never started, loses content or raises. Those are FAILs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.conformance.checks.evidence import (
    Found,
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

__all__ = ["CHECKS", "AnthropicDigest"]

ANTHROPIC = frozenset({"anthropic"})
_KNOWN = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)
_STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
)


def _field(payload: dict[str, Any], outer: str, inner: str) -> Any:
    """``payload[outer][inner]``, or None when either is missing or not an object."""
    value = payload.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


class _Order:
    """The documented order, followed event by event: the first event out of place."""

    def __init__(self) -> None:
        self.state, self.next_index, self.open_index = "start", 0, None
        self.over = False  # an error came, or a problem was found: nothing more to judge

    def step(self, kind: str, payload: dict[str, Any]) -> str | None:
        if self.over or kind == "ping" or kind not in _KNOWN:
            return None
        if kind == "error":
            self.over = True
            return None
        problem = self._problem(kind, payload.get("index"))
        self.over = problem is not None
        return problem

    def _problem(self, kind: str, index: Any) -> str | None:
        state, open_index = self.state, self.open_index
        if state == "start":
            if kind != "message_start":
                return f"the first event is {kind!r}, not 'message_start'"
            self.state = "message"
        elif state == "stopped":
            return f"{kind!r} after message_stop"
        elif kind == "message_start":
            return "a second message_start"
        elif kind == "content_block_start":
            if open_index is not None or state != "message":
                return f"block {brief(index)} starts while block {brief(open_index)} is open"
            if index != self.next_index:
                return f"block index {brief(index)}, where {self.next_index} comes next"
            self.open_index, self.next_index = index, self.next_index + 1
        elif kind in ("content_block_delta", "content_block_stop"):
            if open_index is None or index != open_index:
                return f"{kind} for block {brief(index)}, which is not open"
            if kind == "content_block_stop":
                self.open_index = None
        elif kind == "message_delta":
            if open_index is not None:
                return f"message_delta while block {brief(open_index)} is open"
            self.state = "delta"
        elif kind == "message_stop":
            if state != "delta":
                return "message_stop without a message_delta before it"
            self.state = "stopped"
        return None


class AnthropicDigest(TypedDigest):
    """What the Anthropic checks keep of a stream.

    Attributes:
        disorder: the first event out of the documented order, and what is wrong.
        reasons: how many message_delta events carried a stop_reason;
            ``unknown_reasons`` those that are not documented.
        start_usage: the first message_start: whether it carried usage.input_tokens.
        last_delta: the last message_delta, and its usage.output_tokens (None when
            it has none).
    """

    dialects = ANTHROPIC
    unnamed = "a {kind} event has no 'event:' line: the SDK skips it"

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self._order = _Order()
        self.disorder: tuple[str, Spot] | None = None
        self.reasons = 0
        self.unknown_reasons = Found()
        self.start_usage: tuple[bool, Spot] | None = None
        self.last_delta: tuple[Spot, Any] | None = None

    def typed(self, event: ReadEvent, kind: str, payload: dict[str, Any]) -> None:
        problem = self._order.step(kind, payload)
        if problem is not None:
            self.disorder = (problem, event.spot)
        if kind == "message_start" and self.start_usage is None:
            usage = _field(payload, "message", "usage")
            has = isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int)
            self.start_usage = (has, event.spot)
        elif kind == "message_delta":
            reason = _field(payload, "delta", "stop_reason")
            if reason is not None:
                self.reasons += 1
                if not isinstance(reason, str) or reason not in _STOP_REASONS:
                    message = f"stop_reason {brief(reason)} is not a documented one"
                    self.unknown_reasons.add(message, event.spot)
            output = payload.get("usage", {})
            tokens = output.get("output_tokens") if isinstance(output, dict) else None
            self.last_delta = (event.spot, tokens)


def _streams(suite: Suite) -> Streams | Skip:
    streams = tuple(r for r in suite.sse_streams if r.dialect == "anthropic")
    return streams or Skip("no Anthropic stream was received")


@over(_streams)
def _json(streams: Streams) -> Sequence[Finding] | Skip:
    return grouped(JSON, found_items((r, r.digest(AnthropicDigest).untyped) for r in streams))


@over(_streams)
def _event_name(streams: Streams) -> Sequence[Finding] | Skip:
    found = found_items((r, r.digest(AnthropicDigest).misnamed) for r in streams)
    return grouped(EVENT_NAME, found)


@over(_streams)
def _order(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        disorder = reading.digest(AnthropicDigest).disorder
        if disorder is not None:
            items.append((disorder[0], at_event(reading, disorder[1])))
    return grouped(ORDER, items)


@over(_streams)
def _stop_reason(streams: Streams) -> Sequence[Finding] | Skip:
    fails: list[tuple[str, Evidence]] = []
    warns: list[tuple[str, Evidence]] = []
    for reading in (r for r in streams if r.complete):
        digest = reading.digest(AnthropicDigest)
        if digest.errored:
            continue
        if not digest.reasons:
            fails.append(
                (
                    "no message_delta with a stop_reason: the end of the answer is unknown",
                    of_request(reading),
                )
            )
        warns += digest.unknown_reasons.items(reading)
    return grouped(STOP_REASON, fails) + grouped(STOP_REASON, warns, Severity.WARN)


@over(_streams)
def _usage(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in (r for r in streams if r.complete):
        digest = reading.digest(AnthropicDigest)
        if digest.errored:
            continue
        if digest.start_usage is not None and not digest.start_usage[0]:
            message = "message_start carries no usage.input_tokens"
            items.append((message, at_event(reading, digest.start_usage[1])))
        tokens = None if digest.last_delta is None else digest.last_delta[1]
        if digest.last_delta is not None and not isinstance(tokens, int):
            message = "message_delta carries no usage.output_tokens"
            items.append((message, at_event(reading, digest.last_delta[0])))
        token_events = len(reading.token_times_ns)
        if isinstance(tokens, int) and tokens < token_events:
            items.append(
                (
                    f"usage says {brief(tokens)} output tokens, but {token_events} events "
                    "carried text",
                    of_request(reading),
                )
            )
    return grouped(USAGE, items)


@over(_streams)
def _message_stop(streams: Streams) -> Sequence[Finding] | Skip:
    message = "the stream ended without message_stop: it was cut and the client cannot tell"
    return grouped(MESSAGE_STOP, [(message, of_request(r)) for r in cut_streams(streams)])


@over(_streams)
def _tool_json(streams: Streams) -> Sequence[Finding] | Skip:
    message = "tool_use block {index} ({name}): its partial_json fragments do not join into JSON"
    return tool_calls_not_json(TOOL_JSON, streams, message, empty="{}")


check = CheckFactory("anthropic", ANTHROPIC)

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
JSON = check("anthropic.json", Severity.FAIL, "every data is typed JSON",
             "the SDK parses each event's data as a JSON object with a type", _json)
EVENT_NAME = check("anthropic.event-name", Severity.FAIL, "event name = data type",
                   "the SDK dispatches on the SSE event name and skips events without one",
                   _event_name)
ORDER = check("anthropic.event-order", Severity.FAIL, "documented event order",
              "message_start, blocks (start, deltas, stop; indexes 0, 1, ...), message_delta, "
              "message_stop: the SDK's accumulator relies on it", _order)
STOP_REASON = check("anthropic.stop-reason", Severity.FAIL, "a stop_reason",
                    "message_delta's stop_reason says why the answer ended", _stop_reason)
USAGE = check("anthropic.usage", Severity.WARN, "usage present and consistent",
              "input tokens in message_start, output tokens in message_delta", _usage)
MESSAGE_STOP = check("anthropic.message-stop", Severity.FAIL, "message_stop terminator",
                     "message_stop tells a complete stream from a dropped connection",
                     _message_stop)
TOOL_JSON = check("anthropic.tool-input-json", Severity.FAIL, "tool input is JSON",
                  "input_json_delta fragments must join into JSON; the SDK raises otherwise",
                  _tool_json)
# fmt: on

CHECKS = (JSON, EVENT_NAME, ORDER, STOP_REASON, USAGE, MESSAGE_STOP, TOOL_JSON)
