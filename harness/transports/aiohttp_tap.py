"""Reading a chunked response body beside aiohttp, without aiohttp's per-chunk work.

aiohttp hands each body chunk through its protocol, its parser's callbacks and a
``StreamReader``, and wakes the reading task: a future, a task switch, a read timer and
about a dozen Python calls per event, which at hundreds of streams is most of the
client's CPU. A :class:`ResponseTap` stands in for aiohttp's protocol on the connection
from before the request is sent (``transport.set_protocol``) and passes everything on to
it, except the body of a response it can read more cheaply itself:

* The response's head goes to aiohttp whole, and nothing after it, so aiohttp parses
  the status and headers as always and its parser then stands at the start of the body.
* A 2xx response whose body is chunked and not compressed is then read here: every
  read is stamped on arrival, its chunk framing is taken off by ``ChunkedBody``, and the
  data goes straight to the sink of :meth:`ResponseTap.deliver`, inside the event
  loop's read callback. What arrives before ``deliver`` is called waits, with its stamp.
* At the last chunk, or at any framing ``ChunkedBody`` does not read, the rest goes to
  aiohttp, whose parser stands at a chunk boundary: it reads the trailers (or names what
  is wrong) and ends the body, and the connection goes back to its pool as usual.
* Any other response (not 2xx, compressed, not chunked, a HEAD request) goes to aiohttp
  from its head on, and the tap steps aside.

aiohttp's own read timeout restarts at every read it sees; while the tap reads the body
it is off, and the tap keeps one timer per idle period instead, re-armed lazily from the
time of the last read.
"""

from __future__ import annotations

import asyncio
import enum

from aiohttp.client_proto import ResponseHandler

from harness.errors import ReadFailed, ReadTimedOut
from harness.transports.base import ChunkSink, Clock
from harness.transports.chunked import ChunkedBody

__all__ = ["MAX_HEAD_BYTES", "MAX_HELD_BYTES", "ResponseTap"]

#: A head longer than this goes to aiohttp unread (aiohttp has its own limits).
MAX_HEAD_BYTES = 64 * 1024
#: Body bytes kept for ``deliver`` before the tap gives the body to aiohttp instead.
MAX_HELD_BYTES = 1024 * 1024


class _State(enum.Enum):
    HEAD = "head"  # the response's head is still coming
    HELD = "held"  # the body is the tap's to read; its bytes wait for deliver()
    BODY = "body"  # deliver() reads the body
    DROP = "drop"  # the read stopped or failed mid-body: the connection is to be closed
    GONE = "gone"  # aiohttp's protocol is back on the connection


