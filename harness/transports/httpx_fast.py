"""An httpx transport for HTTP/1.1 on asyncio alone: httpx's API at aiohttp's cost.

httpx's own transport reads each body chunk through httpcore and anyio: a stream read
under a cancel scope, locks, a timeout scope. ``FastH11Transport`` keeps httpx's client
in front (auth, event hooks, timeouts, redirects) and speaks HTTP/1.1 underneath with
one ``asyncio.Protocol`` per connection (``H11Protocol``): h11 parses, no task is made
per chunk, and the task of a request wakes on one future when there is body to take.

* The pool, keyed by (scheme, host, port), opens at most ``max_connections``; requests
  beyond them wait in line. A connection goes back to it only when both sides of h11
  are ``DONE``: a response closed mid-body closes its connection.
* Timeouts come from the request's ``timeout`` extension (connect, read, write, pool)
  and fail as httpx's own exceptions, which httpx's callers already map.
* The response's stream yields the body's bytes as they arrive, as sent: a content
  coding is the caller's to decode. Its ``READS`` extension yields them read by read,
  each with its arrival stamp (what ``check`` judges framing by), and its ``DELIVER``
  extension hands them instead to a sink from the read callback, as the aiohttp
  transport's tap does.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext

import h11
import httpx

from harness.transports.base import ChunkSink, Clock
from harness.transports.httpx_fast_protocol import H11Protocol

__all__ = ["DELIVER", "READS", "FastH11Transport"]

#: The response extension holding ``deliver(sink)``: the body's reads go to ``sink``,
#: ``(arrival_ns, data)``, from the read callback until the body ends or it returns True.
DELIVER = "sse_harness.deliver"
#: The response extension holding ``reads()``: the body's reads as they arrived, each
#: apart, ``(arrival_ns, data)``, stamped in the read callback.
READS = "sse_harness.reads"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_Key = tuple[str, str, int]


class _Stale(Exception):
    """A reused connection turned out closed before it answered the request."""


class _Body(httpx.AsyncByteStream):
    """A response's body as it arrives. Closing it gives the connection back to the pool
    when the exchange is complete, and closes it when not."""

    def __init__(
        self, conn: H11Protocol, read_s: float | None, release: Callable[[H11Protocol], None]
    ) -> None:
        self._conn = conn
        self._read_s = read_s
        self._release = release
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, read_s = self._conn, self._read_s
        while not self._closed:
            if data := conn.take():
                yield data
            elif conn.error is not None:
                raise conn.error
            elif conn.ended:
                await self.aclose()  # the connection goes back at once
            else:
                await conn.wait(read_s)

    async def reads(self) -> AsyncIterator[tuple[int, bytes]]:
        """See ``READS``."""
        conn, read_s = self._conn, self._read_s
        while not self._closed:
            if reads := conn.take_reads():
                for read in reads:
                    yield read
            elif conn.error is not None:
                raise conn.error
            elif conn.ended:
                await self.aclose()
            else:
                await conn.wait(read_s)

    async def deliver(self, sink: ChunkSink) -> None:
        """See ``DELIVER``."""
        await self._conn.deliver(sink, self._read_s)
        if self._conn.ended:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._release(self._conn)


class FastH11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for ``httpx.AsyncClient`` on asyncio's protocols, with its own pool.

    A request's body is read whole before it is sent, so that a request that met a
    keep-alive connection the server had just closed is sent again, once, on a new one.

    Args:
        max_connections: the most connections open at once, over all origins; a request
            beyond them waits for one as long as its ``pool`` timeout allows.
        verify: check servers' certificates (True), do not (False), or the
            ``ssl.SSLContext`` to use; for True and False, the context httpx would make.
        clock: the arrival clock of the ``DELIVER`` sink's stamps.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        verify: ssl.SSLContext | bool = True,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._max = max_connections
        self._verify = verify
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else None
        self._clock = clock
        self._idle: dict[_Key, list[H11Protocol]] = {}
        self._open: set[H11Protocol] = set()
        self._opening = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; its response once the head arrived.

        Raises:
            httpx.PoolTimeout, httpx.ConnectTimeout, httpx.ConnectError,
            httpx.WriteTimeout, httpx.WriteError, httpx.ReadTimeout, httpx.ReadError,
            httpx.RemoteProtocolError, httpx.LocalProtocolError, httpx.UnsupportedProtocol
        """
        key = _key(request.url)
        timeouts = request.extensions.get("timeout", {})
        head = _head(request)
        content = await request.aread()
        for attempt in range(2):  # a stale keep-alive connection: once more, on a new one
            conn, reused = await self._acquire(key, timeouts, reuse=attempt == 0)
            try:
                response = await _exchange(conn, head, content, timeouts, reused)
            except _Stale:
                self._retire(conn)
                continue
            except BaseException:
                self._retire(conn)
                raise
            body = _Body(conn, timeouts.get("read"), self._release)
            return httpx.Response(
                status_code=response.status_code,
                headers=response.headers.raw_items(),
                stream=body,
                extensions={
                    "http_version": b"HTTP/" + response.http_version,
                    "reason_phrase": response.reason,
                    DELIVER: body.deliver,
                    READS: body.reads,
                },
            )
        raise httpx.RemoteProtocolError("the server closed the connection without a response")

    async def aclose(self) -> None:
        """Close every connection, idle or in use; requests waiting for one fail."""
        self._closed = True
        self._idle.clear()
        for conn in list(self._open):
            self._retire(conn)
        while self._waiters:
            self._wake_one()

    # -- the pool --------------------------------------------------------------------

    async def _acquire(
        self, key: _Key, timeouts: dict[str, float | None], *, reuse: bool = True
    ) -> tuple[H11Protocol, bool]:
        """A connection to ``key``'s origin (a new one unless ``reuse``), and whether it
        carried a request before."""
        while True:
            if self._closed:
                raise RuntimeError("the transport is closed")
            idle = self._idle.get(key) if reuse else None
            while idle:
                conn = idle.pop()
                if not conn.lost and not conn.spoiled:
                    return conn, True
                self._retire(conn)
            if len(self._open) + self._opening < self._max:
                return await self._connect(key, timeouts.get("connect")), False
            if not self._evict():
                await self._wait_turn(timeouts.get("pool"))

    async def _connect(self, key: _Key, timeout: float | None) -> H11Protocol:
        scheme, host, port = key
        tls = self._tls() if scheme == "https" else None
        conn = H11Protocol(key, self._clock, self._on_lost)
        loop = asyncio.get_running_loop()
        self._opening += 1
        try:
            async with asyncio.timeout(timeout) if timeout is not None else nullcontext():
                await loop.create_connection(
                    lambda: conn, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except BaseException as exc:
            self._opening -= 1
            self._wake_one()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"cannot reach {host}:{port}: timed out") from exc
            if isinstance(exc, OSError):  # refused, unresolved, TLS refused (ssl.SSLError)
                raise httpx.ConnectError(f"cannot reach {host}:{port}: {exc}") from exc
            raise
        self._opening -= 1
        self._open.add(conn)
        if self._closed:
            self._retire(conn)
            raise RuntimeError("the transport is closed")
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def _wait_turn(self, timeout: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout) if timeout is not None else nullcontext():
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # the turn came too late for this request: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("no connection became free in time") from exc
            raise

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _evict(self) -> bool:
        """Close the longest idle connection to any origin; False when none is idle."""
        for idle in self._idle.values():
            if idle:
                self._retire(idle.pop(0))
                return True
        return False

    def _release(self, conn: H11Protocol) -> None:
        if conn.reusable and not self._closed:
            conn.next_cycle()
            self._idle.setdefault(conn.key, []).append(conn)
            self._wake_one()
        else:
            self._retire(conn)  # left mid-body or broken: the server sees it close

    def _retire(self, conn: H11Protocol) -> None:
        conn.close()
        if conn in self._open:
            self._open.discard(conn)
            self._wake_one()

    def _on_lost(self, conn: H11Protocol) -> None:
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
            self._retire(conn)


