"""Kernel receive timestamps and the clock they are mapped onto.

Linux stamps every received segment when it enters the network stack; a socket with
``SO_TIMESTAMPNS`` set gets that stamp back from ``recvmsg`` as ancillary data
(``SCM_TIMESTAMPNS``, a ``struct timespec``). The stamp is on ``CLOCK_REALTIME``;
``ClockMap`` moves it onto the arrival clock (``time.perf_counter_ns``, which is
``CLOCK_MONOTONIC`` on Linux) with an offset taken from the tightest of several
back-to-back readings of both clocks, and re-checked while a run goes on. An arrival
time then no longer waits for the event loop to get round to the socket: under load,
the loop's delay is exactly what user-space stamps add. But the kernel gives one stamp
per read, so ``CatchUpPoller`` sees that no socket stays unread for long.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import select
import socket
import struct
from collections.abc import Callable
from typing import Any

from harness.transports.base import Clock

__all__ = [
    "ANCILLARY_BYTES",
    "CATCH_UP_NS",
    "DRIFT_WARN_NS",
    "SCM_TIMESTAMPNS",
    "SO_TIMESTAMPNS",
    "TIMESPEC",
    "CatchUpPoller",
    "ClockMap",
    "kernel_stamp_ns",
    "probe_kernel_stamps",
]

log = logging.getLogger(__name__)

#: Linux's values; Python's socket module does not always define them.
SO_TIMESTAMPNS: int = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS: int = getattr(socket, "SCM_TIMESTAMPNS", SO_TIMESTAMPNS)
#: struct timespec: seconds, nanoseconds
TIMESPEC = struct.Struct("qq")
ANCILLARY_BYTES = socket.CMSG_SPACE(TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 64
#: A re-measured clock offset that moved more than this is worth a warning.
DRIFT_WARN_NS = 50_000
#: Longest time the sockets go unread while the event loop is busy with other work.
CATCH_UP_NS = 1_000_000


class ClockMap:
    """Maps ``CLOCK_REALTIME`` stamps onto the arrival clock.

    The offset is the arrival clock minus the realtime clock, read back to back: of
    ``samples`` readings (realtime, arrival, realtime) the one with the shortest
    realtime span wins, and its midpoint is taken. A realtime step (NTP, an operator)
    moves the offset; ``recheck`` finds that and adopts the new offset.

    Args:
        clock: the arrival clock (nanoseconds).
        realtime: the clock the kernel's stamps are on (``time.time_ns``).
        samples: readings per measurement.
    """

    __slots__ = ("_clock", "_realtime", "_samples", "offset_ns", "span_ns")

    def __init__(self, clock: Clock, realtime: Clock, *, samples: int = 16) -> None:
        self._clock = clock
        self._realtime = realtime
        self._samples = samples
        self.offset_ns, self.span_ns = self._measure()

    def _measure(self) -> tuple[int, int]:
        clock, realtime = self._clock, self._realtime
        best_span, best_offset = None, 0
        for _ in range(self._samples):
            before = realtime()
            mono = clock()
            after = realtime()
            span = after - before
            if best_span is None or span < best_span:
                best_span, best_offset = span, mono - (before + after) // 2
        return best_offset, best_span or 0

    def to_arrival_ns(self, realtime_ns: int) -> int:
        return realtime_ns + self.offset_ns

    def recheck(self) -> int:
        """Measure the offset again and adopt it; returns how far it moved (ns)."""
        offset_ns, self.span_ns = self._measure()
        moved = offset_ns - self.offset_ns
        self.offset_ns = offset_ns
        if abs(moved) > DRIFT_WARN_NS:
            log.warning(
                "the realtime clock moved %.1f us against the monotonic clock; kernel "
                "arrival stamps around this moment may be off by that much",
                moved / 1e3,
            )
        return moved


async def probe_kernel_stamps(attempts: int = 20) -> socket.socket | None:
    """Whether received TCP segments carry kernel stamps here, tried on loopback.

    The kernel switches stamping on a moment after the first socket asks for it, so
    the probe sends up to ``attempts`` bytes. It returns its receiving socket, which
    the caller keeps open: stamping stays on while any socket asks for it.

    Returns:
        The probe's socket, or None where kernel stamps are not available.
    """
    if not hasattr(socket.socket, "recvmsg"):
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            receiver = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                receiver.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                receiver.settimeout(1.0)
                receiver.connect(listener.getsockname())
                sender, _ = listener.accept()
                with sender:
                    for _ in range(attempts):
                        sender.sendall(b"?")
                        _, ancillary, _, _ = receiver.recvmsg(16, ANCILLARY_BYTES)
                        if kernel_stamp_ns(ancillary) is not None:
                            receiver.setblocking(False)
                            return receiver
                        await asyncio.sleep(0.005)
            except BaseException:
                receiver.close()
                raise
            receiver.close()
    except OSError as exc:
        log.debug("kernel receive stamps are not available: %r", exc)
    return None


def kernel_stamp_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's receive stamp (CLOCK_REALTIME ns) in a read's ancillary data, if any."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return seconds * 1_000_000_000 + nanoseconds
    return None


class CatchUpPoller:
    """Reads the ready sockets of a transport: once per turn of the event loop, and between
    two chunks when the event loop has not for a while.

    The event loop watches one file descriptor, this poller's epoll, and when it is ready
    the poller reads every ready socket in one go (their reader callbacks, one read
    each): one wake-up of the loop per turn rather than one per socket.

    A busy event loop runs task after task before it polls its sockets again. A socket
    left unread for one inter-token gap holds two events, and the kernel stamps a read
    with its latest segment (TCP merges the segments it queues), so the earlier event
    would get the later one's arrival time. So every reader, before it takes its next
    chunk, lets this poller read all ready sockets if none was read for ``interval_ns``:
    reading keeps up with arrivals even when parsing falls behind, and the stamps stay
    exact. A no-op where ``select.epoll`` is missing.
    """

    __slots__ = (
        "_callbacks",
        "_clock",
        "_deferred",
        "_draining",
        "_epoll",
        "_loop",
        "due_ns",
        "interval_ns",
        "polls",
    )

    def __init__(self, clock: Clock, interval_ns: int = CATCH_UP_NS) -> None:
        self._clock = clock
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # watching the epoll
        self._deferred: collections.deque[tuple[Callable[..., None], Any, Any, Any]] = (
            collections.deque()
        )
        self._draining = False
        self.interval_ns = interval_ns
        self.due_ns = clock() + interval_ns if self._epoll is not None else 1 << 62
        self.polls = 0

    @property
    def active(self) -> bool:
        """Whether this poller reads sockets (it needs ``select.epoll``)."""
        return self._epoll is not None

    def register(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Watch ``fd``; ``on_readable`` is its reader callback (one read each call), run
        when the running event loop finds the poller ready and when it catches up."""
        if self._epoll is not None:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
                self._loop.add_reader(self._epoll.fileno(), self._on_ready)
            self._epoll.register(fd, select.EPOLLIN)
            self._callbacks[fd] = on_readable

    def unregister(self, fd: int) -> None:
        if self._callbacks.pop(fd, None) is not None and self._epoll is not None:
            self._epoll.unregister(fd)

    def defer(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` once every ready socket has been read (in order)."""
        self._deferred.append((callback, *args))

    def poll(self) -> None:
        """Read every socket that has bytes waiting (their reader callbacks, run now),
        then run what they deferred."""
        self.polls += 1
        self._run()

    def _on_ready(self) -> None:  # the event loop found a socket ready
        self._run()

    def _run(self) -> None:
        self._read_ready()
        if self._draining:  # a catch-up from inside the run below only reads
            return
        self._draining = True
        deferred, clock = self._deferred, self._clock
        try:
            while deferred:
                callback, a, b, c = deferred.popleft()
                callback(a, b, c)
                if clock() >= self.due_ns:  # the readers take long: read the sockets again
                    self._read_ready()
        finally:
            self._draining = False

    def _read_ready(self) -> None:
        callbacks = self._callbacks
        for fd, _ in self._epoll.poll(0) if self._epoll is not None else ():
            on_readable = callbacks.get(fd)
            if on_readable is not None:
                on_readable()
        self.due_ns = self._clock() + self.interval_ns

    def close(self) -> None:
        if self._loop is not None and self._epoll is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._loop = None
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
            self._callbacks.clear()
            self.due_ns = 1 << 62
