"""The aiohttp transport reads chunked bodies beside aiohttp (its ResponseTap) and
everything else through aiohttp, with the same results whatever the bytes' split."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from harness.errors import ReadFailed, ReadTimedOut
from harness.load.exchange import Abandon, run_exchange
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.transports import HttpRequest, Timeouts
from harness.transports.aiohttp_transport import AiohttpTransport
from harness.transports.base import deliver
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
EVENTS = chat_events(["one", "two", "three"])
BODY = b"".join(EVENTS)
STREAM = SSE_HEAD + chunked(*EVENTS)  # one chunk per event


def get(url: str) -> HttpRequest:
    return HttpRequest(method="GET", url=url, headers={})


async def delivered(transport: AiohttpTransport, url: str) -> tuple[int, list[bytes]]:
    """The status and the body's reads, as ``deliver`` hands them to a sink."""
    reads: list[bytes] = []
    async with transport.stream(get(url)) as response:
        await deliver(response, lambda _, data: reads.append(data) or False)
        return response.status, reads


async def exchange(
    transport: AiohttpTransport, url: str, timeouts: Timeouts = TIMEOUTS, **kw: object
) -> RequestRecord:
    record = RequestRecord(request_id="t")
    await run_exchange(transport, get(url), record, dialect=None, timeouts=timeouts, **kw)  # type: ignore[arg-type]
    return record


def fields(record: RequestRecord) -> dict[str, object]:
    """What a record says about a stream, without its times."""
    return {
        "outcome": record.outcome,
        "error_kind": record.error_kind,
        "status": record.status,
        "events": record.events,
        "tokens": len(record.token_times_ns),
        "bytes": record.bytes_received,
        "text_chars": record.text_chars,
        "done": record.done_sentinel,
        "dialect": record.dialect,
    }


EXPECTED = {"outcome": Outcome.OK, "error_kind": None, "status": 200, "events": 4, "tokens": 3,
            "bytes": len(BODY), "text_chars": len("onetwothree"), "done": True,
            "dialect": "openai-chat"}  # fmt: skip


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("split", ["per event", "whole", "bytewise"])
def test_a_stream_gives_the_same_record_however_it_is_split(loop: str, split: str) -> None:
    async def go() -> tuple[list[RequestRecord], int]:
        async def handler(conn: Conn) -> None:
            while await conn.request() is not None:
                if split == "whole":
                    await conn.send(STREAM)
                elif split == "bytewise":
                    await conn.send_bytewise(STREAM)
                else:
                    await conn.send(SSE_HEAD)
                    for event in EVENTS:
                        await conn.send(chunked(event)[:-5])
                        await turns(2)
                    await conn.send(b"0\r\n\r\n")

        async with raw_server(handler) as server, AiohttpTransport(timeouts=TIMEOUTS) as t:
            records = [await exchange(t, server.url()) for _ in range(2)]
            return records, server.connections

    records, connections = run(go(), loop)
    for record in records:
        assert fields(record) == EXPECTED, record.error_message
    assert connections == 1  # the connection went back to aiohttp's pool after each body


def test_a_response_split_in_two_at_every_point_is_read_whole() -> None:
    async def go() -> tuple[list[bytes], int]:
        splits = iter(range(1, len(STREAM)))

        async def handler(conn: Conn) -> None:
            while await conn.request() is not None:
                at = next(splits)
                await conn.send(STREAM[:at])
                await turns(2)  # the client reads the first part
                await conn.send(STREAM[at:])

        async with raw_server(handler) as server, AiohttpTransport(timeouts=TIMEOUTS) as t:
            bodies = [b"".join((await delivered(t, server.url()))[1]) for _ in STREAM[1:]]
            return bodies, server.connections

    bodies, connections = run(go())
    assert bodies == [BODY] * (len(STREAM) - 1)
    assert connections == 1


