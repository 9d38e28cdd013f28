"""OpenAI chat and completions chunks: fields, identity, role, finish, [DONE], usage.

Severities follow what the official ``openai`` SDK does with a chunk: it raises on data
that is not JSON and on an ``error`` object, and builds its chunk objects without
validating them, so a missing or mistyped envelope field is a WARN, while what loses
content or the end of the answer (no finish reason and no ``[DONE]``, tool arguments
that are not JSON) is a FAIL. Known vendor habits are INFO, naming the vendor.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.conformance.checks.evidence import (
    Streams,
    at_event,
    found_items,
    grouped,
    of_request,
    over,
    tool_calls_not_json,
)
from harness.conformance.checks.openai_chunks import OPENAI, OpenAIDigest
from harness.conformance.model import CheckFactory, Evidence, Finding, Severity, Skip, brief
from harness.conformance.reading import Reading, Suite
from harness.dialects import answer_complete

__all__ = ["CHECKS", "OPENAI", "check", "errored", "openai_streams"]

CHAT = frozenset({"openai-chat"})


def openai_streams(suite: Suite) -> Streams | Skip:
    streams = tuple(r for r in suite.sse_streams if r.dialect in OPENAI)
    return streams or Skip("no OpenAI stream was received")


def errored(reading: Reading) -> bool:
    """The stream carried an error (judged by errors.in-stream, not here)."""
    return reading.result is not None and reading.result.error is not None


@over(openai_streams)
def _json(streams: Streams) -> Sequence[Finding] | Skip:
    return grouped(JSON, found_items((r, r.digest(OpenAIDigest).not_json) for r in streams))


@over(openai_streams)
def _fields(streams: Streams) -> Sequence[Finding] | Skip:
    digests = [(r, r.digest(OpenAIDigest)) for r in streams]
    fails = found_items((r, d.fails) for r, d in digests)
    warns = found_items((r, d.warns) for r, d in digests)
    return grouped(FIELDS, fails) + grouped(FIELDS, warns, Severity.WARN)


@over(openai_streams)
def _identity(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        changed = reading.digest(OpenAIDigest).changed
        if changed is not None:
            keys, detail, spot = changed
            message = f"{'/'.join(keys)} change(s) within a stream"
            items.append((message, at_event(reading, spot, detail)))
    return grouped(IDENTITY, items)


@over(openai_streams)
def _role_first(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in (r for r in streams if r.dialect == "openai-chat"):
        first = reading.digest(OpenAIDigest).first_role
        if first is not None and first[0] != "assistant":
            message = f"the first delta's role is {brief(first[0])}, not 'assistant'"
            items.append((message, at_event(reading, first[1])))
    return grouped(ROLE_FIRST, items)


@over(openai_streams)
def _role_repeated(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in (r for r in streams if r.dialect == "openai-chat"):
        digest = reading.digest(OpenAIDigest)
        if digest.second_role is not None:
            items.append(
                (
                    f"the role is repeated on {digest.roles} deltas, as Ollama does: "
                    "clients accept it",
                    at_event(reading, digest.second_role),
                )
            )
    return grouped(ROLE_REPEATED, items)


@over(openai_streams)
def _finish_once(streams: Streams) -> Sequence[Finding] | Skip:
    fails, warns = [], []
    for reading in (r for r in streams if r.complete and not errored(r)):
        digest = reading.digest(OpenAIDigest)
        for number in sorted(digest.numbers | {0}):
            choice = digest.finishes.get(number)
            if choice is None:
                fails.append(
                    (
                        f"choice {number} never gets a finish_reason: the end of the "
                        "answer is unknown",
                        of_request(reading),
                    )
                )
            elif choice.second is not None:
                warns.append(
                    (
                        f"choice {number} gets a finish_reason {choice.finishes} times",
                        at_event(reading, choice.second),
                    )
                )
    return grouped(FINISH_ONCE, fails) + grouped(FINISH_ONCE, warns, Severity.WARN)


@over(openai_streams)
def _finish_last(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        for number, choice in reading.digest(OpenAIDigest).finishes.items():
            if choice.later is not None:
                items.append(
                    (
                        f"choice {number} carries content after its finish_reason",
                        at_event(reading, choice.later),
                    )
                )
    return grouped(FINISH_LAST, items)


@over(openai_streams)
def _finish_value(streams: Streams) -> Sequence[Finding] | Skip:
    found = found_items((r, r.digest(OpenAIDigest).unknown_reasons) for r in streams)
    return grouped(FINISH_VALUE, found)


@over(openai_streams)
def _done(streams: Streams) -> Sequence[Finding] | Skip:
    fails: list[tuple[str, Evidence]] = []
    warns: list[tuple[str, Evidence]] = []
    for reading, result in ((r, r.result) for r in streams if r.complete and r.result is not None):
        if result.done or errored(reading):
            continue
        if not answer_complete(reading.dialect, result):  # run's rule too
            fails.append(
                (
                    "the stream ended without a finish_reason for every choice or [DONE]: "
                    "it was cut and the client cannot tell",
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

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
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
    JSON,
    FIELDS,
    IDENTITY,
    ROLE_FIRST,
    ROLE_REPEATED,
    FINISH_ONCE,
    FINISH_LAST,
    FINISH_VALUE,
    DONE,
    TOOL_JSON,
)
