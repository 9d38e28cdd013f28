"""One HTTP/1.1 client connection as an ``asyncio.Protocol``: the connection of
``FastH11Transport`` (see ``harness.transports.httpx_fast``).

Everything happens in the event loop's callbacks; the task of a request only waits on
the one future the protocol sets when it has news, and takes what was read.

* h11 is fed a response's head exactly, and nothing after it: it reads the status and
  headers and then stands at the start of the body.
* A chunked body is read by ``ChunkedBody``; at the last chunk, or at framing it does
  not read, the rest goes to h11 from that chunk boundary, and h11 reads the trailers
  (or names the fault) and ends the body. Other bodies (content-length,
  close-delimited) are read by h11 throughout.
* Body data is appended to a list, each read stamped on arrival, and taken whole,
  joined (``take``) or read by read (``take_reads``); with more than
  ``READ_BUFFER_BYTES`` not taken the socket is paused. Or it
  goes, read by read, to a sink called from the read callback (``deliver``).
* A read timeout is one timer per quiet period, re-armed when it finds the connection
  was not quiet all along, rather than one timer per read.

Failures are httpx's exceptions, raised in the task that waits.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import h11
import httpx

from harness.transports.base import ChunkSink, Clock
from harness.transports.chunked import ChunkedBody

__all__ = ["MAX_HEAD_BYTES", "READ_BUFFER_BYTES", "H11Protocol"]

#: A response head (interim responses included) longer than this is refused.
MAX_HEAD_BYTES = 64 * 1024
#: Body bytes read and not taken above which the connection stops reading.
READ_BUFFER_BYTES = 256 * 1024
_HEAD_END = re.compile(rb"\n\r?\n")  # the blank line that ends a head, as h11 finds it
_Key = tuple[str, str, int]


class H11Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection: h11's state, the body's reads not taken yet, and the one
    future its reader waits on."""

    def __init__(self, key: _Key, clock: Clock, on_lost: Callable[[H11Protocol], None]):
        self.key = key
        self._clock = clock
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.method = b"GET"  # of the request in flight
        self.lost = self.spoiled = False  # spoiled: bytes came that no request asked for
        self.expecting = self.received = self.ended = False
        self.response: h11.Response | None = None
        self.error: BaseException | None = None  # a failed read, or what a sink raised
        self._head = b""
        self._chunked: ChunkedBody | None = None
        self.chunks: list[bytes] = []
        self.stamps: list[int] = []  # the arrival of each of ``chunks``
        self._unread = 0
        self._paused = False
        self._sink: ChunkSink | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._quiet_since = 0.0  # the loop's time of the last read or the wait's start
        self._timer: asyncio.TimerHandle | None = None
        self._writable: asyncio.Future[None] | None = None

    @property
    def reusable(self) -> bool:
        h = self.h11
        return (
            h.our_state is h11.DONE
            and h.their_state is h11.DONE
            and self.ended
            and self.error is None
            and not self.lost
            and not self.spoiled
        )

    def next_cycle(self) -> None:
        """Ready the connection for its next request (once ``reusable``)."""
        self._stop_timer()
        self.take()  # a body closed unread, though whole
        self.h11.start_next_cycle()
        self.expecting = self.received = self.ended = False
        self.response = None

    # -- the protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        arrival_ns = self._clock()
        self._quiet_since = self._loop.time()
        if self._chunked is not None:  # the hot path: a read of a chunked body
            self._read_chunked(arrival_ns, data)
        elif not self.expecting or self.ended:
            self.spoiled = True
        elif self.response is None:
            self.received = True
            self._read_head(arrival_ns, data)
        elif self.error is None:
            self._feed_h11(arrival_ns, data)

    def eof_received(self) -> bool:
        if self.expecting and not self.ended and self.error is None:
            if self.response is None:
                self._fail(httpx.RemoteProtocolError("the server closed without a response"))
            else:  # h11 ends a close-delimited body, or names what the end cut short
                self._chunked = None
                self.h11.receive_data(b"")
                self._feed_h11(self._clock(), b"")
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.resume_writing()
        if self.expecting and not self.ended and self.error is None:
            self._fail(httpx.ReadError(f"the connection closed: {exc!r}"))
        self._on_lost(self)

    def pause_writing(self) -> None:
        self._writable = self._writable or self._loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def _read_head(self, arrival_ns: int, data: bytes) -> None:
        head = self._head + data
        search = max(len(self._head) - 2, 0)
        while (found := _HEAD_END.search(head, search)) is not None:
            self.h11.receive_data(head[: found.end()])  # the head, and not a byte more
            head, search = head[found.end() :], 0
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(httpx.RemoteProtocolError(f"a broken response head: {exc}"))
                return
            if type(event) is h11.Response:  # else an interim (1xx) one: the real one follows
                self._head = b""
                self.response = event
                if self.h11.their_state is h11.SEND_BODY and _chunked(event, self.method):
                    self._chunked = ChunkedBody()
                    self._wake()  # the head is here
                    if head:
                        self._read_chunked(arrival_ns, head)
                else:
                    self._feed_h11(arrival_ns, head)
                return
        self._head = head
        if len(head) > MAX_HEAD_BYTES:
            self._fail(httpx.RemoteProtocolError("a response head longer than 64 KiB"))

    def _read_chunked(self, arrival_ns: int, data: bytes) -> None:
        body, rest = self._chunked.feed(data)  # type: ignore[union-attr]
        if body:
            self._body(arrival_ns, body)
        if rest is not None and self._chunked is not None:  # the last chunk, or odd framing
            self._chunked = None
            self._feed_h11(arrival_ns, rest)

    def _feed_h11(self, arrival_ns: int, data: bytes) -> None:
        h = self.h11
        if data:
            h.receive_data(data)
        try:
            while True:
                event = h.next_event()
                if type(event) is h11.Data:
                    self._body(arrival_ns, bytes(event.data))
                elif type(event) is h11.EndOfMessage:
                    self.ended = True
                    break
                else:  # NEED_DATA, PAUSED or ConnectionClosed
                    break
        except h11.RemoteProtocolError as exc:
            self._fail(httpx.RemoteProtocolError(f"the body broke off or broke HTTP/1.1: {exc}"))
            return
        self._wake()

    def _body(self, arrival_ns: int, data: bytes) -> None:
        sink = self._sink
        if sink is None:
            self.chunks.append(data)
            self.stamps.append(arrival_ns)
            self._unread += len(data)
            if self._unread > READ_BUFFER_BYTES and not self._paused:
                self._paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
            self._wake()
            return
        try:
            if not sink(arrival_ns, data):
                return
        except BaseException as exc:  # the sink's failure goes to the task that waits
            self.error = exc
        self._sink = None  # stopped: the body is left mid-way
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: httpx.TransportError) -> None:
        self.error = error
        self._chunked = None
        self._wake()
        if self.transport is not None:
            self.transport.close()

    # -- the reader's side -----------------------------------------------------------

    def take(self) -> bytes:
        """All body data read and not taken yet, joined (b"" when there is none)."""
        chunks = self.chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._taken()
        return data

    def take_reads(self) -> list[tuple[int, bytes]]:
        """The body's reads not taken yet, each apart with its arrival stamp."""
        reads = list(zip(self.stamps, self.chunks, strict=True))
        if reads:
            self._taken()
        return reads

    def _taken(self) -> None:
        self.chunks.clear()
        self.stamps.clear()
        self._unread = 0
        if self._paused:
            self._paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    async def wait(self, timeout: float | None) -> None:
        """Wait until the protocol has news: data, the head, the end or an error.

        Raises:
            httpx.ReadTimeout: no bytes arrived within ``timeout`` seconds.
        """
        self._waiter = waiter = self._loop.create_future()
        if timeout is not None:  # one timer per quiet period, not one per read
            self._quiet_since = self._loop.time()
            if self._timer is None:
                self._timer = self._loop.call_later(timeout, self._on_timer, timeout)
        await waiter

    def _on_timer(self, timeout: float) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait arms the timer again
        due = self._quiet_since + timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._on_timer, timeout)
            return
        self._waiter = None
        waiter.set_exception(httpx.ReadTimeout(f"no bytes arrived within {timeout:g} s"))

    async def deliver(self, sink: ChunkSink, timeout: float | None) -> None:
        """Hand the body's reads to ``sink`` (what came before first, with its stamps)
        until the body ends or ``sink`` returns True.

        Raises:
            httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError: as reading
                it through the stream does; or what ``sink`` raised.
        """
        for arrival_ns, data in zip(self.stamps, self.chunks, strict=True):
            if sink(arrival_ns, data):
                return
        self.take()
        self._sink = sink
        try:
            while self._sink is not None and self.error is None and not self.ended:
                await self.wait(timeout)
        finally:
            self._sink = None
        if self.error is not None:
            raise self.error

    async def send(self, data: bytes, timeout: float | None) -> None:
        """Write ``data``, then wait (up to ``timeout``) while the kernel's buffer is full.

        Raises:
            httpx.WriteError: the connection is closed.
            httpx.WriteTimeout: the buffer did not drain in time.
        """
        if self.lost or self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("the connection is closed")
        self.expecting = True
        self.transport.write(data)
        if self._writable is not None:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._writable)
            except TimeoutError as exc:
                raise httpx.WriteTimeout("the request could not be written in time") from exc

    def close(self) -> None:
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _chunked(response: h11.Response, method: bytes) -> bool:
    """True when h11 reads ``response``'s body as chunked (RFC 9112, section 6.3)."""
    status = response.status_code
    if status in (204, 304) or method == b"HEAD" or (method == b"CONNECT" and status < 300):
        return False
    return any(name == b"transfer-encoding" for name, _ in response.headers)
