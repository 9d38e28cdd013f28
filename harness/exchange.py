"""One request, end to end: transport -> decoder -> dialect -> ``RequestRecord``.

The loop around the sans-IO reader is short on purpose: every chunk is stamped by the
transport, fed to the ``StreamReader``, and the record takes the arrival times of the
events it completed. Deadlines (first token, total, the client's own bounds, a planned
abandonment) share one ``asyncio.timeout`` that is moved, not stacked, so a request
costs one timer whatever its length.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.dialects import DeltaKind, Dialect, StreamReader, StreamResult
from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut
from harness.record import ErrorKind, Outcome, RequestRecord, TokenSource
from harness.transports.base import Clock, HttpRequest, Timeouts, Transport

__all__ = ["Abandon", "StreamBounds", "redact", "run_exchange"]

#: Dialects whose streams end with a terminator; a body ending without one is truncated.
TERMINATED_DIALECTS = frozenset(
    {"openai-chat", "openai-completions", "openai-responses", "anthropic"}
)
#: How much of an error response's body is kept in the record.
ERROR_BODY_BYTES = 2048
MOCK_REQUEST_ID = "x-mock-request-id"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamBounds:
    """The client's own bounds on one stream; reaching one records the request as cut."""

    max_stream_s: float | None = None
    max_events: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Abandon:
    """Close the stream on purpose after this many tokens or seconds (a user leaving)."""

    after_tokens: int | None = None
    after_s: float | None = None


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``[redacted]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


async def run_exchange(
    transport: Transport,
    request: HttpRequest,
    record: RequestRecord,
    *,
    dialect: Dialect | None,
    timeouts: Timeouts,
    bounds: StreamBounds = StreamBounds(),
    abandon: Abandon | None = None,
    secrets: Iterable[str] = (),
    clock: Clock = time.perf_counter_ns,
) -> StreamResult | None:
    """Send ``request`` and fill ``record`` with what happened.

    Never raises for what the endpoint does: every failure becomes the record's outcome
    and error kind, and everything measured before it stays in the record.

    Returns:
        The rebuilt response (for a conversation's next turn), or None when no body
        was read.

    Raises:
        asyncio.CancelledError: the run cancelled it; the record says ``cancelled``.
    """
    loop = asyncio.get_running_loop()
    sent_s = loop.time()
    record.t_sent_ns = clock()
    deadlines = {ErrorKind.TIMEOUT_TTFT: sent_s + timeouts.ttft_s,
                 ErrorKind.TIMEOUT_TOTAL: sent_s + timeouts.total_s}  # fmt: skip
    if bounds.max_stream_s is not None:
        deadlines[Outcome.CUT] = sent_s + bounds.max_stream_s
    if abandon is not None and abandon.after_s is not None:
        deadlines[Outcome.ABANDONED] = sent_s + abandon.after_s
    reader: StreamReader | None = None
    try:
        async with asyncio.timeout(min(deadlines.values())) as timer:
            try:
                async with transport.stream(request) as response:
                    record.t_headers_ns = response.t_headers_ns
                    record.status = response.status
                    record.content_type = response.headers.get("content-type")
                    record.mock_request_id = response.headers.get(MOCK_REQUEST_ID)
                    if not 200 <= response.status < 300:
                        await _read_error_body(response, record, secrets)
                        return None
                    reader = StreamReader(dialect, content_type=record.content_type)
                    await _read_stream(
                        response, reader, record, bounds, abandon, deadlines, timer, clock
                    )
            finally:
                if record.outcome is Outcome.ABANDONED:
                    record.t_close_ns = clock()
    except TimeoutError:
        _deadline_passed(record, deadlines, clock)
    except ConnectFailed as exc:
        _fail(record, ErrorKind.CONNECT, redact(str(exc), secrets), clock)
    except ReadTimedOut as exc:
        _fail(record, ErrorKind.TIMEOUT_IDLE, str(exc), clock)
    except ReadFailed as exc:
        _fail(record, ErrorKind.TRUNCATED, redact(str(exc), secrets), clock)
    except asyncio.CancelledError:
        _fail(record, ErrorKind.CANCELLED, "the run was cancelled", clock)
        raise
    if reader is None:
        return None
    result = reader.result()
    _conclude(record, reader, result, clock)
    return result


