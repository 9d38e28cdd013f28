"""Sockets whose reads carry the kernel's receive time, for the kernel transport.

Each read of a ``StampedSocket`` is ``(arrival_ns, user_ns, bytes)``: the kernel's stamp
of the segment, mapped onto the arrival clock (see ``kernel_clock``), and the user-space
stamp taken right after ``recvmsg`` returned. Reads are queued for ``read`` or, while
a reader is attached (``attach``), handed to it inside the event loop's read callback,
which spares a future and a task switch per read. Where the kernel gives no stamp,
``arrival_ns`` is the user-space stamp. Under TLS (``ssl.MemoryBIO``) the stamps are
those of the encrypted segments. A read that waited unread (its kernel stamp well before
the user-space one) has the transport's ``CatchUpPoller`` read every ready socket at
once, so that no socket holds two events when it is finally read.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import logging
import os
import select
import socket
import ssl
import struct
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import ReadTimedOut
from harness.transports.base import Clock
from harness.transports.kernel_clock import (
    ANCILLARY_BYTES,
    SO_TIMESTAMPNS,
    TIMESPEC,
    CatchUpPoller,
    ClockMap,
)

__all__ = ["StampedSocket", "open_socket"]

log = logging.getLogger(__name__)

#: Bytes asked of one recvmsg: large enough for any burst, small enough to stay off mmap.
RECV_BYTES = 64 * 1024
#: Stop reading from the kernel while this much is received but not consumed.
PAUSE_BYTES = 1 << 20

Read = tuple[int, int, bytes]
#: A reader attached to a socket: called with each read; empty bytes mean the reads end
#: here (the end of the stream, or an error): ``read`` then gives the end or raises it.
OnRead = Callable[[int, int, bytes], None]


async def open_socket(host: str, port: int, *, stamps: bool) -> tuple[socket.socket, bool]:
    """A connected non-blocking TCP socket; with ``stamps``, one that asks for kernel stamps.

    Returns:
        The socket, and whether the kernel agreed to stamp its reads.

    Raises:
        OSError: no address could be connected.
    """
    loop = asyncio.get_running_loop()
    infos: Sequence[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]]
    family = _address_family(host)
    if family is not None:  # an address needs no resolver (which runs in a thread)
        infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    else:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {host}:{port}")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stamped = False
            if stamps:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                    stamped = True
                except OSError as exc:
                    log.debug("SO_TIMESTAMPNS refused: %r", exc)
            await _connected(loop, sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock, stamped
    raise error


async def _connected(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, address: tuple[Any, ...]
) -> None:
    """Connect the non-blocking ``sock`` to ``address``, already resolved: the system call,
    then, while the connection is under way, a wait for the socket to turn writable.
    (uvloop's ``sock_connect`` asks its resolver again, in a thread, for every connection.)

    Raises:
        OSError: the connection failed.
    """
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    fd = sock.fileno()
    if not _writable_now(fd):  # (on loopback the handshake is over by now: no wait)
        writable = loop.create_future()
        loop.add_writer(fd, _settle, writable)
        try:
            await writable
        finally:
            loop.remove_writer(fd)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, f"connect to {address[0]}:{address[1]}: {os.strerror(error)}")


def _writable_now(fd: int) -> bool:
    """Whether ``fd``, a socket connecting, is writable (connected, or failed) already."""
    if not hasattr(select, "poll"):
        return False
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    return bool(poll.poll(0))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@functools.lru_cache(maxsize=64)
def _address_family(host: str) -> socket.AddressFamily | None:
    """The family of ``host`` when it is an IP address; None for a name."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


class StampedSocket:
    """A connected socket read from the event loop's reader callback, each read stamped.

    The callback does the least it can: one ``recvmsg``, the user-space stamp, the
    kernel's stamp mapped onto the arrival clock, and a wake-up of the reader. Reads
    queue up to ``PAUSE_BYTES``; past that the socket is not read until they are
    consumed (the kernel keeps the bytes, and their stamps).

    Args:
        sock: a connected non-blocking socket.
        clock: the arrival clock, for the user-space stamps.
        clock_map: maps kernel stamps onto ``clock``; None reads without kernel stamps.
        idle_s: how long ``read`` waits for bytes before it raises ``ReadTimedOut``.
        poller: reads every ready socket when the event loop fell behind (shared by a
            transport).
        on_unstamped: called once if a read that should carry the kernel's stamp does not.
    """

    # the read callback's fields first, side by side: under load each read finds its
    # socket out of the cache, and these then fill one or two lines of it, not four
    __slots__ = (  # noqa: RUF023
        "_caught",
        "_recvmsg",
        "_clock",
        "_clock_map",
        "_poller",
        "_attached",
        "_deferred",
        "_late_ns",
        "_buffered",
        "_eof",
        "_error",
        "_fd",
        "_idle_handle",
        "_idle_s",
        "_loop",
        "_on_unstamped",
        "_reading",
        "_reads",
        "_sock",
        "_tls",
        "_wait_started_s",
        "_waiter",
        "unstamped_reads",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        clock: Clock,
        clock_map: ClockMap | None,
        idle_s: float,
        poller: CatchUpPoller | None = None,
        on_unstamped: Callable[[], None] | None = None,
    ) -> None:
        self._sock = sock
        self._recvmsg = sock.recvmsg
        self._fd = sock.fileno()
        self._loop = asyncio.get_running_loop()
        self._clock = clock
        self._clock_map = clock_map
        self._idle_s = idle_s
        self._reads: collections.deque[Read] = collections.deque()
        self._buffered = 0
        self._reading = True
        self._eof = False
        self._error: OSError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._wait_started_s = 0.0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._tls: _TLS | None = None
        self._attached: OnRead | None = None
        self._deferred = 0  # reads waiting in the poller for their turn
        self._caught = False  # read by the poller since the loop last called
        #: reads that should have carried a kernel stamp and did not
        self.unstamped_reads = 0
        self._poller = poller if poller is not None and poller.active else None
        #: a read whose kernel stamp is this much older than its user-space one waited
        #: unread: the poller catches up
        self._late_ns = self._poller.interval_ns if self._poller is not None else 1 << 62
        self._on_unstamped = on_unstamped
        self._resume_reading()

    @property
    def clock(self) -> Clock:
        """The arrival clock of the user-space stamps."""
        return self._clock

    @property
    def idle_s(self) -> float:
        """How long a read may wait for bytes."""
        return self._idle_s

    @property
    def kernel_stamped(self) -> bool:
        """Whether every read so far carried the kernel's stamp."""
        return self._clock_map is not None and not self.unstamped_reads

    @property
    def tls(self) -> bool:
        """Whether the bytes run through TLS."""
        return self._tls is not None

    @property
    def usable(self) -> bool:
        """Open, not at its end, and nothing unread: fit to carry another request."""
        return self._fd >= 0 and not self._eof and self._error is None and not self._reads

    # -- the reader callback: the hot path ------------------------------------------

    def _on_readable(self, catching_up: bool = False) -> None:
        if self._caught:  # the poller read it since the loop found it ready: nothing waits
            self._caught = False  # (were more to come, the loop finds it ready again)
            return
        try:
            data, ancillary, _, _ = self._recvmsg(RECV_BYTES, ANCILLARY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # its turn comes as a read's would
            self._error = exc
            self._stop_reading()
            self._hand_on(0, 0, None, catching_up)
            return
        user_ns = arrival_ns = self._clock()
        clock_map = self._clock_map
        if clock_map is not None:
            try:
                seconds, nanoseconds = TIMESPEC.unpack_from(ancillary[0][2])
                arrival_ns = seconds * 1_000_000_000 + nanoseconds + clock_map.offset_ns
            except (IndexError, struct.error):
                if data:
                    self._unstamped()
        poller = self._poller
        if poller is not None:
            poller.last_read_ns = user_ns
        attached = self._attached
        if (  # the hot path of a body read: handed on at once
            attached is not None
            and data
            and not self._deferred
            and not catching_up
            and user_ns - arrival_ns < self._late_ns
        ):
            attached(arrival_ns, user_ns, data)
            return
        if not data:
            self._eof = True
            self._stop_reading()
        self._hand_on(arrival_ns, user_ns, data, catching_up)

    def _hand_on(
        self, arrival_ns: int, user_ns: int, data: bytes | None, catching_up: bool
    ) -> None:
        """A read off the hot path: taken now, or waiting for the poller."""
        if self._deferred or (
            self._attached is not None and (catching_up or user_ns - arrival_ns >= self._late_ns)
        ):
            # the loop fell behind (this read waited unread), the poller is catching up,
            # or this socket has reads waiting: the read waits until the poller has read
            # every ready socket, so that reading keeps up with arrivals and the stamps
            # stay exact however long the readers take
            poller = self._poller
            assert poller is not None  # reads wait, or come late, only with a poller
            self._deferred += 1
            poller.deferred.append((self._take_deferred, arrival_ns, user_ns, data))
            if not catching_up:
                poller.catch_up()
        else:
            self._take(arrival_ns, user_ns, data)

    def _unstamped(self) -> None:
        self.unstamped_reads += 1
        if self.unstamped_reads == 1 and self._on_unstamped is not None:
            self._on_unstamped()

    def _on_caught_up(self, in_read_callbacks: bool) -> None:
        """The poller's read as it catches up. From inside the loop's read callbacks, the
        loop's next call for the socket, which it may have found ready before this read,
        is a read of nothing, and skipped (were more to come, the loop finds it ready
        again: a read late by a turn of the loop, its stamp the kernel's all the same)."""
        self._caught = False
        self._on_readable(True)
        self._caught = in_read_callbacks

    def _take_deferred(self, arrival_ns: int, user_ns: int, data: bytes | None) -> None:
        self._deferred -= 1
        if self._fd >= 0:
            self._take(arrival_ns, user_ns, data)

    def _take(self, arrival_ns: int, user_ns: int, data: bytes | None) -> None:
        """A read in its turn: to the attached reader, or queued for ``read``."""
        attached = self._attached
        if attached is not None and data:  # the hot path of a body read
            attached(arrival_ns, user_ns, data)
            return
        if data is not None:  # bytes, or the end
            self._reads.append((arrival_ns, user_ns, data))
            if data:
                self._buffered += len(data)
                if self._buffered > PAUSE_BYTES:
                    self._stop_reading()
        self._wake()
        if not data:  # the end or an error: an attached reader is told, and detached
            self._end_attached()

    def attach(self, on_read: OnRead) -> None:
        """Hand every read to ``on_read`` from now on, those already queued first, until
        ``detach`` (which ``on_read`` may call). The end of the stream or an error stays
        queued for ``read``, and ``on_read`` is told with empty bytes and detached.
        Not under TLS (its reads need decrypting)."""
        if self._tls is not None:
            raise RuntimeError("a TLS socket's reads go through read()")
        self._attached = on_read
        reads = self._reads
        while reads and self._attached is on_read:
            arrival_ns, user_ns, data = reads[0]
            if not data:  # the end: it stays queued
                self._end_attached()
                return
            reads.popleft()
            self._buffered -= len(data)
            on_read(arrival_ns, user_ns, data)
        if self._attached is on_read and self._error is not None:
            self._end_attached()
        elif not self._reading and self._buffered <= PAUSE_BYTES // 2 and self._open:
            self._resume_reading()

    def detach(self) -> None:
        """Queue reads for ``read`` again."""
        self._attached = None

    def _end_attached(self) -> None:
        attached = self._attached
        if attached is not None:
            self._attached = None
            attached(0, 0, b"")

    async def read_raw(self) -> Read:
        """The next read as it came off the wire; ``bytes`` is empty at the end.

        Raises:
            ReadTimedOut: nothing arrived within the idle timeout.
            OSError: the connection broke.
        """
        poller = self._poller
        reads = self._reads
        if poller is not None:
            if not reads and self._deferred:
                poller.catch_up(
                    in_read_callbacks=False
                )  # this socket's reads wait in the poller: their turn now
            else:
                poller.catch_up_if_idle()
        if not reads:
            if self._error is not None:
                raise self._error
            if self._eof or self._fd < 0:
                raise ConnectionResetError("the socket is closed")
            loop = self._loop
            waiter = self._waiter = loop.create_future()
            self._wait_started_s = loop.time()
            if self._idle_handle is None:
                self._idle_handle = loop.call_at(self._wait_started_s + self._idle_s, self._on_idle)
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
            if not reads:
                raise self._error or ConnectionResetError("the socket was closed")
        read = reads.popleft()
        if read[2]:
            self._buffered -= len(read[2])
            if not self._reading and self._buffered <= PAUSE_BYTES // 2 and self._open:
                self._resume_reading()
        return read

    def _resume_reading(self) -> None:
        self._reading = True
        self._loop.add_reader(self._fd, self._on_readable)
        if self._poller is not None:  # it watches the socket too, to catch up
            self._poller.register(self._fd, self._on_caught_up)

    async def read(self) -> Read:
        """The next bytes of the stream (decrypted under TLS), stamped with their arrival.

        Under TLS the stamps are those of the encrypted segments that completed the
        bytes. ``bytes`` is empty at the end of the stream.

        Raises:
            ReadTimedOut: nothing arrived within the idle timeout.
            OSError: the connection broke (``ssl.SSLError`` for a bad TLS record).
        """
        tls = self._tls
        if tls is None:
            return await self.read_raw()
        if tls.closed:  # the peer's close_notify ended the stream, whatever TCP does
            return tls.last[0], tls.last[1], b""
        while True:
            arrival_ns, user_ns, raw = await self.read_raw()
            plain = tls.decrypt(raw)
            tls.last = (arrival_ns, user_ns)
            if tls.outgoing.pending:
                await self._send_raw(tls.outgoing.read())
            if plain or not raw or tls.closed:
                return arrival_ns, user_ns, plain

    def _on_idle(self) -> None:
        self._idle_handle = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # not waiting: the next wait arms the timer again
        due_s = self._wait_started_s + self._idle_s
        if self._loop.time() >= due_s - 0.001:
            self._waiter = None
            waiter.set_exception(ReadTimedOut("no bytes arrived within the idle timeout"))
        else:
            self._idle_handle = self._loop.call_at(due_s, self._on_idle)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- writing, TLS, closing --------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Send all of ``data`` (encrypted under TLS).

        Raises:
            OSError: the connection broke.
        """
        if self._tls is not None:
            self._tls.sslobj.write(data)
            data = self._tls.outgoing.read()
        await self._send_raw(data)

    async def _send_raw(self, data: bytes) -> None:
        if self._fd < 0:
            raise ConnectionResetError("the socket is closed")
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            await self._loop.sock_sendall(self._sock, memoryview(data)[sent:])

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Run the TLS handshake through memory BIOs, so reads stay on this socket.

        Raises:
            ssl.SSLError: the handshake failed (a bad certificate, no common protocol).
            OSError: the connection broke.
        """
        tls = _TLS(context, server_hostname)
        while True:
            try:
                tls.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            if tls.outgoing.pending:
                await self._send_raw(tls.outgoing.read())
            _, _, raw = await self.read_raw()
            if not raw:
                raise ConnectionResetError("the server closed during the TLS handshake")
            tls.incoming.write(raw)
        if tls.outgoing.pending:
            await self._send_raw(tls.outgoing.read())
        self._tls = tls

    @property
    def _open(self) -> bool:
        return self._fd >= 0 and not self._eof and self._error is None

    def _stop_reading(self) -> None:
        if self._reading and self._fd >= 0:
            self._loop.remove_reader(self._fd)
            if self._poller is not None:
                self._poller.unregister(self._fd)
        self._reading = False

    def close(self) -> None:
        """Stop reading and close the socket (the server sees the connection end)."""
        if self._fd < 0:
            return
        self._stop_reading()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        self._fd = -1
        self._sock.close()
        self._wake()
        self._end_attached()


class _TLS:
    """A TLS session over memory BIOs: encrypted bytes in and out, plaintext through."""

    __slots__ = ("closed", "incoming", "last", "outgoing", "sslobj")

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(
            self.incoming, self.outgoing, server_hostname=server_hostname
        )
        self.closed = False
        self.last = (0, 0)  # the stamps of the last encrypted read

    def decrypt(self, raw: bytes) -> bytes:
        """The plaintext that ``raw`` completes; an empty ``raw`` is the transport's end."""
        if raw:
            self.incoming.write(raw)
        else:
            self.incoming.write_eof()
        pieces = []
        while True:
            try:
                piece = self.sslobj.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.closed = True  # close_notify, or the end without one: the body decides
                break
            if not piece:
                self.closed = True
                break
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
