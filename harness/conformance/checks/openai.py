"""OpenAI chat and completions chunks: fields, identity, role, finish, [DONE], usage.

Severities follow what the official ``openai`` SDK does with a chunk: it raises on data
that is not JSON and on an ``error`` object, and builds its chunk objects without
validating them, so a missing or mistyped envelope field is a WARN, while what loses
content or the end of the answer (no finish reason and no ``[DONE]``, tool arguments
that are not JSON) is a FAIL. Known vendor habits are INFO, naming the vendor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from harness.conformance.checks.evidence import (
    Streams,
    at_event,
    grouped,
    of_request,
    over,
    tool_calls_not_json,
)
from harness.conformance.model import CheckFactory, Evidence, Finding, Severity, Skip
from harness.conformance.reading import ReadEvent, Reading, Suite
from harness.dialects import DeltaKind

__all__ = ["CHECKS", "OPENAI", "check", "choices", "chunks", "errored", "openai_streams"]

OPENAI = frozenset({"openai-chat", "openai-completions"})
CHAT = frozenset({"openai-chat"})
_OBJECTS = {"openai-chat": "chat.completion.chunk", "openai-completions": "text_completion"}
_FINISH = {
    "openai-chat": {"stop", "length", "tool_calls", "content_filter", "function_call"},
    "openai-completions": {"stop", "length", "content_filter"},
}
_TEXT_KINDS = (DeltaKind.CONTENT, DeltaKind.REASONING, DeltaKind.TOOL_CALL, DeltaKind.REFUSAL)


def openai_streams(suite: Suite) -> Streams | Skip:
    streams = tuple(r for r in suite.sse_streams if r.dialect in OPENAI)
    return streams or Skip("no OpenAI stream was received")


def chunks(reading: Reading) -> Iterator[tuple[ReadEvent, dict[str, Any]]]:
    """The events that are chunks: JSON objects, neither [DONE] nor an error."""
    for event in reading.events:
        payload = event.payload()
        if isinstance(payload, dict) and "error" not in payload:
            yield event, payload


def choices(payload: dict[str, Any]) -> list[dict[str, Any]]:
    choices = payload.get("choices")
    return [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []


def errored(reading: Reading) -> bool:
    """The stream carried an error (judged by errors.in-stream, not here)."""
    return reading.result is not None and reading.result.error is not None


@over(openai_streams)
def _json(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        for event in reading.events:
            if event.event.data.strip() == "[DONE]" or isinstance(event.payload(), dict):
                continue
            items.append(
                (
                    "an event's data is not a JSON object: the SDK raises on it",
                    at_event(reading, event),
                )
            )
    return grouped(JSON, items)


@over(openai_streams)
def _fields(streams: Streams) -> Sequence[Finding] | Skip:
    fails: list[tuple[str, Evidence]] = []
    warns: list[tuple[str, Evidence]] = []
    for reading in streams:
        expected = _OBJECTS[reading.dialect or "openai-chat"]
        for event, payload in chunks(reading):
            if event.error is not None:
                fails.append(
                    (
                        f"a field has the wrong type: {event.error.split(': ')[1]}",
                        at_event(reading, event),
                    )
                )
            if "choices" not in payload:
                fails.append(("a chunk without choices", at_event(reading, event)))
            for key, kind, name in (
                ("id", str, "a string"),
                ("created", int, "an integer"),
                ("model", str, "a string"),
            ):
                value = payload.get(key)
                if not isinstance(value, kind) or isinstance(value, bool):
                    warns.append(
                        (f"chunk {key!r} is missing or not {name}", at_event(reading, event))
                    )
            if payload.get("object") != expected:
                warns.append(
                    (
                        f"chunk 'object' is {payload.get('object')!r}, not {expected!r}",
                        at_event(reading, event),
                    )
                )
            for choice in choices(payload):
                if "index" not in choice:
                    warns.append(("a choice without its index", at_event(reading, event)))
                if reading.dialect == "openai-chat" and not isinstance(choice.get("delta"), dict):
                    fails.append(("a chat choice without a delta object", at_event(reading, event)))
    return grouped(FIELDS, fails) + grouped(FIELDS, warns, Severity.WARN)


@over(openai_streams)
def _identity(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        first: dict[str, Any] | None = None
        for event, payload in chunks(reading):
            seen = {key: payload.get(key) for key in ("id", "model", "created")}
            if first is None:
                first = seen
                continue
            changed = [key for key in seen if seen[key] != first[key]]
            if changed:
                detail = ", ".join(f"{k} {first[k]!r} -> {seen[k]!r}" for k in changed)
                items.append(
                    (
                        f"{'/'.join(changed)} change(s) within a stream",
                        at_event(reading, event, detail),
                    )
                )
                break
    return grouped(IDENTITY, items)


def _roles(reading: Reading) -> list[tuple[ReadEvent, str | None]]:
    roles = []
    for event, payload in chunks(reading):
        for choice in choices(payload):
            delta = choice.get("delta")
            if isinstance(delta, dict):
                roles.append((event, delta.get("role")))
    return roles


@over(openai_streams)
def _role_first(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in (r for r in streams if r.dialect == "openai-chat"):
        roles = _roles(reading)
        if roles and roles[0][1] != "assistant":
            items.append(
                (
                    f"the first delta's role is {roles[0][1]!r}, not 'assistant'",
                    at_event(reading, roles[0][0]),
                )
            )
    return grouped(ROLE_FIRST, items)


@over(openai_streams)
def _role_repeated(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in (r for r in streams if r.dialect == "openai-chat"):
        with_role = [event for event, role in _roles(reading) if role is not None]
        if len(with_role) > 1:
            items.append(
                (
                    f"the role is repeated on {len(with_role)} deltas, as Ollama does: "
                    "clients accept it",
                    at_event(reading, with_role[1]),
                )
            )
    return grouped(ROLE_REPEATED, items)


def _finishes(reading: Reading) -> dict[int, list[tuple[ReadEvent, str]]]:
    found: dict[int, list[tuple[ReadEvent, str]]] = {}
    for event in reading.events:
        for delta in event.deltas:
            if delta.kind is DeltaKind.FINISH and delta.finish_reason is not None:
                found.setdefault(delta.choice, []).append((event, delta.finish_reason))
    return found


@over(openai_streams)
def _finish_once(streams: Streams) -> Sequence[Finding] | Skip:
    fails, warns = [], []
    for reading in (r for r in streams if r.complete and not errored(r)):
        finishes = _finishes(reading)
        numbers = {d.choice for e in reading.events for d in e.deltas if d.kind in _TEXT_KINDS}
        for choice in sorted(numbers | {0}):
            seen = finishes.get(choice, [])
            if not seen:
                fails.append(
                    (
                        f"choice {choice} never gets a finish_reason: the end of the "
                        "answer is unknown",
                        of_request(reading),
                    )
                )
            elif len(seen) > 1:
                warns.append(
                    (
                        f"choice {choice} gets a finish_reason {len(seen)} times",
                        at_event(reading, seen[1][0]),
                    )
                )
    return grouped(FINISH_ONCE, fails) + grouped(FINISH_ONCE, warns, Severity.WARN)


@over(openai_streams)
def _finish_last(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        for choice, seen in _finishes(reading).items():
            first = seen[0][0]
            later = [
                e
                for e in reading.events[first.number + 1 :]
                if any(
                    d.kind in _TEXT_KINDS and d.choice == choice and (d.text or d.tool_id)
                    for d in e.deltas
                )
            ]
            if later:
                items.append(
                    (
                        f"choice {choice} carries content after its finish_reason",
                        at_event(reading, later[0]),
                    )
                )
    return grouped(FINISH_LAST, items)


@over(openai_streams)
def _finish_value(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        allowed = _FINISH[reading.dialect or "openai-chat"]
        for seen in _finishes(reading).values():
            for event, reason in seen:
                if reason not in allowed:
                    items.append(
                        (
                            f"finish_reason {reason!r} is not one of {', '.join(sorted(allowed))}",
                            at_event(reading, event),
                        )
                    )
    return grouped(FINISH_VALUE, items)


@over(openai_streams)
def _done(streams: Streams) -> Sequence[Finding] | Skip:
    fails, warns = [], []
    for reading in (r for r in streams if r.complete and r.result is not None):
        if reading.result.done or errored(reading):
            continue
        if reading.result.finish_reason is None:
            fails.append(
                (
                    "the stream ended without a finish_reason or [DONE]: it was cut and "
                    "the client cannot tell",
                    of_request(reading),
                )
            )
        else:
            warns.append(
                ("no data: [DONE] at the end (the finish_reason was sent)", of_request(reading))
            )
    return grouped(DONE, fails) + grouped(DONE, warns, Severity.WARN)


@over(openai_streams)
def _tool_json(streams: Streams) -> Sequence[Finding] | Skip:
    message = "tool call {index} ({name}): its argument fragments do not join into JSON"
    return tool_calls_not_json(TOOL_JSON, streams, message)


check = CheckFactory("openai", OPENAI)

# fmt: off
JSON = check("openai.json", Severity.FAIL, "every data is JSON or [DONE]",
             "the SDK parses every event's data as JSON and raises when it is not", _json)
FIELDS = check("openai.chunk-fields", Severity.FAIL, "chunk fields and types",
               "choices/delta of the wrong type break clients; the envelope is WARN", _fields)
IDENTITY = check("openai.same-identity", Severity.WARN, "same id, model, created",
                 "every chunk of one completion carries the same id, model and created",
                 _identity)
ROLE_FIRST = check("openai.role-first", Severity.WARN, "role on the first delta",
                   "OpenAI's first delta says role 'assistant'; accumulators start from it",
                   _role_first, CHAT)
ROLE_REPEATED = check("openai.role-repeated", Severity.INFO, "role only once",
                      "a vendor habit (Ollama) that clients accept", _role_repeated, CHAT)
FINISH_ONCE = check("openai.finish-reason-once", Severity.FAIL, "finish_reason once per choice",
                    "without it the client cannot tell a finished answer from a cut one",
                    _finish_once)
FINISH_LAST = check("openai.finish-reason-last", Severity.WARN, "no content after finish",
                    "the finish_reason closes the choice; accumulators may drop what follows",
                    _finish_last)
FINISH_VALUE = check("openai.finish-reason-value", Severity.WARN, "known finish_reason",
                     "clients switch on stop/length/tool_calls/content_filter", _finish_value)
DONE = check("openai.done", Severity.FAIL, "data: [DONE] terminator",
             "the [DONE] event tells a complete stream from a connection that dropped", _done)
TOOL_JSON = check("openai.tool-call-json", Severity.FAIL, "tool arguments are JSON",
                  "tool-call fragments must join into valid JSON, or the call cannot be made",
                  _tool_json)
# fmt: on

CHECKS = (
    JSON, FIELDS, IDENTITY, ROLE_FIRST, ROLE_REPEATED, FINISH_ONCE, FINISH_LAST, FINISH_VALUE,
    DONE, TOOL_JSON,
)  # fmt: skip
