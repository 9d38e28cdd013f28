"""Kernel receive stamps: their order, their clock, and the fallback to user-space stamps."""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.load.exchange import run_exchange
from harness.record import Outcome, RequestRecord
from harness.transports import HttpRequest, Timeouts, kernel_socket
from harness.transports import kernel as kernel_module
from harness.transports.kernel import KernelTransport
from harness.transports.kernel_clock import (
    DRIFT_WARN_NS,
    SO_TIMESTAMPNS,
    CatchUpPoller,
    ClockMap,
    probe_kernel_stamps,
)
from harness.transports.kernel_socket import StampedSocket
from tests.transports.servers import (
    LOOPS,
    SSE_HEAD,
    Conn,
    chat_events,
    chunked,
    raw_server,
    run,
    turns,
)

TIMEOUTS = Timeouts(connect_s=5, ttft_s=10, idle_s=10, total_s=20)
WORDS = [f"w{i}" for i in range(40)]


async def stream_words(conn: Conn) -> None:
    """Answer every request with an SSE stream of ``WORDS``, one write (and chunk) each."""
    while await conn.request() is not None:
        await conn.send(SSE_HEAD)
        for event in chat_events(WORDS):
            await conn.send(chunked(event)[:-5])
            await turns(2)
        await conn.send(b"0\r\n\r\n")


async def stamped_chunks(
    transport: KernelTransport, url: str
) -> tuple[str, list[tuple[int, int, bytes]]]:
    """Each chunk with its arrival stamp and the user-space stamp of its read."""
    request = HttpRequest(method="GET", url=url, headers={})
    async with transport.stream(request) as response:
        chunks = [(arrival, response.user_ns, data) async for arrival, data in response.chunks()]
        return response.clock_source, chunks


@pytest.mark.parametrize("loop", LOOPS)
def test_kernel_stamps_rise_per_connection_and_precede_the_read(loop: str) -> None:
    async def go() -> list[tuple[str, list[tuple[int, int, bytes]]]]:
        async with (
            raw_server(stream_words) as server,
            KernelTransport(timeouts=TIMEOUTS) as transport,
        ):
            assert transport.clock_source == "kernel"
            return [await stamped_chunks(transport, server.url()) for _ in range(2)]

    for source, chunks in run(go(), loop):
        assert source == "kernel"
        assert len(chunks) == len(WORDS) + 1  # each event came in a read of its own
        arrivals = [arrival for arrival, _, _ in chunks]
        assert arrivals == sorted(arrivals)
        assert all(arrival <= user for arrival, user, _ in chunks)
        # the kernel's stamp is earlier than the loop's: by more than the mapping's error
        assert sum(user - arrival for arrival, user, _ in chunks) > 0


def test_records_keep_the_user_space_stamps_beside_the_kernel_ones() -> None:
    async def go() -> RequestRecord:
        async with (
            raw_server(stream_words) as server,
            KernelTransport(timeouts=TIMEOUTS) as transport,
        ):
            record = RequestRecord(request_id="k")
            request = HttpRequest(method="GET", url=server.url(), headers={})
            await run_exchange(transport, request, record, dialect=None, timeouts=TIMEOUTS)
            return record

    record = run(go())
    assert record.outcome is Outcome.OK
    assert record.clock_source == "kernel"
    users = record.token_times_user_ns
    assert users is not None
    assert len(users) == len(record.token_times_ns) == len(WORDS)
    assert all(k <= u for k, u in zip(record.token_times_ns, users, strict=True))
    assert record.t_first_token_user_ns == users[0]
    assert record.t_first_token_ns == record.token_times_ns[0] <= users[0]