class ResponseTap(asyncio.Protocol):
    """Stands in for aiohttp's protocol on a connection for one response.

    Args:
        protocol: aiohttp's protocol of the connection; it gets everything not read here.
        transport: the connection's transport; the tap puts itself on it at once.
        clock: the arrival clock.
    """

    def __init__(
        self, protocol: ResponseHandler, transport: asyncio.Transport, clock: Clock
    ) -> None:
        self._protocol = protocol
        self._transport = transport
        self._clock = clock
        self._state = _State.HEAD
        self._head = b""
        self._held: list[tuple[int, bytes]] = []
        self._held_bytes = 0
        self._body = ChunkedBody()
        self._sink: ChunkSink | None = None
        self._done: asyncio.Future[bool] | None = None
        self._last_ns = 0
        self._idle_s = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._read_timeout: float | None = None
        #: The arrival of the read that completed the response's head (0 until then).
        self.head_ns = 0
        transport.set_protocol(self)

    @property
    def holds_body(self) -> bool:
        """True when the body is to be read with ``deliver`` (and not read yet)."""
        return self._state is _State.HELD

    # -- the protocol ----------------------------------------------------------------

    def data_received(self, data: bytes, arrival_ns: int | None = None) -> None:
        """Bytes from the socket (or held ones, with the stamp of their arrival)."""
        if arrival_ns is None:
            arrival_ns = self._clock()
        if self._state is not _State.BODY:
            self._before_body(arrival_ns, data)
            return
        self._last_ns = arrival_ns  # the hot path: a read of the body
        body, rest = self._body.feed(data)
        if body:
            try:
                stop = self._sink(arrival_ns, body)  # type: ignore[misc]
            except BaseException as exc:  # the sink's failure goes to the waiting task
                self._finish(exc)
                return
            if stop:
                self._finish(False)
                return
        if rest is not None:  # the last chunk, or framing ChunkedBody does not read
            self.step_aside(rest)
            self._finish(True)

    def _before_body(self, arrival_ns: int, data: bytes) -> None:
        state = self._state
        if state is _State.HELD:
            self._hold(arrival_ns, data)
        elif state is _State.HEAD:
            self._read_head(arrival_ns, data)
        elif state is _State.GONE:  # only until the transport takes the protocol back
            self._protocol.data_received(data)

    def eof_received(self) -> None:
        if self._state is _State.HEAD or self._state is _State.HELD:
            self.step_aside()  # aiohttp reads what came before the end first
        self._protocol.eof_received()  # None, as here: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._state is _State.HEAD or self._state is _State.HELD:
            self.step_aside()  # aiohttp reads what came before the end first
        self._protocol.connection_lost(exc)
        if self._state is _State.BODY:
            why = f": {exc!r}" if exc is not None else " (the server closed it)"
            self._finish(ReadFailed(f"the connection broke before the body ended{why}"))

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    # -- the head --------------------------------------------------------------------

    def _read_head(self, arrival_ns: int, data: bytes) -> None:
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self._head = head
            if len(head) > MAX_HEAD_BYTES:
                self.step_aside()
            return
        end += 4
        self._head = b""
        self.head_ns = arrival_ns
        self._protocol.data_received(head[:end])  # aiohttp reads the head, not a byte more
        rest = head[end:]
        status = _status(head)
        if status is not None and 100 <= status < 200:  # an interim response: a head follows
            if rest:
                self._read_head(arrival_ns, rest)
        elif status is not None and _readable_here(status, head[:end]):
            self._state = _State.HELD
            if rest:
                self._hold(arrival_ns, rest)
        else:
            self.step_aside(rest)

    def _hold(self, arrival_ns: int, data: bytes) -> None:
        self._held.append((arrival_ns, data))
        self._held_bytes += len(data)
        if self._held_bytes > MAX_HELD_BYTES:  # nobody reads it here: aiohttp buffers it
            self.step_aside()

    # -- the body --------------------------------------------------------------------

    async def deliver(self, sink: ChunkSink, idle_s: float) -> bool:
        """Read the body into ``sink``; what arrived since the head first, with its stamps.

        Args:
            sink: called with ``(arrival_ns, data)`` for each read that carried body data;
                returns True to read no further.
            idle_s: the longest wait for the next bytes.

        Returns:
            True when the rest of the response went to aiohttp (at the last chunk, or
            at framing not read here): read the response's content for what is left.
            False when the sink stopped the read.

        Raises:
            ReadTimedOut: no bytes within ``idle_s``.
            ReadFailed: the connection broke.
        """
        if self._state is not _State.HELD:
            raise RuntimeError("deliver() reads a body the tap holds, once")
        loop = asyncio.get_running_loop()
        self._done = done = loop.create_future()
        self._sink = sink
        self._idle_s = idle_s
        self._read_timeout = self._protocol.read_timeout
        self._protocol.read_timeout = None
        self._protocol.start_timeout()  # with no read timeout: cancels aiohttp's timer
        self._state = _State.BODY
        held, self._held = self._held, []
        self._last_ns = self._clock()
        for arrival_ns, data in held:
            self.data_received(data, arrival_ns)
            if done.done():
                break
        if not done.done():
            self._idle_timer = loop.call_later(idle_s, self._on_idle)
        try:
            return await done
        finally:
            if self._state is _State.BODY:  # cancelled mid-body
                self._drop()

    def step_aside(self, rest: bytes = b"") -> bool:
        """Put aiohttp's protocol back, with what the tap holds and ``rest`` handed to it
        (once; later calls change nothing).

        Returns:
            True when aiohttp reads the rest of the response; False when ``deliver`` left
            the body mid-way (stopped, failed or cancelled): nothing more is read then.
        """
        if self._state is _State.DROP:
            return False
        if self._state is _State.GONE:
            return True
        held = b"".join([self._head, *(data for _, data in self._held), rest])
        self._state = _State.GONE
        self._held = []
        self._head = b""
        self._restore()
        if self._transport.get_protocol() is self:
            self._transport.set_protocol(self._protocol)
        if held:
            self._protocol.data_received(held)
        return True

    def _finish(self, outcome: bool | BaseException) -> None:
        if outcome is not True:
            self._drop()
        done = self._done
        if done is not None and not done.done():  # a cancelled wait has cancelled it
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    def _drop(self) -> None:
        """Read no more: the body was left mid-way, and its connection is to be closed."""
        if self._state is _State.BODY:
            self._state = _State.DROP
            self._restore()

    def _restore(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._sink is not None:
            self._protocol.read_timeout = self._read_timeout
            self._sink = None

    def _on_idle(self) -> None:
        quiet_s = (self._clock() - self._last_ns) / 1e9
        if quiet_s >= self._idle_s:
            self._idle_timer = None
            self._finish(ReadTimedOut("no bytes arrived within the idle timeout"))
        else:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self._idle_s - quiet_s, self._on_idle)


def _status(head: bytes) -> int | None:
    """The status code of a response head, or None when it is not read here."""
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return None
    return int(parts[1])


def _readable_here(status: int, head: bytes) -> bool:
    """True for a 2xx head with a body the tap reads: chunked, and not compressed."""
    if not 200 <= status < 300 or status == 204:
        return False
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):  # a folded header line: leave it all to aiohttp
            return False
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"transfer-encoding":
            if chunked or value != b"chunked":
                return False
            chunked = True
        elif name == b"content-length" or (name == b"content-encoding" and value != b"identity"):
            return False
    return chunked
