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
    """Reads every ready socket of a transport at once when the event loop fell behind.

    The event loop reads each socket as it finds it ready, and the read is handed on at
    once. But a busy event loop runs callback after callback before it polls its sockets
    again, and a socket left unread for one inter-token gap holds two events; the kernel
    stamps a read with its latest segment (TCP merges the segments it queues), so the
    earlier event would get the later one's arrival time. A read's kernel stamp tells how
    long it waited unread: one that waited ``interval_ns`` or more calls ``catch_up``,
    which reads every socket that has bytes waiting (this poller's own epoll watches them
    too) before any of those reads is handed on, and reads them all again each
    ``interval_ns`` while the reads are handed on. A loop busy with tasks reads no socket
    at all: a task of the transport's (a request starting or ending, a head read) calls
    ``catch_up_if_idle``, which catches up when no socket was read for ``interval_ns``.
    Reading keeps up with arrivals even when parsing falls behind, and the stamps stay
    exact; while the loop keeps up, the poller costs nothing. A no-op where
    ``select.epoll`` is missing.
    """

    __slots__ = (
        "_callbacks",
        "_clock",
        "_epoll",
        "deferred",
        "draining",
        "interval_ns",
        "last_read_ns",
        "polls",
    )

    def __init__(self, clock: Clock, interval_ns: int = CATCH_UP_NS) -> None:
        self._clock = clock
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._callbacks: dict[int, Callable[[bool], None]] = {}
        #: ``(callback, a, b, c)``: ``callback(a, b, c)`` runs once every ready socket has
        #: been read, in order (a socket's reads wait here for their turn)
        self.deferred: collections.deque[tuple[Callable[..., None], Any, Any, Any]] = (
            collections.deque()
        )
        #: True while catching up: every read of an attached reader waits its turn then
        self.draining = False
        #: a read that waited unread this long calls ``catch_up``
        self.interval_ns = interval_ns
        #: when the event loop last read one of the sockets (each read sets it)
        self.last_read_ns = clock()
        self.polls = 0

    @property
    def active(self) -> bool:
        """Whether this poller reads sockets (it needs ``select.epoll``)."""
        return self._epoll is not None

    def register(self, fd: int, on_readable: Callable[[bool], None]) -> None:
        """Watch ``fd`` too; ``on_readable`` is its reader callback (one read each call,
        see ``catch_up`` for its argument), run when the poller catches up."""
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
            self._callbacks[fd] = on_readable

    def unregister(self, fd: int) -> None:
        if self._callbacks.pop(fd, None) is not None and self._epoll is not None:
            self._epoll.unregister(fd)

    def catch_up_if_idle(self) -> None:
        """``catch_up`` when no socket was read for ``interval_ns``: a task calls it, for
        the event loop may be running task after task and reading none."""
        if self._clock() - self.last_read_ns >= self.interval_ns and not self.draining:
            self.catch_up(in_read_callbacks=False)

    def catch_up(self, *, in_read_callbacks: bool = True) -> None:
        """Read every socket that has bytes waiting (their reader callbacks, run now),
        then hand on the reads that wait, reading the sockets again each
        ``interval_ns`` while that takes. A call from inside only reads.

        Called from one of the event loop's read callbacks (``in_read_callbacks``), the
        loop may hold more of them for sockets this reads first: each socket read is
        told so (its callback's argument), and skips the loop's next call."""
        if self.draining:
            self._read_ready(in_read_callbacks)
            return
        self.polls += 1
        self.draining = True
        deferred, clock, interval = self.deferred, self._clock, self.interval_ns
        try:
            self._read_ready(in_read_callbacks)
            self.last_read_ns = due = clock()
            due += interval
            while deferred:
                callback, a, b, c = deferred.popleft()
                callback(a, b, c)
                if clock() >= due:  # the readers take long: read the sockets again
                    self._read_ready(in_read_callbacks)
                    due = clock() + interval
        finally:
            self.draining = False

    def _read_ready(self, in_read_callbacks: bool) -> None:
        callbacks = self._callbacks
        for fd, _ in self._epoll.poll(0) if self._epoll is not None else ():
            on_readable = callbacks.get(fd)
            if on_readable is not None:
                on_readable(in_read_callbacks)

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
            self._callbacks.clear()
