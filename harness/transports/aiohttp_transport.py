"""The aiohttp transport: the lean one, for high concurrency.

aiohttp connects, writes the request, parses the response's head and keeps connections
alive. The body of a chunked 2xx response is read beside it by a ``ResponseTap`` (see
``harness.transports.aiohttp_tap``), which every connection gets from the connector
before its request is sent: each read is stamped as the event loop hands it over and
its data goes to the exchange's sink from the loop's read callback, with no task switch
per event. Any other body is read through aiohttp's ``content.readany()``, and decoded
here when compressed (aiohttp's own decompression is off: see
``harness.transports.encoding``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp

from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut, TransportError
from harness.transports.aiohttp_tap import ResponseTap
from harness.transports.base import ChunkSink, Clock, HttpRequest, Timeouts
from harness.transports.encoding import ACCEPT_ENCODING, content_coding, decoded
from harness.transports.redirects import following

__all__ = ["AiohttpTransport"]


def _read_error(exc: BaseException) -> TransportError:
    """The harness's error for what aiohttp raised while a body was read."""
    if isinstance(exc, TimeoutError):
        return ReadTimedOut("no bytes arrived within the idle timeout")
    return ReadFailed(f"the connection broke: {exc!r}")


class _TapConnector(aiohttp.TCPConnector):
    """aiohttp's connector, which puts a ``ResponseTap`` on every connection it hands out
    (but for HEAD requests, whose responses have no body)."""

    def __init__(self, *, clock: Clock, **options: Any) -> None:
        super().__init__(**options)
        self._clock = clock

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        connection = await super().connect(req, traces, timeout)
        transport = connection.transport
        if req.method != "HEAD" and transport is not None and connection.protocol is not None:
            ResponseTap(connection.protocol, transport, self._clock)
        return connection


class _Response:
    __slots__ = (
        "_clock",
        "_coding",
        "_idle_s",
        "_response",
        "_tap",
        "headers",
        "status",
        "t_headers_ns",
    )

    def __init__(
        self, response: aiohttp.ClientResponse, t_headers_ns: int, clock: Clock, idle_s: float
    ):
        self._response = response
        self._clock = clock
        self._idle_s = idle_s
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        connection = response.connection
        transport = connection.transport if connection is not None else None
        protocol = transport.get_protocol() if transport is not None else None
        self._tap = protocol if isinstance(protocol, ResponseTap) else None
        # the tap stamped the head on arrival, before aiohttp and the task got to it
        self.t_headers_ns = self._tap.head_ns if self._tap and self._tap.head_ns else t_headers_ns
        # the tap holds no compressed body: chunks() reads and decodes it
        self._coding = content_coding(", ".join(response.headers.getall("content-encoding", ())))

    def chunks(self) -> AsyncGenerator[tuple[int, bytes], None]:
        if self._coding is None:
            return self._raw_chunks()
        return decoded(self._raw_chunks(), self._coding)

    async def _raw_chunks(self) -> AsyncGenerator[tuple[int, bytes], None]:
        if self._tap is not None and not self._tap.step_aside():  # aiohttp reads from here
            return  # deliver() left the body mid-way: there is nothing more to read
        content = self._response.content
        clock = self._clock
        try:
            while data := await content.readany():
                yield clock(), data
        except (
            TimeoutError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientConnectionError,
            OSError,
        ) as exc:
            raise _read_error(exc) from exc

    async def deliver(self, sink: ChunkSink) -> None:
        """Hand every chunk of the body to ``sink`` until it ends or ``sink`` returns True.

        A body the tap holds is read from the connection's read callback; what the tap
        hands to aiohttp at the end (the last chunk, trailers), or any other body, is
        read through ``chunks()``.

        Raises:
            ReadTimedOut: no bytes within the idle timeout.
            ReadFailed: the connection broke.
        """
        tap = self._tap
        if tap is not None and tap.holds_body:
            if not await tap.deliver(sink, self._idle_s):
                return  # the sink stopped the read
            if self._refused():
                raise ReadFailed("the body's chunked framing is broken")
        async for arrival_ns, data in self.chunks():
            if sink(arrival_ns, data):
                return

    def _refused(self) -> bool:
        """True when aiohttp's parser refused what the tap handed it, and so closed the
        connection with the body unfinished (it does not tell the body's reader so)."""
        content = self._response.content
        if content.is_eof() or content.exception() is not None:
            return False
        connection = self._response.connection
        transport = connection.transport if connection is not None else None
        return transport is None or transport.is_closing()


class AiohttpTransport:
    """HTTP/1.1 over aiohttp, one session and connection pool for the whole run.

    Args:
        timeouts: connect and idle (per read) timeouts are applied here.
        connections: the pool's size; size it to the load's concurrency.
        follow_redirects: follow redirects within the request's origin (see
            ``harness.transports.redirects``); by default a 3xx is the response.
        clock: the arrival clock.
    """

    name = "aiohttp"

    def __init__(
        self,
        *,
        timeouts: Timeouts,
        connections: int = 100,
        follow_redirects: bool = False,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        self._timeouts = timeouts
        self._connections = connections
        self._follow_redirects = follow_redirects
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AiohttpTransport:
        connector = _TapConnector(clock=self._clock, limit=self._connections, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeouts.connect_s, sock_read=self._timeouts.idle_s
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers={"Accept-Encoding": ACCEPT_ENCODING},  # unless the request says
            auto_decompress=False,  # chunks() decodes, as every transport does
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stream(self, request: HttpRequest) -> AbstractAsyncContextManager[_Response]:
        if self._follow_redirects:
            return following(self._stream_one, request)
        return self._stream_one(request)

    @asynccontextmanager
    async def _stream_one(self, request: HttpRequest) -> AsyncIterator[_Response]:
        assert self._session is not None, "use the transport as an async context manager"
        try:
            response = await self._session.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=request.body,
                allow_redirects=False,  # following() decides, within the origin only
            )
        except TimeoutError as exc:
            raise ReadTimedOut("no response headers within the idle timeout") from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ConnectFailed(f"cannot reach {request.url}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise ConnectFailed(f"request to {request.url} failed: {exc}") from exc
        t_headers_ns = self._clock()
        try:
            yield _Response(response, t_headers_ns, self._clock, self._timeouts.idle_s)
        finally:
            if response.content.at_eof():
                response.release()  # read to its end: the connection goes back to the pool
            else:
                response.close()  # abandoned or failed: close it, so the server sees it
