"""The kernel transport: HTTP/1.1 over raw sockets, arrivals stamped by the kernel.

Every other transport stamps a chunk when the event loop gets round to reading it, so
under load its stamps trail the real arrivals by however long the loop was busy. This
one reads with ``recvmsg`` and ``SO_TIMESTAMPNS`` (see ``kernel_clock``): each chunk's
``arrival_ns`` is when the kernel received the segment, mapped onto the monotonic clock.
HTTP is parsed with h11 (chunked, content-length and close-delimited bodies; keep-alive
connections are reused), TLS runs through ``ssl.MemoryBIO`` so the stamp is still that
of the encrypted segment.

Where the kernel does not stamp (not Linux, the option refused), the transport says so
once, stamps in user space right after ``recvmsg`` returns, and its responses say
``clock_source == "user"``. A response also offers ``user_ns``: the user-space stamp of
the chunk it yielded last, so a record can keep both stamps of its first token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import socket
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import h11

from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut
from harness.transports.base import ChunkSink, Clock, HttpRequest, StampedSink, Timeouts
from harness.transports.chunked import ChunkedBody
from harness.transports.encoding import ACCEPT_ENCODING, content_coding, decoded
from harness.transports.kernel_clock import CatchUpPoller, ClockMap, probe_kernel_stamps
from harness.transports.kernel_socket import Read, StampedSocket, open_socket
from harness.transports.plain_head import (
    LAST_CHUNK,
    Asked,
    asked,
    plain_head,
    replayed,
    request_bytes,
    sent,
)
from harness.transports.redirects import following

__all__ = ["KernelTransport", "exchange_on"]

log = logging.getLogger(__name__)

#: How often the realtime-to-monotonic offset is measured again.
RECHECK_S = 5.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_Key = tuple[str, str, int]
#: The blank line that ends a head, as h11 finds it.
_HEAD_END = re.compile(rb"\n\r?\n")
#: A head still without its end past this goes to h11 whole, which refuses it.
MAX_HEAD_BYTES = 64 * 1024


class _Headers(dict[str, str]):
    """Response headers: names lower-cased, looked up without regard to case."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class _Connection:
    """One HTTP/1.1 connection: a stamped socket and the state of its current exchange,
    h11's, or, for an exchange read without h11 (see ``plain_head``), none but whether
    the connection stays open after it."""

    __slots__ = ("h11", "keep_alive", "received", "sock")

    def __init__(self, sock: StampedSocket) -> None:
        self.sock = sock
        self.h11: h11.Connection | None = None  # made when the exchange needs it
        self.keep_alive = True  # read without h11: neither side asked to close
        self.received = False  # any byte of the current response

    @property
    def reusable(self) -> bool:
        """Fit for the next exchange, its response read to the end."""
        h = self.h11
        if h is None:
            return self.keep_alive and self.sock.usable
        done = h.our_state is h11.DONE and h.their_state is h11.DONE
        return done and not h.trailing_data[0] and self.sock.usable

    def next_cycle(self) -> None:
        """The exchange is over and the connection is kept: the next starts afresh."""
        self.h11 = None
        self.keep_alive = True
        self.received = False