def test_each_read_is_handed_on_with_its_own_arrival() -> None:
    async def go() -> tuple[list[int], list[bytes]]:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD)
            for event in EVENTS:
                await conn.send(chunked(event)[:-5])
                await turns(2)
            await conn.send(b"0\r\n\r\n")

        stamps: list[int] = []
        reads: list[bytes] = []

        def sink(arrival_ns: int, data: bytes) -> bool:
            stamps.append(arrival_ns)
            reads.append(data)
            return False

        async with (
            raw_server(handler) as server,
            AiohttpTransport(timeouts=TIMEOUTS) as t,
            t.stream(get(server.url())) as response,
        ):
            before = time.perf_counter_ns()
            await deliver(response, sink)
            assert response.t_headers_ns <= before
        return stamps, reads

    stamps, reads = run(go())
    assert reads == EVENTS
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_body_bytes_that_came_with_the_head_keep_the_heads_arrival() -> None:
    async def go() -> RequestRecord:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD + chunked(EVENTS[0])[:-5])
            await turns(4)
            await conn.send(chunked(*EVENTS[1:]))

        async with raw_server(handler) as server, AiohttpTransport(timeouts=TIMEOUTS) as t:
            return await exchange(t, server.url())

    record = run(go())
    assert fields(record) == EXPECTED
    assert record.t_first_byte_ns == record.t_headers_ns == record.token_times_ns[0]


@pytest.mark.parametrize(
    "response",
    [
        # a chunk extension and trailers: aiohttp reads from there on
        SSE_HEAD + b"%x;ext=1\r\n%s\r\n" % (len(BODY), BODY) + b"0\r\n\r\n",
        SSE_HEAD + chunked(*EVENTS)[:-2] + b"X-Trailer: yes\r\n\r\n",
        # compressed, close-delimited, content-length: aiohttp reads them whole
        SSE_HEAD.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n")
        + chunked(gzip.compress(BODY)),
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
        # an interim response before the stream's head
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + STREAM,
    ],
    ids=["extension", "trailers", "gzip", "content-length", "interim"],
)
def test_framing_the_tap_does_not_read_is_read_by_aiohttp(response: bytes) -> None:
    async def go() -> tuple[list[tuple[int, bytes]], int]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: response)

        async with raw_server(handler) as server, AiohttpTransport(timeouts=TIMEOUTS) as t:
            bodies = [await delivered(t, server.url()) for _ in range(2)]
            return [(status, b"".join(reads)) for status, reads in bodies], server.connections

    bodies, connections = run(go())
    assert bodies == [(200, BODY)] * 2
    assert connections == 1


def test_an_error_status_keeps_its_body() -> None:
    async def go() -> tuple[RequestRecord, RequestRecord]:
        refused = b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(
            b'{"error": "slow down"}'
        )
        answers = iter([refused, STREAM])

        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: next(answers))

        async with raw_server(handler) as server, AiohttpTransport(timeouts=TIMEOUTS) as t:
            return await exchange(t, server.url()), await exchange(t, server.url())

    refused, after = run(go())
    assert refused.error_kind is ErrorKind.RATE_LIMITED  # a 429: the server asked to wait
    assert "slow down" in (refused.error_message or "")
    assert fields(after) == EXPECTED


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    "broken",
    [chunked(EVENTS[0])[:-5] + b"40\r\n" + EVENTS[1][:10], chunked(EVENTS[0])[:-5] + b"zz\r\n"],
    ids=["closed mid-chunk", "bad size"],
)
def test_a_broken_body_fails_the_read_and_keeps_what_came_before(loop: str, broken: bytes) -> None:
    async def go() -> tuple[list[bytes], BaseException | None, RequestRecord]:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD + broken)
            conn.close()

        reads: list[bytes] = []
        error = None
        async with raw_server(handler) as server, AiohttpTransport(timeouts=TIMEOUTS) as t:
            try:
                async with t.stream(get(server.url())) as response:
                    await deliver(response, lambda _, data: reads.append(data) or False)
            except ReadFailed as exc:
                error = exc
            record = await exchange(t, server.url())
        return reads, error, record

    reads, error, record = run(go(), loop)
    assert isinstance(error, ReadFailed)
    assert b"".join(reads).startswith(EVENTS[0])
    assert record.error_kind is ErrorKind.TRUNCATED
    assert len(record.token_times_ns) == 1


