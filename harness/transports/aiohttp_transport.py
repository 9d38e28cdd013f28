"""The aiohttp transport: the lean one, for high concurrency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp

from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut
from harness.transports.base import Clock, HttpRequest, Timeouts

__all__ = ["AiohttpTransport"]


class _Response:
    __slots__ = ("_clock", "_response", "headers", "status", "t_headers_ns")

    def __init__(self, response: aiohttp.ClientResponse, t_headers_ns: int, clock: Clock):
        self._response = response
        self._clock = clock
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.t_headers_ns = t_headers_ns

    async def chunks(self) -> AsyncIterator[tuple[int, bytes]]:
        content = self._response.content
        clock = self._clock
        try:
            while data := await content.readany():
                yield clock(), data
        except TimeoutError as exc:
            raise ReadTimedOut("no bytes arrived within the idle timeout") from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
            raise ReadFailed(f"the connection broke: {exc!r}") from exc


class AiohttpTransport:
    """HTTP/1.1 over aiohttp, one session and connection pool for the whole run.

    Args:
        timeouts: connect and idle (per read) timeouts are applied here.
        connections: the pool's size; size it to the load's concurrency.
        clock: the arrival clock.
    """

    name = "aiohttp"

    def __init__(
        self, *, timeouts: Timeouts, connections: int = 100, clock: Clock = time.perf_counter_ns
    ) -> None:
        self._timeouts = timeouts
        self._connections = connections
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AiohttpTransport:
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeouts.connect_s, sock_read=self._timeouts.idle_s
        )
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def stream(self, request: HttpRequest) -> AsyncIterator[_Response]:
        assert self._session is not None, "use the transport as an async context manager"
        try:
            response = await self._session.request(
                request.method, request.url, headers=dict(request.headers), data=request.body
            )
        except TimeoutError as exc:
            raise ReadTimedOut("no response headers within the idle timeout") from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ConnectFailed(f"cannot reach {request.url}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise ConnectFailed(f"request to {request.url} failed: {exc}") from exc
        t_headers_ns = self._clock()
        try:
            yield _Response(response, t_headers_ns, self._clock)
        finally:
            if response.content.at_eof():
                response.release()  # read to its end: the connection goes back to the pool
            else:
                response.close()  # abandoned or failed: close it, so the server sees it
