"""The kernel transport's ``deliver``: a chunked body read in the socket's read callback
reads the same as through ``chunks()``, however the bytes are cut, and ends, stops,
breaks and times out the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from harness.errors import ReadFailed, ReadTimedOut
from harness.transports import HttpRequest, Timeouts
from harness.transports.base import deliver
from harness.transports.kernel import KernelTransport
from tests.transports.servers import (
    LOOPS,
    SSE_HEAD,
    Conn,
    chat_events,
    chunked,
    raw_server,
    run,
    serve_each,
    turns,
)

TIMEOUTS = Timeouts(connect_s=5, ttft_s=10, idle_s=10, total_s=20)
FIRST, SECOND, *_ = chat_events(["one", "two", "three"])
BODY = b"".join(chat_events(["one", "two", "three"]))
RESPONSES = {
    "chunked": SSE_HEAD + chunked(BODY[:1], BODY[1:27], BODY[27:]),
    "chunked with a trailer": SSE_HEAD + chunked(BODY)[:-5] + b"0\r\nx-end: 1\r\n\r\n",
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
}


def get(url: str) -> HttpRequest:
    return HttpRequest(method="GET", url=url, headers={})


async def delivered(
    transport: KernelTransport, url: str, into: list[tuple[int, bytes]], stop_after: int = 0
) -> None:
    """Deliver the body at ``url`` into ``into``; the sink stops after ``stop_after`` reads."""

    def sink(arrival_ns: int, data: bytes) -> bool:
        into.append((arrival_ns, data))
        return bool(stop_after) and len(into) >= stop_after

    async with transport.stream(get(url)) as response:
        await deliver(response, sink)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("framing", sorted(RESPONSES))
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_a_delivered_body_is_whole_and_the_connection_kept(
    loop: str, framing: str, bytewise: bool
) -> None:
    async def go() -> tuple[int, list[list[tuple[int, bytes]]]]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: RESPONSES[framing], bytewise=bytewise)

        bodies: list[list[tuple[int, bytes]]] = [[], []]
        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            for body in bodies:
                await delivered(t, server.url(), body)
            return server.connections, bodies

    connections, bodies = run(go(), loop)
    assert connections == 1  # the body was read to its end: kept alive
    for body in bodies:
        assert b"".join(data for _, data in body) == BODY
        stamps = [at for at, _ in body]
        assert stamps == sorted(stamps)
        if bytewise:
            assert len(body) == len(BODY)  # every body byte came in a read of its own


def test_a_response_split_in_two_at_every_point_is_delivered_whole() -> None:
    response = RESPONSES["chunked"]

    async def go() -> list[bytes]:
        splits = iter(range(1, len(response)))

        async def handler(conn: Conn) -> None:
            while await conn.request() is not None:
                at = next(splits)
                await conn.send(response[:at])
                await turns(2)  # the client reads the first part
                await conn.send(response[at:])

        bodies = []
        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            for _ in response[1:]:
                body: list[tuple[int, bytes]] = []
                await delivered(t, server.url(), body)
                bodies.append(b"".join(data for _, data in body))
            return bodies

    assert run(go()) == [BODY] * (len(response) - 1)


def delivered_until_it_fails(
    handler: Callable[[Conn], Awaitable[None]], loop: str
) -> tuple[list[tuple[int, bytes]], ReadFailed | None]:
    """What one delivery from ``handler``'s server received, and the ReadFailed it ended
    with (None if it ended well)."""

    async def go() -> tuple[list[tuple[int, bytes]], ReadFailed | None]:
        received: list[tuple[int, bytes]] = []
        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            try:
                await delivered(t, server.url(), received)
            except ReadFailed as exc:
                return received, exc
        return received, None

    return run(go(), loop)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_server_closing_mid_chunk_breaks_the_delivery(loop: str) -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(SSE_HEAD + chunked(FIRST)[:-5])
        await turns(2)
        await conn.send(b"40\r\n" + SECOND[:10])
        conn.close()

    received, error = delivered_until_it_fails(handler, loop)
    assert isinstance(error, ReadFailed)
    assert b"".join(data for _, data in received) == FIRST + SECOND[:10]


@pytest.mark.parametrize("loop", LOOPS)
def test_a_broken_size_line_fails_after_the_data_before_it(loop: str) -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(SSE_HEAD + chunked(FIRST)[:-5] + b"zz\r\n")
        await conn.reader.read()  # open until the client's close

    received, error = delivered_until_it_fails(handler, loop)
    assert isinstance(error, ReadFailed)
    assert b"".join(data for _, data in received) == FIRST


def test_no_bytes_within_the_idle_timeout_times_the_delivery_out() -> None:
    async def go() -> tuple[list[tuple[int, bytes]], float]:
        release = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD + chunked(BODY)[:-5])
            await release.wait()

        short = Timeouts(connect_s=5, ttft_s=60, idle_s=0.2, total_s=120)
        received: list[tuple[int, bytes]] = []
        async with raw_server(handler) as server, KernelTransport(timeouts=short) as t:
            started = time.monotonic()
            with pytest.raises(ReadTimedOut):
                await delivered(t, server.url(), received)
            waited = time.monotonic() - started
            release.set()
        return received, waited

    received, waited = run(go())
    assert [data for _, data in received] == [BODY]
    assert 0.2 <= waited < 30  # not before the idle timeout; above only tells timers apart


EVENTS = chat_events(["a", "b", "c", "d"])


def test_a_sink_that_stops_or_fails_leaves_the_connection_closed() -> None:
    async def go() -> tuple[int, bytes, int, BaseException | None]:
        async def handler(conn: Conn) -> None:
            while await conn.request() is not None:
                await conn.send(SSE_HEAD)
                for event in EVENTS:
                    await conn.send(chunked(event)[:-5])
                    await turns(2)
                await conn.send(b"0\r\n\r\n")

        def failing(arrival_ns: int, data: bytes) -> bool:
            raise ValueError("the sink broke")

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            stopped: list[tuple[int, bytes]] = []
            await delivered(t, server.url(), stopped, stop_after=2)
            error = None
            try:
                async with t.stream(get(server.url())) as response:
                    await deliver(response, failing)
            except ValueError as exc:
                error = exc
            whole: list[tuple[int, bytes]] = []
            await delivered(t, server.url(), whole)
            return len(stopped), b"".join(d for _, d in whole), server.connections, error

    stopped, whole, connections, error = run(go())
    assert stopped == 2
    assert whole == b"".join(EVENTS)
    assert isinstance(error, ValueError)
    assert connections == 3  # neither half-read connection was reused