def test_no_bytes_within_the_idle_timeout_times_the_read_out() -> None:
    async def go() -> tuple[list[bytes], float, RequestRecord]:
        release = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD + chunked(EVENTS[0])[:-5])
            await release.wait()

        short = Timeouts(connect_s=5, ttft_s=60, idle_s=0.2, total_s=120)
        reads: list[bytes] = []
        async with raw_server(handler) as server, AiohttpTransport(timeouts=short) as t:
            started = time.monotonic()
            with pytest.raises(ReadTimedOut):
                async with t.stream(get(server.url())) as response:
                    await deliver(response, lambda _, data: reads.append(data) or False)
            waited = time.monotonic() - started
            record = await exchange(t, server.url(), short)
            release.set()
        return reads, waited, record

    reads, waited, record = run(go())
    assert reads == [EVENTS[0]]
    # not before the idle timeout; the upper bound only tells the idle timer apart from the
    # others (a minute and more), however late a busy machine runs it
    assert 0.2 <= waited < 30
    assert record.error_kind is ErrorKind.TIMEOUT_IDLE
    assert len(record.token_times_ns) == 1


@pytest.mark.slow  # 1.2 s of a paced stream
def test_bytes_keep_arriving_so_the_idle_timer_does_not_fire() -> None:
    async def go() -> RequestRecord:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD)
            # 24 x 50 ms: past the 1 s idle bound, never idle that long (the server shares
            # the client's loop: only a stall of the whole process near 1 s could look idle)
            for _ in range(24):
                await conn.send(chunked(EVENTS[0])[:-5])
                await asyncio.sleep(0.05)  # the server's pace, not a wait for the client
            await conn.send(chunked(EVENTS[-1]))

        short = Timeouts(connect_s=5, ttft_s=10, idle_s=1.0, total_s=20)
        async with raw_server(handler) as server, AiohttpTransport(timeouts=short) as t:
            return await exchange(t, server.url(), short)

    record = run(go())
    assert record.outcome is Outcome.OK, record.error_message
    assert len(record.token_times_ns) == 24


def test_leaving_a_stream_early_closes_its_connection() -> None:
    async def go() -> tuple[RequestRecord, RequestRecord, int]:
        gone = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            if server.connections > 1:
                await conn.send(STREAM)
                return
            try:
                await conn.send(SSE_HEAD)
                for _ in range(50):
                    await conn.send(chunked(EVENTS[0])[:-5])  # a chunk, not the last one
                    await turns(1)
                await conn.reader.read()  # until the client's close
            except ConnectionError:
                pass
            gone.set()

        async with raw_server(handler) as server, AiohttpTransport(timeouts=TIMEOUTS) as t:
            left = await exchange(t, server.url(), abandon=Abandon(after_tokens=2))
            await asyncio.wait_for(gone.wait(), 5)
            return left, await exchange(t, server.url()), server.connections

    left, after, connections = run(go())
    assert left.outcome is Outcome.ABANDONED
    assert left.abandoned_after_tokens == 2
    assert fields(after) == EXPECTED
    assert connections == 2  # the half-read connection was closed, not reused


def test_a_sink_that_fails_fails_the_read() -> None:
    async def go() -> None:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: STREAM)

        def sink(arrival_ns: int, data: bytes) -> bool:
            raise ValueError("the sink broke")

        async with (
            raw_server(handler) as server,
            AiohttpTransport(timeouts=TIMEOUTS) as t,
            t.stream(get(server.url())) as response,
        ):
            await deliver(response, sink)

    with pytest.raises(ValueError, match="the sink broke"):
        run(go())