class _Response:
    """A response whose body is read as it arrives, chunk by chunk, stamped.

    The head is read by ``plain_head`` or by h11, and nothing after it. A chunked body
    (the common case, not compressed) has its framing taken off by ``ChunkedBody``, one
    call per read; at the last chunk without trailers the body ends there; at trailers,
    or at framing ``ChunkedBody`` does not read, the rest goes to h11 (the exchange
    replayed into it if it read no head), which stands at a chunk boundary, reads the
    trailers (or names what is wrong) and ends the body. Any other body is read by h11
    from its first byte.
    """

    __slots__ = (
        "_body",
        "_coding",
        "_conn",
        "_replay",
        "_rest",
        "arrival_ns",
        "done",
        "headers",
        "status",
        "t_headers_ns",
        "user_ns",
    )

    def __init__(
        self,
        conn: _Connection,
        status: int,
        headers: Mapping[str, str],
        *,
        chunked: bool = False,
        rest: bytes = b"",
        replay: tuple[h11.Request, bytes | None, bytes] | None = None,
        arrival_ns: int = 0,
        user_ns: int = 0,
    ) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self.arrival_ns = self.t_headers_ns = arrival_ns  # the head's, then the last read's
        self.user_ns = user_ns  # the user-space stamp of the last read
        self.done = False
        self._coding = content_coding(headers.get("content-encoding"))  # lines joined
        self._body = ChunkedBody() if chunked else None  # None once h11 reads the body
        self._rest = rest  # body bytes that came with the head
        #: a head read without h11: the request, its body and the head, for ``replayed``
        self._replay = replay

    @property
    def clock_source(self) -> str:
        """``kernel`` while every read carried the kernel's stamp, else ``user``."""
        return "kernel" if self._conn.sock.kernel_stamped else "user"

    def chunks(self) -> AsyncGenerator[tuple[int, bytes], None]:
        """The body's chunks with their arrival times, until the body ends; a gzip or
        deflate body decoded read by read (see ``harness.transports.encoding``).

        Raises:
            ReadTimedOut: no bytes within the idle timeout.
            ReadFailed: the connection broke, the body broke HTTP/1.1's framing, or its
                content coding is not decoded here or is broken.
        """
        if self._coding is None:
            return self._raw_chunks()
        return decoded(self._raw_chunks(), self._coding)

    async def deliver(self, sink: ChunkSink | StampedSink, *, user_stamps: bool = False) -> None:
        """Hand every chunk of the body to ``sink`` until it ends or ``sink`` returns True;
        with ``user_stamps``, the sink also takes the user-space stamp of the read
        (``sink(arrival_ns, data, user_ns)``).

        A plain chunked body over TCP is read in the socket's read callback, the sink
        called from there; the rest (the last chunk, trailers), or any other body, is
        read through ``chunks()``.

        Raises:
            ReadTimedOut: no bytes within the idle timeout.
            ReadFailed: the connection broke, or the body broke HTTP/1.1's framing.
        """
        take: Any = sink
        stamped: StampedSink = take if user_stamps else lambda at, data, _: take(at, data)
        readable_here = self._body is not None and self._coding is None
        readable_here = readable_here and not self._conn.sock.tls
        if readable_here and await _Delivery(self, stamped).run():
            return  # the sink stopped the read
        async with contextlib.aclosing(self.chunks()) as chunks:
            async for arrival_ns, data in chunks:
                if stamped(arrival_ns, data, self.user_ns):
                    return

    def _take_rest(self) -> bytes:
        rest, self._rest = self._rest, b""
        return rest

    def _hand_to_h11(self, rest: bytes) -> None:
        """h11 reads the body from here on (``rest`` starts at a chunk boundary); where
        the head was read without h11, the last chunk alone ends the body here, and
        anything else has the exchange replayed into h11 first."""
        self._body = None
        conn = self._conn
        if conn.h11 is None:
            if rest == LAST_CHUNK:
                self.done = True
                return
            assert self._replay is not None, "a head read without h11 keeps its replay"
            conn.h11 = replayed(*self._replay)
        if rest:
            conn.h11.receive_data(rest)

    async def _raw_chunks(self) -> AsyncGenerator[tuple[int, bytes], None]:
        sock = self._conn.sock
        read = sock.read if sock.tls else sock.read_raw
        data = self._take_rest()
        ended = False
        try:
            while self._body is not None:  # a chunked body: ChunkedBody, one call a read
                if not data:
                    self.arrival_ns, self.user_ns, data = await read()
                    if not data:  # the end, mid-body: h11 names what it cut short
                        self._hand_to_h11(b"")
                        ended = True
                        break
                piece, rest = self._body.feed(data)
                data = b""
                if piece:
                    yield self.arrival_ns, piece
                if rest is not None:  # the last chunk, or framing ChunkedBody does not read
                    self._hand_to_h11(rest)
        except OSError as exc:
            raise ReadFailed(f"the connection broke: {exc!r}") from exc
        if self.done:  # the last chunk ended it
            return
        h = self._conn.h11
        assert h is not None, "a body not read by ChunkedBody is h11's"
        next_event, receive_data = h.next_event, h.receive_data
        need_data, data_event, end_event = h11.NEED_DATA, h11.Data, h11.EndOfMessage
        pieces: list[bytes | bytearray] = []
        try:
            if data or ended:  # what came with the head, or the end read above
                receive_data(data)
            while True:
                event = next_event()
                if event is need_data:
                    if pieces:
                        yield (
                            self.arrival_ns,
                            (bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)),
                        )
                        pieces.clear()
                    self.arrival_ns, self.user_ns, data = await read()
                    receive_data(data)
                elif type(event) is data_event:
                    pieces.append(event.data)
                elif type(event) is end_event:
                    self.done = True
                    if pieces:
                        yield self.arrival_ns, b"".join(pieces)
                    return
        except h11.ProtocolError as exc:
            if pieces:  # what the read held before the break is delivered first
                yield self.arrival_ns, b"".join(pieces)
            raise ReadFailed(f"the body broke off or broke HTTP/1.1: {exc}") from exc
        except OSError as exc:
            raise ReadFailed(f"the connection broke: {exc!r}") from exc