async def _exchange(
    conn: H11Protocol,
    head: h11.Request,
    content: bytes,
    timeouts: dict[str, float | None],
    reused: bool,
) -> h11.Response:
    """Send one request on ``conn``; its response's head."""
    h = conn.h11
    conn.method = head.method
    try:
        data = h.send(head) or b""
        if content:
            data += h.send(h11.Data(data=content)) or b""
        data += h.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(f"cannot send the request: {exc}") from exc
    try:
        await conn.send(data, timeouts.get("write"))
    except httpx.WriteError:
        if reused:
            raise _Stale from None
        raise
    while conn.response is None:
        if conn.error is not None:
            if reused and not conn.received:
                raise _Stale
            raise conn.error
        await conn.wait(timeouts.get("read"))
    return conn.response


def _key(url: httpx.URL) -> _Key:
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise httpx.UnsupportedProtocol(f"cannot send to {url}: not an http(s) URL with a host")
    return url.scheme, url.host, url.port or _DEFAULT_PORTS[url.scheme]


def _head(request: httpx.Request) -> h11.Request:
    """``request``'s head for h11: its headers as given, a Host header added if missing.

    Raises:
        httpx.LocalProtocolError: h11 will not send it.
    """
    headers = list(request.headers.raw)
    if not any(name.lower() == b"host" for name, _ in headers):
        headers.insert(0, (b"Host", request.url.netloc))
    try:
        return h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(f"cannot send the request: {exc}") from exc
