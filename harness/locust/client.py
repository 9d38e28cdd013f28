"""The locust user's client: one streamed request, read under gevent, into a ``RequestRecord``.

Locust runs every user in a greenlet, so the client here is synchronous and
gevent-friendly, around the same sans-IO reader as every other entry point: the request
comes from ``harness.load.payloads.build_request``, the body goes through
``harness.dialects.StreamReader``, and the record is stamped and judged by
``harness.load.recorder``, as the asyncio exchange's are. The client reads the clock itself
as each chunk arrives
(locust's own clock stops at the headers when a response is streamed) and fires locust's
``request`` event once per stream, when it ends: request type ``SSE``, the URL's path as
its name, the time from send to the end as its response time and the output tokens as
its length; a failure carries its ``ErrorKind`` (``timeout_ttft``, ``http_status 429``,
...) as the error. So locust's requests/s, failures and charts count streams. TTFT and
inter-token gaps never enter locust's statistics: the plugin's live figures
(``harness.locust.live``) and the run folder hold them. A stream that locust stops (its
user is stopped) is recorded as ``cancelled``, as ``run`` records the streams its grace
period ends, but is no locust request: the endpoint did not fail.

Two HTTP clients can carry the stream: the one under locust's ``FastHttpUser``
(geventhttpclient, the default: in ``sse-harness bench locust`` it spent about 30% less
CPU per event, with a smaller TTFT error) and the one under ``HttpUser`` (requests).
geventhttpclient has no call that returns "what has arrived" (``read(n)`` waits for ``n``
bytes), so its reader receives from the response's socket and feeds its parser itself,
as geventhttpclient's own ``read`` does.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import gevent
import requests
import urllib3.exceptions
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPParseError
from greenlet import GreenletExit
from requests.adapters import HTTPAdapter

from harness.dialects import StreamReader
from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut, TransportError
from harness.load.payloads import Message, build_request
from harness.load.recorder import (
    ERROR_BODY_BYTES,
    MOCK_REQUEST_ID,
    StreamRecorder,
    conclude,
    fail,
    fail_status,
    redact_record,
)
from harness.locust.settings import StreamSettings
from harness.record import ErrorKind, Outcome, RequestRecord, kind_of
from harness.transports.base import Clock, HttpRequest, Timeouts

__all__ = ["REQUEST_TYPE", "SSEClient", "failure_of"]

#: The request type of every row the client adds to locust's statistics.
REQUEST_TYPE = "SSE"
READ_BYTES = 65536


class _Deadline(Exception):
    """The TTFT or total deadline of one request passed (raised by its gevent timer)."""


class SSEClient:
    """Streams requests for one locust user.

    Args:
        settings: how requests are built and read.
        request_event: locust's ``events.request`` hook, fired once per ended stream.
        sink: receives every finished record, a cancelled one too.
        on_token: called at every token-bearing event (live tokens/s).
        clock: the arrival clock.
    """

    def __init__(
        self,
        settings: StreamSettings,
        *,
        request_event: Any,
        sink: Callable[[RequestRecord], None],
        on_token: Callable[[], None] = lambda: None,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        self._settings = settings
        self._dialect = settings.dialect
        self._event = request_event
        self._sink = sink
        self._on_token = on_token
        self._clock = clock
        self._secrets = settings.spec.secrets
        self._timer = gevent.Timeout()  # replaced by each request's deadline
        streams = _GeventStreams if settings.http_client == "fasthttp" else _RequestsStreams
        self._streams = streams(settings.spec.full_url, settings.timeouts, clock)
        self.name = urllib.parse.urlsplit(settings.spec.full_url).path or "/"

    def close(self) -> None:
        self._streams.close()

    def stream(
        self,
        messages: Sequence[Message],
        *,
        request_id: str,
        user: int = 0,
        max_tokens: int | None = None,
    ) -> RequestRecord:
        """Send one request and read its stream to the end; the record goes to the sink.

        Args:
            messages: the conversation, the user's new turn last.
            request_id: the record's id.
            user: the locust user's number.
            max_tokens: the output length to ask for (None: the settings' own).

        Never raises for what the endpoint does: failures become the record's error kind.

        Raises:
            GreenletExit: locust stopped the user; the record says ``cancelled``.
        """
        request = build_request(self._settings.spec, messages, max_tokens=max_tokens)
        record = RequestRecord(request_id=request_id, user=user)
        timeouts = self._settings.timeouts
        reader: StreamReader | None = None
        record.t_sent_ns = self._clock()
        self._start_timer(min(timeouts.ttft_s, timeouts.total_s))
        try:
            with self._streams.open(request) as response:
                record.t_headers_ns = response.t_headers_ns
                record.status = response.status
                record.content_type = response.headers.get("content-type")
                record.mock_request_id = response.headers.get(MOCK_REQUEST_ID)
                if 200 <= response.status < 300:
                    reader = StreamReader(self._dialect, content_type=record.content_type)
                    self._read(response, reader, record)
                else:
                    self._read_error_body(response, record)
        except _Deadline:
            self._deadline_passed(record)
        except TransportError as exc:
            fail(record, kind_of(exc), str(exc), self._clock())
        except GreenletExit:
            fail(record, ErrorKind.CANCELLED, "locust stopped the user", self._clock())
            self._finish(record)
            raise
        except Exception as exc:  # the boundary of one request: nothing it meets ends the user
            message = f"unexpected error reading the response: {type(exc).__name__}: {exc}"
            fail(record, ErrorKind.PROTOCOL, message, self._clock())
        finally:
            self._timer.close()
        if reader is not None:
            conclude(record, reader, reader.result(), self._clock())
        self._finish(record)
        return record

    def _read(self, response: Any, reader: StreamReader, record: RequestRecord) -> None:
        recorder = StreamRecorder(record, reader, on_token=self._token)
        waiting_for_first = True
        for arrival_ns, data in response.chunks():
            stop = recorder.feed(arrival_ns, data)
            if waiting_for_first and record.t_first_token_ns is not None:
                waiting_for_first = False  # TTFT met: only the total deadline is left
                total_s = self._settings.timeouts.total_s
                self._start_timer(total_s - (self._clock() - record.t_sent_ns) / 1e9)
            if stop:
                return
        recorder.close(self._clock())

    def _token(self, arrival_ns: int, previous_ns: int | None) -> None:
        self._on_token()

    def _start_timer(self, seconds: float) -> None:
        """Run one deadline timer at a time: a new one replaces the last."""
        self._timer.close()
        self._timer = gevent.Timeout(max(seconds, 0.0), _Deadline())
        self._timer.start()

    def _deadline_passed(self, record: RequestRecord) -> None:
        timeouts = self._settings.timeouts
        if record.t_first_token_ns is None and timeouts.ttft_s <= timeouts.total_s:
            kind, message = ErrorKind.TIMEOUT_TTFT, "no first token within the TTFT timeout"
        else:
            kind, message = ErrorKind.TIMEOUT_TOTAL, "the request ran past the total timeout"
        fail(record, kind, message, self._clock())

    def _read_error_body(self, response: Any, record: RequestRecord) -> None:
        body = b""
        try:
            for _, data in response.chunks():
                body += data
                if len(body) >= ERROR_BODY_BYTES:
                    break
        except (ReadFailed, ReadTimedOut):
            pass
        fail_status(record, body, response.headers, self._secrets, time.time())

    def _finish(self, record: RequestRecord) -> None:
        redact_record(record, self._secrets)
        if record.error_kind is not ErrorKind.CANCELLED:  # stopping is no request's end
            elapsed_ms = ((record.t_end_ns or self._clock()) - record.t_sent_ns) / 1e6
            self._event.fire(
                request_type=REQUEST_TYPE,
                name=self.name,
                response_time=elapsed_ms,
                response_length=record.output_tokens or 0,
                exception=failure_of(record),
                context={},
            )
        self._sink(record)


def failure_of(record: RequestRecord) -> str | None:
    """Locust's error for a failed stream: its kind, and an HTTP error's status, so that
    locust's failures table has one row per kind (the record keeps the message)."""
    if record.outcome is not Outcome.ERROR or record.error_kind is None:
        return None
    if record.error_kind is ErrorKind.HTTP_STATUS and record.status is not None:
        return f"{record.error_kind.value} {record.status}"
    return record.error_kind.value


def _target(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class _GeventResponse:
    __slots__ = ("_arrival_ns", "_clock", "_response", "headers", "status", "t_headers_ns")

    def __init__(self, response: Any, t_headers_ns: int, clock: Clock) -> None:
        self._response = response
        self._clock = clock
        self._arrival_ns = t_headers_ns  # body bytes read with the headers came with them
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.items()}
        self.t_headers_ns = t_headers_ns

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        response = self._response
        buffer = response._body_buffer
        while True:
            if buffer:
                data = bytes(buffer)
                del buffer[:]
                yield self._arrival_ns, data
            if response.message_complete:
                return
            sock = response._sock
            if sock is None:
                raise ReadFailed("the connection closed before the body ended")
            try:
                data = sock.recv(READ_BYTES)
                self._arrival_ns = self._clock()
                response.feed(data)  # an empty read tells the parser the connection ended
            except TimeoutError as exc:
                raise ReadTimedOut("no bytes arrived within the idle timeout") from exc
            except (OSError, HTTPParseError) as exc:
                raise ReadFailed(f"the connection broke: {exc!r}") from exc
            if not data and not response.message_complete:
                raise ReadFailed("the connection closed before the body ended")


class _GeventStreams:
    """geventhttpclient, one keep-alive connection per user (what FastHttpUser uses)."""

    def __init__(self, url: str, timeouts: Timeouts, clock: Clock) -> None:
        self._clock = clock
        self._client = HTTPClient.from_url(
            url,
            concurrency=1,
            connection_timeout=timeouts.connect_s,
            network_timeout=timeouts.idle_s,
            headers={"user-agent": "sse-harness-locust"},
        )

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def open(self, request: HttpRequest) -> Iterator[_GeventResponse]:
        try:
            response = self._client.request(
                request.method,
                _target(request.url),
                body=request.body or b"",
                headers=dict(request.headers),
            )
        except TimeoutError as exc:
            raise ReadTimedOut("no response headers within the idle timeout") from exc
        except (OSError, HTTPParseError) as exc:
            raise ConnectFailed(f"cannot reach {request.url}: {exc!r}") from exc
        try:
            yield _GeventResponse(response, self._clock(), self._clock)
        finally:
            # back to the pool when read to its end, else closed so the server sees it
            response.release()


class _RequestsResponse:
    __slots__ = ("_clock", "_response", "headers", "status", "t_headers_ns")

    def __init__(self, response: requests.Response, t_headers_ns: int, clock: Clock) -> None:
        self._response = response
        self._clock = clock
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.t_headers_ns = t_headers_ns

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        raw = self._response.raw
        while True:
            try:
                data = raw.read1(READ_BYTES)
            except (TimeoutError, urllib3.exceptions.ReadTimeoutError) as exc:
                raise ReadTimedOut("no bytes arrived within the idle timeout") from exc
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                raise ReadFailed(f"the connection broke: {exc!r}") from exc
            if not data:
                return
            yield self._clock(), data


class _RequestsStreams:
    """requests, one keep-alive connection per user (what HttpUser uses)."""

    def __init__(self, url: str, timeouts: Timeouts, clock: Clock) -> None:
        self._clock = clock
        self._timeout = (timeouts.connect_s, timeouts.idle_s)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    @contextmanager
    def open(self, request: HttpRequest) -> Iterator[_RequestsResponse]:
        try:
            response = self._session.request(
                request.method,
                request.url,
                data=request.body,
                headers=dict(request.headers),
                stream=True,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.ConnectionError as exc:
            raise ConnectFailed(f"cannot reach {request.url}: {exc!r}") from exc
        except requests.Timeout as exc:
            raise ReadTimedOut("no response headers within the idle timeout") from exc
        except requests.RequestException as exc:
            raise ConnectFailed(f"request to {request.url} failed: {exc!r}") from exc
        try:
            yield _RequestsResponse(response, self._clock(), self._clock)
        finally:
            response.close()  # a body read to its end has gone back to the pool already
