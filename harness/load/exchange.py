"""One request, end to end: transport -> decoder -> dialect -> ``RequestRecord``.

The loop around the sans-IO reader is short on purpose: every chunk is stamped by the
transport, fed to the ``StreamReader``, and the record takes the arrival times of the
events it completed. Deadlines (first token, total, the client's own bounds, a planned
abandonment) share one ``asyncio.timeout_at`` that is moved, not stacked, so a request
costs one timer whatever its length. Every deadline is an absolute time on the event
loop's clock, counted from the request's start, and it holds from the first byte sent:
headers that never finish and streams of comments alone end at their deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.dialects import Dialect, StreamReader, StreamResult
from harness.errors import ReadFailed, ReadTimedOut, TransportError
from harness.load.recorder import (
    ERROR_BODY_BYTES,
    MOCK_REQUEST_ID,
    StreamRecorder,
    conclude,
    fail,
    fail_status,
    redact_record,
)
from harness.record import ErrorKind, Outcome, RequestRecord, kind_of
from harness.transports.base import Clock, HttpRequest, Timeouts, Transport, deliver

__all__ = ["Abandon", "StreamBounds", "run_exchange"]


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
    """Send ``request`` and fill ``record`` with what happened; the ``secrets`` are
    redacted from everything the record keeps (see ``redact_record``), once, at the end.

    Never raises for what the endpoint does: every failure becomes the record's outcome
    and error kind, and everything measured before it stays in the record.

    Returns:
        The rebuilt response (for a conversation's next turn), or None when no body
        was read.

    Raises:
        asyncio.CancelledError: the run cancelled it; the record says ``cancelled``.
    """
    secrets = tuple(secrets)
    try:
        return await _exchange(
            transport, request, record, dialect, timeouts, bounds, abandon, secrets, clock
        )
    except Exception as exc:  # the boundary of one request: nothing it meets ends the run
        message = f"unexpected error reading the response: {type(exc).__name__}: {exc}"
        fail(record, ErrorKind.PROTOCOL, message, clock())
        return None
    finally:
        redact_record(record, secrets)


async def _exchange(
    transport: Transport,
    request: HttpRequest,
    record: RequestRecord,
    dialect: Dialect | None,
    timeouts: Timeouts,
    bounds: StreamBounds,
    abandon: Abandon | None,
    secrets: Iterable[str],
    clock: Clock,
) -> StreamResult | None:
    loop = asyncio.get_running_loop()
    sent_s = loop.time()
    record.t_sent_ns = clock()
    deadlines: dict[ErrorKind | Outcome, float] = {
        ErrorKind.TIMEOUT_TTFT: sent_s + timeouts.ttft_s,
        ErrorKind.TIMEOUT_TOTAL: sent_s + timeouts.total_s,
    }
    if bounds.max_stream_s is not None:
        deadlines[Outcome.CUT] = sent_s + bounds.max_stream_s
    if abandon is not None and abandon.after_s is not None:
        deadlines[Outcome.ABANDONED] = sent_s + abandon.after_s
    reader: StreamReader | None = None
    try:
        async with asyncio.timeout_at(min(deadlines.values())) as timer:
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
    except TransportError as exc:
        fail(record, kind_of(exc), str(exc), clock())
    except asyncio.CancelledError:
        fail(record, ErrorKind.CANCELLED, "the run was cancelled", clock())
        raise
    if reader is None:
        return None
    result = reader.result()
    conclude(record, reader, result, clock())
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
    # a transport that stamps in the kernel also offers the user-space stamp of each read
    clock_source = getattr(response, "clock_source", "user")
    stamped = clock_source != "user"

    def on_first_token() -> None:  # the TTFT timer goes
        del deadlines[ErrorKind.TIMEOUT_TTFT]
        timer.reschedule(min(deadlines.values()))
        if stamped:  # the stamp may have fallen back to user space since the start
            record.clock_source = response.clock_source

    recorder = StreamRecorder(
        record,
        reader,
        abandon_after_tokens=abandon.after_tokens if abandon is not None else None,
        max_events=bounds.max_events,
        clock_source=clock_source,
        on_first_token=on_first_token,
    )
    if stamped:  # the kernel transport's: the sink takes both stamps of each read
        await response.deliver(recorder.feed, user_stamps=True)
    else:
        await deliver(response, recorder.feed)  # the sink runs in the transport's callback
    if not recorder.stopped:
        recorder.close(clock())


async def _read_error_body(response: Any, record: RequestRecord, secrets: Iterable[str]) -> None:
    body = b""
    try:
        async for _, data in response.chunks():
            body += data
            if len(body) >= ERROR_BODY_BYTES:
                break
    except (ReadFailed, ReadTimedOut):
        pass
    fail_status(record, body, response.headers, secrets, time.time())


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
        fail(record, due, "no first token within the TTFT timeout", clock())
    else:
        fail(record, ErrorKind.TIMEOUT_TOTAL, "the request ran past the total timeout", clock())