class _Delivery:
    """One chunked body read inside the socket's read callback: each read's framing taken
    off by ``ChunkedBody`` and its data handed to the sink there, with no future or task
    switch per read. The idle timeout is one timer per quiet period, re-armed lazily from
    the last read."""

    __slots__ = (  # noqa: RUF023  (each read's fields first, side by side)
        "_body",
        "_last_ns",
        "_sink",
        "_done",
        "_response",
        "_sock",
        "_timer",
    )

    def __init__(self, response: _Response, sink: StampedSink) -> None:
        assert response._body is not None
        self._response = response
        self._body = response._body
        self._sink = sink
        self._sock = response._conn.sock
        self._last_ns = response.user_ns  # the user-space stamp of the last read
        self._done: asyncio.Future[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def run(self) -> bool:
        """Read until the sink stops (True) or the body is h11's to finish (False).

        Raises:
            ReadTimedOut: no bytes within the idle timeout.
            BaseException: what the sink raised.
        """
        loop = asyncio.get_running_loop()
        self._done = done = loop.create_future()
        response, sock = self._response, self._sock
        rest = response._take_rest()  # the idle timeout counts from the last read
        if rest:  # what came with the head, with its stamps
            self._on_read(response.arrival_ns, response.user_ns, rest)
        if not done.done():
            sock.attach(self._on_read)
        if not done.done():
            self._timer = loop.call_later(sock.idle_s, self._on_idle)
        try:
            return await done
        finally:
            self._finish(False)  # cancelled: the body stays unfinished, the socket closes

    def _on_read(self, arrival_ns: int, user_ns: int, data: bytes) -> None:
        response = self._response
        if not data:  # the end or an error: h11 reads it from the socket and names it
            response._hand_to_h11(b"")
            self._finish(False)
            return
        self._last_ns = user_ns  # the idle timeout counts from the last read
        piece, rest = self._body.feed(data)
        if piece:
            try:
                stop = self._sink(arrival_ns, piece, user_ns)
            except BaseException as exc:  # the sink's failure goes to the waiting task
                self._finish(exc)
                return
            if stop:
                self._finish(True)
                return
        if rest is not None:  # the last chunk, or framing ChunkedBody does not read
            response.arrival_ns = arrival_ns  # the rest's, as h11 reads it
            response._hand_to_h11(rest)
            self._finish(False)

    def _finish(self, outcome: bool | BaseException) -> None:
        self._response.user_ns = self._last_ns
        self._sock.detach()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        done = self._done
        if done is not None and not done.done():
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    def _on_idle(self) -> None:
        sock = self._sock
        quiet_s = (sock.clock() - self._last_ns) / 1e9  # since the last read
        if quiet_s >= sock.idle_s - 0.001:
            self._timer = None
            self._finish(ReadTimedOut("no bytes arrived within the idle timeout"))
        else:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(sock.idle_s - quiet_s, self._on_idle)


class _Stale(Exception):
    """A reused connection turned out closed before it carried the request."""


class KernelTransport:
    """HTTP/1.1 over raw sockets, with kernel receive timestamps where the kernel has them.

    Args:
        timeouts: connect (TCP and TLS) and idle (per read, headers included) timeouts
            are applied here.
        connections: how many requests may be in flight, each on its own connection;
            size it to the load's concurrency.
        kernel_stamps: ask the kernel for receive stamps; False stamps in user space.
        ssl_context: for ``https`` URLs; default: the system's trusted certificates.
        follow_redirects: follow redirects within the request's origin (see
            ``harness.transports.redirects``); by default a 3xx is the response.
        clock: the arrival clock.
        realtime: the clock of the kernel's stamps.
    """

    name = "kernel"

    def __init__(
        self,
        *,
        timeouts: Timeouts,
        connections: int = 100,
        kernel_stamps: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        follow_redirects: bool = False,
        clock: Clock = time.perf_counter_ns,
        realtime: Clock = time.time_ns,
    ) -> None:
        self._timeouts = timeouts
        self._connections = connections
        self._follow_redirects = follow_redirects
        self._want_kernel = kernel_stamps
        self._ssl_context = ssl_context
        self._clock = clock
        self._realtime = realtime
        self.clock_map: ClockMap | None = None
        self._anchor: socket.socket | None = None  # the probe's: keeps the kernel stamping
        self._recheck: asyncio.TimerHandle | None = None
        self._idle: dict[_Key, list[_Connection]] = {}
        self._limit: asyncio.Semaphore | None = None
        self._poller: CatchUpPoller | None = None
        self._warned = False

    @property
    def clock_source(self) -> str:
        """``kernel`` where the kernel stamps arrivals, else ``user``."""
        return "kernel" if self.clock_map is not None else "user"

    async def __aenter__(self) -> KernelTransport:
        self._limit = asyncio.Semaphore(self._connections)
        self._poller = CatchUpPoller(self._clock)
        if self._want_kernel:
            self._anchor = await probe_kernel_stamps()
            if self._anchor is None:
                self._fall_back("the kernel gives no receive timestamps here")
            else:
                self.clock_map = ClockMap(self._clock, self._realtime)
                self._schedule_recheck()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        for idle in self._idle.values():
            for conn in idle:
                conn.sock.close()
        self._idle.clear()
        if self._poller is not None:
            self._poller.close()
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None

    def _fall_back(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("kernel transport: %s; arrivals are stamped in user space", reason)

    def _unstamped(self) -> None:
        self._fall_back("reads arrive without the kernel's stamp")

    def _schedule_recheck(self) -> None:
        loop = asyncio.get_running_loop()
        self._recheck = loop.call_later(RECHECK_S, self._on_recheck)

    def _on_recheck(self) -> None:
        if self.clock_map is not None:
            self.clock_map.recheck()
            self._schedule_recheck()

    # -- connections -------------------------------------------------------------------

    async def _connect(self, key: _Key) -> _Connection:
        scheme, host, port = key
        try:
            async with asyncio.timeout(self._timeouts.connect_s):
                raw, stamped = await open_socket(host, port, stamps=self.clock_map is not None)
                if self.clock_map is not None and not stamped:
                    self._fall_back("the socket refused SO_TIMESTAMPNS")
                sock = StampedSocket(
                    raw,
                    clock=self._clock,
                    clock_map=self.clock_map if stamped else None,
                    idle_s=self._timeouts.idle_s,
                    poller=self._poller,
                    on_unstamped=self._unstamped,
                )
                if scheme == "https":
                    try:
                        await sock.start_tls(self._tls_context(), host)
                    except BaseException:
                        sock.close()
                        raise
        except TimeoutError as exc:
            raise ConnectFailed(f"cannot reach {host}:{port}: connect timed out") from exc
        except ReadTimedOut as exc:
            raise ConnectFailed(f"cannot reach {host}:{port}: TLS handshake timed out") from exc
        except OSError as exc:  # ssl.SSLError is one
            raise ConnectFailed(f"cannot reach {host}:{port}: {exc}") from exc
        return _Connection(sock)

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context

    def _take_idle(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.sock.usable:
                return conn
            conn.sock.close()
        return None

    def _release(self, key: _Key, conn: _Connection, response: _Response) -> None:
        if self._poller is not None:  # a request's end: the loop may be busy with tasks
            self._poller.catch_up_if_idle()
        if response.done and conn.reusable:
            conn.next_cycle()
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._connections:
                idle.append(conn)
                return
        conn.sock.close()  # abandoned or broken: the server sees the connection end

    # -- one exchange ----------------------------------------------------------------

    def stream(self, request: HttpRequest) -> AbstractAsyncContextManager[_Response]:
        if self._follow_redirects:
            return following(self._stream_one, request)
        return self._stream_one(request)

    @asynccontextmanager
    async def _stream_one(self, request: HttpRequest) -> AsyncIterator[_Response]:
        assert self._limit is not None, "use the transport as an async context manager"
        prepared = _prepare(request)
        if self._poller is not None:  # a request's start: the loop may be busy with tasks
            self._poller.catch_up_if_idle()
        async with self._limit:
            conn, response = await self._send(prepared, request)
            try:
                yield response
            finally:
                self._release(prepared.key, conn, response)

    async def _send(
        self, prepared: _Prepared, request: HttpRequest
    ) -> tuple[_Connection, _Response]:
        for _ in range(2):  # a stale keep-alive connection is retried once, on a new one
            conn = self._take_idle(prepared.key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(prepared.key)
            try:
                return conn, await _exchange_head(conn, prepared, request, reused)
            except _Stale:
                conn.sock.close()
            except BaseException:
                conn.sock.close()
                raise
        raise ConnectFailed(f"cannot reach {request.url}: the connection closed")


async def _exchange_head(
    conn: _Connection, prepared: _Prepared, request: HttpRequest, reused: bool
) -> _Response:
    """Send ``request`` on ``conn`` and read the response's head: without h11 where both
    are the plain kind (see ``plain_head``), else with h11, which is given the head and
    not a byte more.

    Raises:
        _Stale: ``reused`` and the connection closed before any byte of the answer.
        ConnectFailed: the request could not be sent or the head could not be read.
    """
    head = prepared.head
    if prepared.plain is None:  # h11 sends it
        conn.h11 = h11.Connection(h11.CLIENT)
        data = _sent_by_h11(conn.h11, head, request)
    else:
        data = prepared.plain + request.body if request.body else prepared.plain
    buffered = b""  # received, not given to h11
    ended = False  # the stream ended after what is buffered
    arrival_ns = user_ns = 0
    try:
        await conn.sock.send(data)
        if conn.h11 is None:  # the head, read whole, then read without h11 if it can be
            while (found := _HEAD_END.search(buffered)) is None and not ended:
                if len(buffered) > MAX_HEAD_BYTES:
                    break
                arrival_ns, user_ns, received = await _read_head(conn, request, reused)
                buffered += received
                ended = not received
            if found is not None:
                raw = buffered[: found.end()]
                plain = plain_head(raw, prepared.asked)
                if plain is not None:
                    conn.keep_alive = plain.keep_alive
                    return _Response(
                        conn,
                        plain.status,
                        _headers(plain.headers),
                        chunked=True,
                        rest=buffered[found.end() :],
                        replay=(head, request.body, raw),
                        arrival_ns=arrival_ns,
                        user_ns=user_ns,
                    )
            conn.h11 = h11.Connection(h11.CLIENT)
            _sent_by_h11(conn.h11, head, request)  # what went out, as h11 sends it
        h = conn.h11
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                found = _HEAD_END.search(buffered)
                if found is not None:
                    h.receive_data(buffered[: found.end()])
                    buffered = buffered[found.end() :]
                elif len(buffered) > MAX_HEAD_BYTES:  # h11 refuses it
                    h.receive_data(buffered)
                    buffered = b""
                elif ended:  # the end: h11 reads what came before it, then the end
                    if buffered:
                        h.receive_data(buffered)
                    h.receive_data(b"")
                    buffered = b""
                    ended = False  # (were more asked for, the read names the closed socket)
                else:
                    arrival_ns, user_ns, received = await _read_head(conn, request, reused)
                    buffered += received
                    ended = not received
            elif type(event) is h11.Response:
                return _Response(
                    conn,
                    event.status_code,
                    _headers(event.headers),
                    chunked=_chunked(h, event, head.method),
                    rest=buffered,
                    arrival_ns=arrival_ns,
                    user_ns=user_ns,
                )
            elif type(event) is h11.ConnectionClosed:
                raise ConnectFailed(
                    f"{request.url}: the server closed the connection without answering"
                )
            # an informational (1xx) response: the real one follows
    except OSError as exc:
        if reused and not conn.received:
            raise _Stale from exc
        raise ConnectFailed(f"request to {request.url} failed: {exc!r}") from exc
    except h11.ProtocolError as exc:
        raise ConnectFailed(f"{request.url} answered with broken HTTP/1.1: {exc}") from exc


def _sent_by_h11(h: h11.Connection, head: h11.Request, request: HttpRequest) -> bytes:
    """The bytes of ``request`` as ``h`` sends them.

    Raises:
        ConnectFailed: h11 refuses to send it.
    """
    try:
        return sent(h, head, request.body)
    except h11.LocalProtocolError as exc:
        raise ConnectFailed(f"cannot send the request to {request.url}: {exc}") from exc


async def _read_head(conn: _Connection, request: HttpRequest, reused: bool) -> Read:
    """The next read of a response head; ``bytes`` empty at the end of the stream.

    Raises:
        _Stale: the end came first on a ``reused`` connection.
        ConnectFailed: the end came first on a new connection.
        OSError: the connection broke.
    """
    read = await conn.sock.read()
    if not read[2] and not conn.received:
        if reused:
            raise _Stale
        raise ConnectFailed(f"{request.url}: the server closed the connection without answering")
    conn.received = True
    return read


async def exchange_on(sock: StampedSocket, request: HttpRequest) -> _Response:
    """Send ``request`` on ``sock``, a new connection, and read the response's head: one
    exchange outside a transport's pool, as ``sse-harness bench client`` drives the path.

    Raises:
        ConnectFailed: the request could not be sent or the head could not be read.
    """
    return await _exchange_head(_Connection(sock), _prepare(request), request, reused=False)


class _Prepared(NamedTuple):
    """What a request's exchange needs of it before it starts."""

    key: _Key  # the pool's
    head: h11.Request
    plain: bytes | None  # the head's bytes, when they go out without h11 (``request_bytes``)
    asked: Asked  # what reading the response's head needs of it


def _prepare(request: HttpRequest) -> _Prepared:
    """The pool key, the h11 request head, its plain bytes and what reading the answer's
    head needs of ``request``.

    Raises:
        ConnectFailed: the URL is not an http(s) URL with a host.
    """
    body_bytes = len(request.body) if request.body else 0
    return _head(request.method, request.url, tuple(request.headers.items()), body_bytes)


@functools.lru_cache(maxsize=256)
def _head(
    method: str, url_text: str, given: tuple[tuple[str, str], ...], body_bytes: int
) -> _Prepared:
    """``_prepare``'s answer, kept for the next request alike: a load sends the same
    head over and over, and h11 validates every header of every head it builds. (h11
    events are immutable: one head may go out on any number of connections.)"""
    url = urlsplit(url_text)
    scheme = url.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not url.hostname:
        raise ConnectFailed(f"cannot reach {url_text}: not an http or https URL")
    try:
        port = url.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ConnectFailed(f"cannot reach {url_text}: {exc}") from exc
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    names = {name.lower() for name, _ in given}
    headers = list(given)
    if "host" not in names:
        headers.insert(0, ("Host", url.netloc.rpartition("@")[2]))
    if body_bytes and "content-length" not in names:
        headers.append(("Content-Length", str(body_bytes)))
    if "accept-encoding" not in names:
        headers.append(("Accept-Encoding", ACCEPT_ENCODING))
    try:
        head = h11.Request(method=method, target=target, headers=headers)
    except h11.LocalProtocolError as exc:
        raise ConnectFailed(f"cannot send the request to {url_text}: {exc}") from exc
    plain = request_bytes(head, body_bytes)
    return _Prepared((scheme, url.hostname, port), head, plain, asked(head))


def _chunked(h: h11.Connection, response: h11.Response, method: bytes) -> bool:
    """True when h11 would read ``response``'s body as chunked (RFC 9112, section 6.3)."""
    status = response.status_code
    if h.their_state is not h11.SEND_BODY or status in (204, 304) or method == b"HEAD":
        return False
    if method == b"CONNECT" and status < 300:
        return False
    return any(name == b"transfer-encoding" for name, _ in response.headers)


def _headers(raw: Any) -> _Headers:
    """The headers of a response head (names lower-cased), a name sent more than once
    with its values joined by commas, in order."""
    pairs = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
    headers = _Headers(pairs)
    if len(headers) < len(pairs):  # a name more than once
        joined: dict[str, str] = {}
        for key, text in pairs:
            joined[key] = f"{joined[key]}, {text}" if key in joined else text
        headers = _Headers(joined)
    return headers
