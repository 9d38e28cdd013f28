"""Anthropic Messages events: names, order, stop reason, usage, terminator.

The ``anthropic`` SDK dispatches on the SSE event name and skips events without one, and
its accumulator indexes content blocks by position: an event without its name, or a
delta for a block that never started, loses content or raises. Those are FAILs.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from harness.conformance.reading import ReadEvent, Suite

__all__ = ["CHECKS"]

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


def _streams(suite: Suite) -> Streams | Skip:
    streams = tuple(r for r in suite.sse_streams if r.dialect == "anthropic")
    return streams or Skip("no Anthropic stream was received")


@over(_streams)
def _json(streams: Streams) -> Sequence[Finding] | Skip:
    return grouped(JSON, typed_event_problems(streams, "")[0])


@over(_streams)
def _event_name(streams: Streams) -> Sequence[Finding] | Skip:
    unnamed = "a {kind!r} event has no 'event:' line: the SDK skips it"
    return grouped(EVENT_NAME, typed_event_problems(streams, unnamed)[1])


def _order_problem(events: list[Typed]) -> tuple[str, ReadEvent] | None:
    state, next_index, open_index = "start", 0, None
    for event, kind, payload in events:
        if kind == "ping" or kind not in _KNOWN:
            continue
        if kind == "error":
            return None
        index = payload.get("index")
        if state == "start":
            if kind != "message_start":
                return f"the first event is {kind!r}, not 'message_start'", event
            state = "message"
        elif state == "stopped":
            return f"{kind!r} after message_stop", event
        elif kind == "message_start":
            return "a second message_start", event
        elif kind == "content_block_start":
            if open_index is not None or state != "message":
                return f"block {index} starts while block {open_index} is open", event
            if index != next_index:
                return f"block index {index!r}, where {next_index} comes next", event
            open_index, next_index = index, next_index + 1
        elif kind in ("content_block_delta", "content_block_stop"):
            if open_index is None or index != open_index:
                return f"{kind} for block {index!r}, which is not open", event
            if kind == "content_block_stop":
                open_index = None
        elif kind == "message_delta":
            if open_index is not None:
                return f"message_delta while block {open_index} is open", event
            state = "delta"
        elif kind == "message_stop":
            if state != "delta":
                return "message_stop without a message_delta before it", event
            state = "stopped"
    return None


@over(_streams)
def _order(streams: Streams) -> Sequence[Finding] | Skip:
    return order_findings(ORDER, streams, _order_problem)


@over(_streams)
def _stop_reason(streams: Streams) -> Sequence[Finding] | Skip:
    fails: list[tuple[str, Evidence]] = []
    warns: list[tuple[str, Evidence]] = []
    for reading in (r for r in streams if r.complete):
        deltas = [(e, p) for e, kind, p in typed(reading) if kind == "message_delta"]
        reasons = [(e, (p.get("delta") or {}).get("stop_reason")) for e, p in deltas]
        reasons = [(e, r) for e, r in reasons if r is not None]
        if any(kind == "error" for _, kind, _ in typed(reading)):
            continue
        if not reasons:
            fails.append(
                (
                    "no message_delta with a stop_reason: the end of the answer is unknown",
                    of_request(reading),
                )
            )
        for event, reason in reasons:
            if reason not in _STOP_REASONS:
                warns.append(
                    (f"stop_reason {reason!r} is not a documented one", at_event(reading, event))
                )
    return grouped(STOP_REASON, fails) + grouped(STOP_REASON, warns, Severity.WARN)


@over(_streams)
def _usage(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in (r for r in streams if r.complete):
        events = typed(reading)
        if any(kind == "error" for _, kind, _ in events):
            continue
        start = next(((e, p) for e, k, p in events if k == "message_start"), None)
        if start is not None:
            usage = (start[1].get("message") or {}).get("usage")
            if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int):
                items.append(
                    ("message_start carries no usage.input_tokens", at_event(reading, start[0]))
                )
        final = [(e, p) for e, k, p in events if k == "message_delta"]
        output = final[-1][1].get("usage", {}) if final else {}
        tokens = output.get("output_tokens") if isinstance(output, dict) else None
        if final and not isinstance(tokens, int):
            items.append(
                ("message_delta carries no usage.output_tokens", at_event(reading, final[-1][0]))
            )
        token_events = sum(1 for e in reading.events if e.token)
        if isinstance(tokens, int) and tokens < token_events:
            items.append(
                (
                    f"usage says {tokens} output tokens, but {token_events} events carried text",
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