def test_without_kernel_stamps_arrivals_are_the_user_space_stamps(caplog) -> None:
    async def go() -> tuple[str, list[tuple[int, int, bytes]], RequestRecord]:
        async with (
            raw_server(stream_words) as server,
            KernelTransport(timeouts=TIMEOUTS, kernel_stamps=False) as transport,
        ):
            source, chunks = await stamped_chunks(transport, server.url())
            record = RequestRecord(request_id="u")
            request = HttpRequest(method="GET", url=server.url(), headers={})
            await run_exchange(transport, request, record, dialect=None, timeouts=TIMEOUTS)
            return source, chunks, record

    with caplog.at_level(logging.WARNING):
        source, chunks, record = run(go())
    assert source == "user"
    assert all(arrival == user for arrival, user, _ in chunks)
    assert record.ok
    assert record.clock_source == "user"
    assert record.t_first_token_user_ns is None
    assert record.token_times_user_ns is None
    assert not caplog.records  # asked for: nothing to warn about


@pytest.fixture
def no_kernel_stamps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    async def refused() -> None:
        return None

    monkeypatch.setattr(kernel_module, "probe_kernel_stamps", refused)
    return


@pytest.mark.usefixtures("no_kernel_stamps")
def test_a_kernel_that_does_not_stamp_is_reported_once_and_marked(caplog) -> None:
    async def go() -> tuple[str, list[RequestRecord]]:
        async with (
            raw_server(stream_words) as server,
            KernelTransport(timeouts=TIMEOUTS) as transport,
        ):
            records = []
            for n in range(3):
                record = RequestRecord(request_id=str(n))
                request = HttpRequest(method="GET", url=server.url(), headers={})
                await run_exchange(transport, request, record, dialect=None, timeouts=TIMEOUTS)
                records.append(record)
            return transport.clock_source, records

    with caplog.at_level(logging.WARNING, logger="harness.transports.kernel"):
        source, records = run(go())
    assert source == "user"
    assert all(r.ok and r.clock_source == "user" for r in records)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "user space" in warnings[0].getMessage()


def test_a_socket_refusing_the_option_falls_back_once(caplog, monkeypatch) -> None:
    # the probe still succeeds; each connection's own setsockopt is refused
    monkeypatch.setattr(kernel_socket, "SO_TIMESTAMPNS", 0x7FFF)

    async def go() -> list[tuple[str, list[tuple[int, int, bytes]]]]:
        async with (
            raw_server(stream_words) as server,
            KernelTransport(timeouts=TIMEOUTS, connections=2) as transport,
        ):
            first = await stamped_chunks(transport, server.url())
            both = await asyncio.gather(*(stamped_chunks(transport, server.url()) for _ in "ab"))
            return [first, *both]

    with caplog.at_level(logging.WARNING, logger="harness.transports.kernel"):
        results = run(go())
    for source, chunks in results:
        assert source == "user"
        assert all(arrival == user for arrival, user, _ in chunks)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "SO_TIMESTAMPNS" in warnings[0].getMessage()


def test_reads_without_a_stamp_are_counted_and_reported() -> None:
    async def go() -> tuple[list[tuple[int, int, bytes]], bool, int]:
        left, right = socket.socketpair()  # no kernel stamps on a Unix socket
        left.setblocking(False)
        reported: list[str] = []
        now = iter(range(1000, 10**6, 1000))
        clock_map = ClockMap(lambda: next(now), lambda: 0, samples=1)
        sock = StampedSocket(
            left,
            clock=lambda: next(now),
            clock_map=clock_map,
            idle_s=5,
            on_unstamped=lambda: reported.append("once"),
        )
        reads = []
        for piece in (b"a", b"b"):
            right.send(piece)
            reads.append(await sock.read())
        sock.close()
        right.close()
        return reads, sock.kernel_stamped, len(reported)

    reads, stamped, reported = run(go())
    assert [data for _, _, data in reads] == [b"a", b"b"]
    assert all(arrival == user for arrival, user, _ in reads)
    assert not stamped
    assert reported == 1


def test_the_clock_offset_comes_from_the_tightest_reading(caplog) -> None:
    # (realtime before, monotonic, realtime after): spans 500, 20 and 300 ns
    readings = [(1_000, 50, 1_500), (2_000, 1_010, 2_020), (3_000, 2_100, 3_300)]
    realtime = iter(v for before, _, after in readings for v in (before, after))
    monotonic = iter(m for _, m, _ in readings)
    clock_map = ClockMap(lambda: next(monotonic), lambda: next(realtime), samples=3)
    assert clock_map.span_ns == 20
    assert clock_map.offset_ns == 1_010 - 2_010
    assert clock_map.to_arrival_ns(5_000) == 4_000