async def _read_stream(
    response: Any,
    reader: StreamReader,
    record: RequestRecord,
    bounds: StreamBounds,
    abandon: Abandon | None,
    deadlines: dict[Any, float],
    timer: asyncio.Timeout,
    clock: Clock,
) -> None:
    tokens = record.token_times_ns
    abandon_tokens = abandon.after_tokens if abandon is not None else None
    max_events = bounds.max_events
    async for arrival_ns, data in response.chunks():
        if record.t_first_byte_ns is None:
            record.t_first_byte_ns = arrival_ns
        record.bytes_received += len(data)
        for read in reader.feed(data):
            record.events += 1
            if record.t_first_event_ns is None:
                record.t_first_event_ns = arrival_ns
            if read.token:
                tokens.append(arrival_ns)
                if record.t_first_token_ns is None:
                    record.t_first_token_ns = arrival_ns
                    del deadlines[ErrorKind.TIMEOUT_TTFT]
                    timer.reschedule(min(deadlines.values()))
                if record.t_first_answer_ns is None and _has_answer(read.deltas):
                    record.t_first_answer_ns = arrival_ns
                if abandon_tokens is not None and len(tokens) >= abandon_tokens:
                    record.outcome = Outcome.ABANDONED
                    record.abandoned_after_tokens = len(tokens)
                    record.t_end_ns = arrival_ns
                    return
            if record.t_end_ns is None and any(d.kind is DeltaKind.DONE for d in read.deltas):
                record.t_end_ns = arrival_ns
            if max_events is not None and record.events >= max_events:
                record.outcome = Outcome.CUT
                record.t_end_ns = arrival_ns
                return
        if reader.fatal is not None:
            return
    reader.close()
    if record.t_end_ns is None:
        record.t_end_ns = clock()


def _has_answer(deltas: Iterable[Any]) -> bool:
    return any(d.kind is DeltaKind.CONTENT and d.text for d in deltas)


async def _read_error_body(response: Any, record: RequestRecord, secrets: Iterable[str]) -> None:
    body = b""
    try:
        async for _, data in response.chunks():
            body += data
            if len(body) >= ERROR_BODY_BYTES:
                break
    except (ReadFailed, ReadTimedOut):
        pass
    excerpt = body[:ERROR_BODY_BYTES].decode("utf-8", "replace").strip()
    _fail(record, ErrorKind.HTTP_STATUS, redact(f"HTTP {record.status}: {excerpt}", secrets))
    record.t_end_ns = record.t_end_ns or record.t_headers_ns


def _deadline_passed(record: RequestRecord, deadlines: Mapping[Any, float], clock: Clock) -> None:
    due = min(deadlines, key=deadlines.__getitem__)
    if due is Outcome.ABANDONED:
        record.outcome = Outcome.ABANDONED
        record.abandoned_after_tokens = len(record.token_times_ns)
        record.t_close_ns = clock()
        record.t_end_ns = record.t_close_ns
    elif due is Outcome.CUT:
        record.outcome = Outcome.CUT
        record.t_end_ns = clock()
    elif due is ErrorKind.TIMEOUT_TTFT:
        _fail(record, due, "no first token within the TTFT timeout", clock)
    else:
        _fail(record, ErrorKind.TIMEOUT_TOTAL, "the request ran past the total timeout", clock)


def _fail(record: RequestRecord, kind: ErrorKind, message: str, clock: Clock | None = None) -> None:
    if record.outcome is not Outcome.OK:
        return  # the first verdict stands (an abandoned stream's close is not an error)
    record.outcome = Outcome.ERROR
    record.error_kind = kind
    record.error_message = message
    if clock is not None and record.t_end_ns is None:
        record.t_end_ns = clock()


def _conclude(
    record: RequestRecord, reader: StreamReader, result: StreamResult, clock: Clock
) -> None:
    """Token counts, usage, finish and the stream-level verdicts once the body is read."""
    record.dialect = reader.dialect.name if reader.dialect is not None else None
    record.text_chars = len(result.text)
    record.reasoning_chars = len(result.reasoning or "")
    record.finish_reason = result.finish_reason
    record.done_sentinel = result.done
    usage = dict(result.usage) if result.usage else None
    record.usage = usage
    completion = _usage_count(usage, "completion_tokens", "output_tokens")
    record.usage_output_tokens = completion
    record.prompt_tokens = _usage_count(usage, "prompt_tokens", "input_tokens")
    if completion is not None:
        record.output_tokens, record.token_source = completion, TokenSource.USAGE
    else:
        record.output_tokens, record.token_source = len(record.token_times_ns), TokenSource.EVENTS
    if record.outcome is not Outcome.OK:
        return
    if reader.fatal is not None:
        _fail(record, ErrorKind.PROTOCOL, str(reader.fatal), clock)
    elif reader.errors:
        _fail(
            record,
            ErrorKind.PROTOCOL,
            f"{len(reader.errors)} bad event(s); first: {reader.errors[0]}",
        )
    elif result.error is not None:
        _fail(
            record,
            ErrorKind.STREAM_ERROR,
            f"the server sent an error in the stream: {result.error}",
        )
    elif not result.done and record.dialect in TERMINATED_DIALECTS:
        _fail(record, ErrorKind.TRUNCATED, "the body ended without the stream's terminator")


def _usage_count(usage: Mapping[str, Any] | None, *keys: str) -> int | None:
    if not usage:
        return None
    for key in keys:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
