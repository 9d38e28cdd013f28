"""Errors: refused requests get a 4xx with a JSON body; errors inside a stream come in
the dialect's documented shape, so that clients raise them instead of losing them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.conformance.captured import Purpose
from harness.conformance.checks.evidence import Found, found_items, grouped, of_request
from harness.conformance.model import CheckFactory, Evidence, Finding, Severity, Skip, show_bytes
from harness.conformance.reading import Digest, ReadEvent, Suite, load_payload
from harness.dialects import DeltaKind

__all__ = ["CHECKS", "ErrorsDigest"]

OPENAI = frozenset({"openai-chat", "openai-completions", "openai-responses"})
#: At most this many bytes of an error body are shown.
BODY_EXCERPT_BYTES = 120


def _invalid_rejected(suite: Suite) -> Sequence[Finding] | Skip:
    invalid = suite.of(Purpose.INVALID)
    if not invalid:
        return Skip("no invalid request could be made (GET endpoints take no body)")
    fails: list[tuple[str, Evidence]] = []
    warns: list[tuple[str, Evidence]] = []
    for reading in invalid:
        exchange = reading.exchange
        status = exchange.status
        evidence = of_request(reading, f"{exchange.note}: HTTP {status}")
        if status is None:
            warns.append(("no response to an invalid request", of_request(reading, exchange.error)))
        elif status < 300:
            fails.append(
                (
                    f"an invalid request was accepted with {status}: the client never "
                    "learns its mistake",
                    evidence,
                )
            )
        elif status >= 500:
            warns.append(
                (
                    f"an invalid request got a server error ({status}): clients and "
                    "the SDKs retry 5xx, so the bad request is sent again",
                    evidence,
                )
            )
    return grouped(INVALID, fails) + grouped(INVALID, warns, Severity.WARN)


def _shape_problem(dialect: str | None, body: Any) -> str | None:
    if dialect in OPENAI:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return 'not OpenAI\'s {"error": {"message": ...}}: the SDK\'s error has no message'
    elif dialect == "anthropic":
        error = body.get("error") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or body.get("type") != "error"
            or not isinstance(error, dict)
            or not isinstance(error.get("type"), str)
        ):
            return 'not Anthropic\'s {"type": "error", "error": {"type", "message"}}'
    elif not isinstance(body, dict):
        return "the error body is not a JSON object"
    return None


def _error_body(suite: Suite) -> Sequence[Finding] | Skip:
    refused = [
        r for r in suite.readings if r.exchange.status is not None and r.exchange.status >= 400
    ]
    if not refused:
        return Skip("no request was refused")
    items = []
    for reading in refused:
        exchange = reading.exchange
        content_type = (exchange.header("content-type") or "").lower()
        shown = show_bytes(exchange.body[:BODY_EXCERPT_BYTES])
        detail = f"HTTP {exchange.status}, {content_type or 'no Content-Type'}: {shown}"
        evidence = of_request(reading, detail)
        body = load_payload(exchange.body)
        if body is None and exchange.body.strip() != b"null":
            items.append(("an error response's body is not JSON", evidence))
            continue
        if "event-stream" in content_type:
            items.append(("an error is sent as an event stream", evidence))
        problem = _shape_problem(suite.dialect, body)
        if problem:
            items.append((problem, evidence))
    return grouped(ERROR_BODY, items)


class ErrorsDigest(Digest):
    """What the error checks keep of a stream: its events that carry an error (``carried``),
    and its error-like events (named ``error``, or with an error object): how many, and
    the problems with their shape (``fails``, ``warns``)."""

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self.carried = Found()
        self.error_like = 0
        self.fails = Found()
        self.warns = Found()

    def event(self, event: ReadEvent) -> None:
        if DeltaKind.ERROR in event.kinds():
            message = "a valid request's stream carried an error: the answer is incomplete"
            self.carried.add(message, event.spot)
        payload = event.payload()
        named = event.event.type == "error"
        typed = isinstance(payload, dict) and (payload.get("type") == "error" or "error" in payload)
        if not (named or typed):
            return
        self.error_like += 1
        dialect = self.suite_dialect
        if dialect == "anthropic":
            if not named:
                message = "an error without 'event: error': the SDK does not raise it"
                self.fails.add(message, event.spot)
            elif problem := _shape_problem("anthropic", payload):
                self.warns.add(problem, event.spot)
        elif not (isinstance(payload, dict) and payload.get("error")):
            message = (
                "an 'error' event without an 'error' object: the SDK reads it as "
                "a chunk and the error is lost"
            )
            self.fails.add(message, event.spot)
        elif problem := _shape_problem(dialect, payload):
            self.warns.add(problem, event.spot)


def _in_stream(suite: Suite) -> Sequence[Finding] | Skip:
    if not suite.streams:
        return Skip("no stream was received")
    return grouped(
        IN_STREAM, found_items((r, r.digest(ErrorsDigest).carried) for r in suite.streams)
    )


def _in_stream_shape(suite: Suite) -> Sequence[Finding] | Skip:
    digests = [(r, r.digest(ErrorsDigest)) for r in suite.streams]
    if not any(d.error_like for _, d in digests):
        return Skip("no stream carried an error")
    fails = found_items((r, d.fails) for r, d in digests)
    warns = found_items((r, d.warns) for r, d in digests)
    return grouped(IN_STREAM_SHAPE, fails) + grouped(IN_STREAM_SHAPE, warns, Severity.WARN)


#: The dialects whose in-stream errors have a documented shape.
_DOCUMENTED_SHAPES = frozenset({"openai-chat", "openai-completions", "anthropic"})

check = CheckFactory("errors")

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
INVALID = check("errors.invalid-rejected", Severity.FAIL, "invalid requests get a 4xx",
                "a malformed request must be refused with a 4xx, not answered with a stream",
                _invalid_rejected)
ERROR_BODY = check("errors.error-body", Severity.WARN, "JSON error bodies",
                   "the SDKs build their exceptions from the JSON error body in the API's shape",
                   _error_body)
IN_STREAM = check("errors.in-stream", Severity.FAIL, "no errors inside valid streams",
                  "an error event in the middle of a valid request's stream cuts the answer",
                  _in_stream)
IN_STREAM_SHAPE = check("errors.in-stream-shape", Severity.FAIL,
                        "stream errors in the documented shape",
                        "only the documented shape makes the SDKs raise; "
                        "any other is silently lost",
                        _in_stream_shape, _DOCUMENTED_SHAPES)
# fmt: on

CHECKS = (INVALID, ERROR_BODY, IN_STREAM, IN_STREAM_SHAPE)
