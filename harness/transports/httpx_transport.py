"""The httpx transport: ``check``'s default, and ``run``'s with ``--http2`` (HTTP/1.1, or
HTTP/2 with the ``h2`` package).

Over HTTP/1.1 httpx's client sends through ``FastH11Transport`` (see
``harness.transports.httpx_fast``) instead of its own transport, and a body's reads go
to the exchange's sink from the connection's read callback. httpx's own transport reads
every chunk through httpcore and anyio: at 500 streams ``sse-harness calibrate
--baseline`` measured it at 121-137 us of CPU per event (9-10x the baseline client), a
p99 arrival lag of 2-6 s and a first-token lag p99 of 190-300 ms. Through
``FastH11Transport``, in the same runs: 22-23 us (1.6-1.7x), 0.6-2.3 ms and 1.1-2.0 ms,
where aiohttp's transport took 21-23 us, 0.9-2.6 ms and 1.7-2.9 ms (two cores, uvloop).
httpx's client stays in front, so auth, event hooks and timeouts work as ever. HTTP/2
still goes through httpx's own transport, which speaks it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx

from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut
from harness.transports.base import ChunkSink, Clock, HttpRequest, Timeouts
from harness.transports.encoding import ACCEPT_ENCODING, content_coding, decoded
from harness.transports.httpx_fast import DELIVER, READS, FastH11Transport
from harness.transports.redirects import following

__all__ = ["HttpxTransport"]


class _Response:
    __slots__ = ("_clock", "_coding", "_response", "headers", "status", "t_headers_ns")

    def __init__(self, response: httpx.Response, t_headers_ns: int, clock: Clock):
        self._response = response
        self._clock = clock
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.t_headers_ns = t_headers_ns
        self._coding = content_coding(response.headers.get("content-encoding"))  # lines joined

    def chunks(self) -> AsyncGenerator[tuple[int, bytes], None]:
        if self._coding is None:
            return self._raw_chunks()
        return decoded(self._raw_chunks(), self._coding)

    async def _raw_chunks(self) -> AsyncGenerator[tuple[int, bytes], None]:
        """The body's reads as sent (a compressed body is decoded by chunks()): through
        ``FastH11Transport`` each read apart, stamped on arrival; else httpx's chunks,
        stamped as they are taken."""
        reads = self._response.extensions.get(READS)
        try:
            if reads is not None:
                async with contextlib.aclosing(reads()) as arrived:
                    async for read in arrived:
                        yield read
                return
            clock = self._clock
            async for data in self._response.aiter_raw():
                yield clock(), data
        except httpx.TimeoutException as exc:
            raise ReadTimedOut("no bytes arrived within the idle timeout") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise ReadFailed(f"the connection broke: {exc!r}") from exc

    async def deliver(self, sink: ChunkSink) -> None:
        """Hand every chunk of the body to ``sink`` until it ends or ``sink`` returns True.

        A body ``FastH11Transport`` reads, and not compressed, goes to ``sink`` from the
        connection's read callback, each read stamped on arrival; any other is read
        through ``chunks()``.

        Raises:
            ReadTimedOut: no bytes within the idle timeout.
            ReadFailed: the connection broke.
        """
        fast = self._response.extensions.get(DELIVER)
        if fast is None or self._coding is not None:
            async with contextlib.aclosing(self.chunks()) as chunks:
                async for arrival_ns, data in chunks:
                    if sink(arrival_ns, data):
                        return
            return
        try:
            await fast(sink)
        except httpx.TimeoutException as exc:
            raise ReadTimedOut("no bytes arrived within the idle timeout") from exc
        except httpx.TransportError as exc:
            raise ReadFailed(f"the connection broke: {exc!r}") from exc


class HttpxTransport:
    """httpx's async client, one connection pool for the whole run.

    Args:
        timeouts: connect and idle (per read) timeouts are applied here.
        connections: the pool's size; size it to the load's concurrency.
        http2: speak HTTP/2 where the server offers it (needs the ``h2`` package),
            through httpx's own transport.
        httpcore: HTTP/1.1 through httpx's own transport too: slower, but a chunked body
            comes one HTTP chunk at a time, as the SDKs built on httpx read it (what
            ``check`` judges framing by).
        follow_redirects: follow redirects within the request's origin (see
            ``harness.transports.redirects``); by default a 3xx is the response.
        clock: the arrival clock.
    """

    name = "httpx"

    def __init__(
        self,
        *,
        timeouts: Timeouts,
        connections: int = 100,
        http2: bool = False,
        follow_redirects: bool = False,
        httpcore: bool = False,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        self._timeouts = timeouts
        self._connections = connections
        self._http2 = http2
        self._httpcore = httpcore
        self._follow_redirects = follow_redirects
        self._clock = clock
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> HttpxTransport:
        timeout = httpx.Timeout(
            connect=self._timeouts.connect_s,
            read=self._timeouts.idle_s,
            write=self._timeouts.idle_s,
            pool=None,
        )
        limits = httpx.Limits(
            max_connections=self._connections, max_keepalive_connections=self._connections
        )
        fast = None  # httpx's own transport (httpcore), with these limits
        if not (self._http2 or self._httpcore):
            fast = FastH11Transport(max_connections=self._connections, clock=self._clock)
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            http2=self._http2,
            follow_redirects=False,
            headers={"Accept-Encoding": ACCEPT_ENCODING},  # unless the request says
            transport=fast,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def stream(self, request: HttpRequest) -> AbstractAsyncContextManager[_Response]:
        if self._follow_redirects:
            return following(self._stream_one, request)
        return self._stream_one(request)

    @asynccontextmanager
    async def _stream_one(self, request: HttpRequest) -> AsyncIterator[_Response]:
        assert self._client is not None, "use the transport as an async context manager"
        built = self._client.build_request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
        try:
            response = await self._client.send(built, stream=True)
        except httpx.ConnectTimeout as exc:
            raise ConnectFailed(f"cannot reach {request.url}: connect timed out") from exc
        except httpx.TimeoutException as exc:
            raise ReadTimedOut("no response headers within the idle timeout") from exc
        except httpx.TransportError as exc:
            raise ConnectFailed(f"cannot reach {request.url}: {exc!r}") from exc
        t_headers_ns = self._clock()
        try:
            yield _Response(response, t_headers_ns, self._clock)
        finally:
            await response.aclose()