def test_a_moved_realtime_clock_is_found_and_warned_about(caplog) -> None:
    offset = [0]
    mono = iter(range(0, 10**12, 1_000))
    monotonic = lambda: next(mono)  # noqa: E731
    realtime = lambda: monotonic() + offset[0]  # noqa: E731
    clock_map = ClockMap(monotonic, realtime, samples=4)
    start = clock_map.offset_ns
    with caplog.at_level(logging.WARNING):
        offset[0] = DRIFT_WARN_NS // 5  # a small slew: adopted quietly
        small = clock_map.recheck()
        offset[0] = 3 * DRIFT_WARN_NS  # a step: adopted and reported
        large = clock_map.recheck()
    assert abs(small + DRIFT_WARN_NS // 5) < 2_000
    assert abs(large + 3 * DRIFT_WARN_NS - DRIFT_WARN_NS // 5) < 2_000
    assert clock_map.offset_ns == pytest.approx(start - 3 * DRIFT_WARN_NS, abs=2_000)
    assert len(caplog.records) == 1
    assert "moved" in caplog.records[0].getMessage()


def test_the_transport_rechecks_the_offset_while_it_runs(monkeypatch) -> None:
    monkeypatch.setattr(kernel_module, "RECHECK_S", 0.01)

    async def go() -> int:
        rechecked = asyncio.Event()
        calls = [0]

        def realtime() -> int:
            calls[0] += 1
            if calls[0] > 16:  # past the first measurement: a re-check is running
                rechecked.set()
            return time.time_ns()

        async with KernelTransport(timeouts=TIMEOUTS, realtime=realtime) as transport:
            assert transport.clock_map is not None
            await asyncio.wait_for(rechecked.wait(), 5)
        return calls[0]

    assert run(go()) > 16


def test_the_catch_up_poller_reads_every_ready_socket_at_once() -> None:
    async def go() -> list[bytes]:
        poller = CatchUpPoller(lambda: 0)
        pairs = [socket.socketpair() for _ in range(3)]
        socks = []
        for left, _ in pairs:
            left.setblocking(False)
            socks.append(
                StampedSocket(left, clock=lambda: 0, clock_map=None, idle_s=5, poller=poller)
            )
        for n, (_, right) in enumerate(pairs):
            right.send(b"x%d" % n)
        # the loop has not turned: only the poller can have read them
        poller.catch_up()
        assert not any(sock.usable for sock in socks)  # each holds an unread read
        data = [(await sock.read())[2] for sock in socks]
        for sock in socks:
            sock.close()
        for _, right in pairs:
            right.close()
        poller.close()
        return data

    assert run(go()) == [b"x0", b"x1", b"x2"]


def test_reading_pauses_while_much_is_unread_and_loses_nothing(monkeypatch) -> None:
    monkeypatch.setattr(kernel_socket, "PAUSE_BYTES", 4096)
    payload = bytes(range(256)) * 1024

    async def go() -> bytes:
        left, right = socket.socketpair()
        left.setblocking(False)
        right.setblocking(False)
        loop = asyncio.get_running_loop()
        sock = StampedSocket(left, clock=lambda: 0, clock_map=None, idle_s=5)
        sending = asyncio.ensure_future(loop.sock_sendall(right, payload))
        await turns(20)  # the reader runs, fills its queue, and stops reading
        received = bytearray()
        while len(received) < len(payload):
            received += (await sock.read())[2]
        await sending
        sock.close()
        right.close()
        return bytes(received)

    assert run(go()) == payload


def _tcp_pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """Connected loopback TCP sockets: (the reading end, the sending end)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        pairs = []
        for _ in range(count):
            left = socket.create_connection(server.getsockname())
            right, _ = server.accept()
            pairs.append((left, right))
    return pairs


class _Offset:
    """A clock map that puts every kernel stamp ``offset_ns`` from the realtime clock."""

    def __init__(self, offset_ns: int) -> None:
        self.offset_ns = offset_ns


@pytest.mark.parametrize(
    ("waited_ns", "unread_when_handed_on"),
    [
        (0, [2, 1, 0]),  # the loop keeps up: each read goes to its reader at once
        (5_000_000_000, [0, 0, 0]),  # a read waited: every socket is read before it
    ],
)
def test_a_read_that_waited_has_every_ready_socket_read_first(
    waited_ns: int, unread_when_handed_on: list[int]
) -> None:
    """A read whose kernel stamp is ``interval_ns`` or more before its user-space stamp
    (it waited unread) has the poller read every other ready socket before any read is
    handed on; a read that did not wait is handed on at once. The sockets are read
    in the order they are given here, as an event loop would."""

    async def go() -> list[int]:
        anchor = await probe_kernel_stamps()  # stamping is on while it is open
        if anchor is None:
            pytest.skip("the kernel gives no receive timestamps here")
        poller = CatchUpPoller(time.time_ns, interval_ns=1_000_000_000)
        pairs = _tcp_pairs(3)  # the kernel stamps TCP reads
        unread: list[int] = []

        def still_unread() -> int:
            return sum(bool(select.select([left], [], [], 0)[0]) for left, _ in pairs)

        def on_read(arrival_ns: int, user_ns: int, data: bytes) -> None:
            if data:
                unread.append(still_unread())

        socks = []
        for left, _ in pairs:
            left.setblocking(False)
            left.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            left.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = StampedSocket(
                left,
                clock=time.time_ns,
                clock_map=_Offset(-waited_ns),  # type: ignore[arg-type]
                idle_s=5,
                poller=poller,
            )
            sock.attach(on_read)
            socks.append(sock)
        for n, (_, right) in enumerate(pairs):
            right.send(b"x%d" % n)
        deadline = time.monotonic() + 10  # the loop must not turn: it would read them
        while still_unread() < len(pairs) and time.monotonic() < deadline:
            time.sleep(0.001)
        for sock in socks:  # the event loop's turn, socket by socket
            sock._on_readable()
        for sock in socks:
            sock.close()
        for _, right in pairs:
            right.close()
        poller.close()
        anchor.close()
        return unread

    assert run(go()) == unread_when_handed_on


def test_a_socket_the_poller_read_is_not_read_again_for_nothing() -> None:
    """The event loop may have found a socket ready before the poller read it: its call
    then reads nothing and is skipped (no read, no error); what comes after is read."""

    calls = 0

    class Counted:  # the socket, its reads counted
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def recvmsg(self, *args: object) -> object:
            nonlocal calls
            calls += 1
            return self.sock.recvmsg(*args)  # type: ignore[arg-type]

        def __getattr__(self, name: str) -> object:
            return getattr(self.sock, name)

    async def go() -> list[bytes]:
        poller = CatchUpPoller(time.perf_counter_ns)
        [(left, right)] = _tcp_pairs(1)
        left.setblocking(False)
        got: list[bytes] = []
        counted: Any = Counted(left)
        sock = StampedSocket(
            counted, clock=time.perf_counter_ns, clock_map=None, idle_s=5, poller=poller
        )
        sock.attach(lambda arrival_ns, user_ns, data: got.append(data))
        right.send(b"one")
        deadline = time.monotonic() + 10
        while not select.select([left], [], [], 0)[0] and time.monotonic() < deadline:
            time.sleep(0.001)
        poller.catch_up()  # reads "one"
        sock._on_readable()  # the loop's call for the same readiness: skipped
        right.send(b"two")
        while not select.select([left], [], [], 0)[0] and time.monotonic() < deadline:
            time.sleep(0.001)
        sock._on_readable()  # the next call reads
        reads = list(got)
        sock.close()
        right.close()
        poller.close()
        return reads

    assert run(go()) == [b"one", b"two"]
    assert calls == 2  # the skipped call did not read
