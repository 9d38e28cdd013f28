"""The kernel transport speaks HTTP/1.1 correctly: against the mock and scripted servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut
from harness.load.exchange import run_exchange
from harness.load.payloads import RequestSpec, build_request
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.servers.embedded import EmbeddedMock, embedded_mock, fetch_truth, mock_arguments
from harness.transports import HttpRequest, Timeouts
from harness.transports.kernel import KernelTransport
from harness.transports.kernel_clock import ClockMap
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
PROMPT = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=20, itl_ms=5, tokens=12)) as running:
        yield running


def chat(mock: EmbeddedMock, **headers: str) -> HttpRequest:
    spec = RequestSpec(url=mock.base_url, headers=tuple(headers.items()))
    return build_request(spec, PROMPT)


def get(url: str) -> HttpRequest:
    return HttpRequest(method="GET", url=url, headers={})


async def exchange(transport: KernelTransport, request: HttpRequest, **kw: object) -> RequestRecord:
    record = RequestRecord(request_id="t")
    timeouts = kw.pop("timeouts", TIMEOUTS)
    await run_exchange(transport, request, record, dialect=None, timeouts=timeouts)  # type: ignore[arg-type]
    return record


async def body_of(transport: KernelTransport, url: str) -> tuple[int, list[bytes]]:
    async with transport.stream(get(url)) as response:
        return response.status, [data async for _, data in response.chunks()]


async def collect(transport: KernelTransport, url: str, into: list[bytes]) -> None:
    """Read the body at ``url`` into ``into``, chunk by chunk, until it ends or breaks."""
    async with transport.stream(get(url)) as response:
        async for _, data in response.chunks():
            into.append(data)


# -- against the mock -------------------------------------------------------------------


@pytest.mark.slow  # against a mock process
@pytest.mark.parametrize("loop", LOOPS)
def test_streams_chat_answers_from_the_mock_over_one_connection(
    mock: EmbeddedMock, loop: str
) -> None:
    async def go() -> list[RequestRecord]:
        async with KernelTransport(timeouts=TIMEOUTS, connections=4) as transport:
            return [await exchange(transport, chat(mock)) for _ in range(3)]

    before = ClockMap(time.perf_counter_ns, time.time_ns)
    records = run(go(), loop)
    # the kernel stamps on the realtime clock: a step of it (the VM's clock synchronised)
    # while the requests ran moves the kernel's stamps by as much, and no more
    stepped_ns = abs(ClockMap(time.perf_counter_ns, time.time_ns).offset_ns - before.offset_ns)
    slack_ns = stepped_ns + 2 * before.span_ns
    for record in records:
        assert record.outcome is Outcome.OK, record.error_message
        assert record.output_tokens == 12
        assert record.done_sentinel
        assert record.clock_source == "kernel"
        truth = fetch_truth(mock.base_url, record.mock_request_id or "")
        assert truth is not None
        written = truth["token_write_ns"]
        assert len(written) == len(record.token_times_ns) == 12
        # the kernel received each token after the mock wrote it, and before we read it
        users = record.token_times_user_ns or []
        for sent, arrived, read in zip(written, record.token_times_ns, users, strict=True):
            assert sent - slack_ns <= arrived <= read + slack_ns, (
                f"kernel stamp {arrived - sent} ns after the write, read {read - arrived} ns "
                f"later (the realtime clock moved {stepped_ns} ns meanwhile)"
            )
        assert record.t_first_token_user_ns == users[0]


@pytest.mark.slow  # against a mock process
def test_a_body_split_into_one_chunk_per_byte_reads_the_same(mock: EmbeddedMock) -> None:
    async def go() -> tuple[RequestRecord, RequestRecord]:
        async with KernelTransport(timeouts=TIMEOUTS) as transport:
            whole = await exchange(transport, chat(mock, **{"X-Mock-Seed": "3"}))
            split = await exchange(
                transport, chat(mock, **{"X-Mock-Seed": "3", "X-Mock-Fault": "split_bytes"})
            )
            return whole, split

    whole, split = run(go())
    assert whole.ok
    assert split.ok, split.error_message
    assert split.text_chars == whole.text_chars
    assert split.output_tokens == whole.output_tokens
    assert split.bytes_received == whole.bytes_received


@pytest.mark.slow  # against a mock process
def test_an_error_status_keeps_its_body_and_the_connection(mock: EmbeddedMock) -> None:
    async def go() -> tuple[RequestRecord, RequestRecord]:
        async with KernelTransport(timeouts=TIMEOUTS) as transport:
            refused = await exchange(transport, chat(mock, **{"X-Mock-Fault": "http_429"}))
            after = await exchange(transport, chat(mock))
            return refused, after

    refused, after = run(go())
    assert refused.status == 429
    assert refused.error_kind is ErrorKind.RATE_LIMITED  # a 429: the server asked to wait
    assert "HTTP 429" in (refused.error_message or "")
    assert "error" in (refused.error_message or "")
    assert after.ok


@pytest.mark.slow  # against a mock process
def test_slow_headers_are_waited_for_within_the_idle_timeout(mock: EmbeddedMock) -> None:
    # headers a second late: ten times the hasty client's idle timeout, so that it times
    # out however late a busy machine runs its timer
    slow = {"X-Mock-Fault": "slow_headers=1.0"}

    async def go() -> tuple[RequestRecord, RequestRecord]:
        async with KernelTransport(timeouts=TIMEOUTS) as transport:
            patient = await exchange(transport, chat(mock, **slow))
        short = Timeouts(connect_s=5, ttft_s=10, idle_s=0.1, total_s=20)
        async with KernelTransport(timeouts=short) as transport:
            hasty = await exchange(transport, chat(mock, **slow), timeouts=short)
        return patient, hasty

    patient, hasty = run(go())
    assert patient.ok
    assert patient.t_headers_ns is not None
    assert patient.t_headers_ns - patient.t_sent_ns >= 1e9
    assert hasty.error_kind is ErrorKind.TIMEOUT_IDLE


@pytest.mark.slow  # against a mock process
def test_a_mock_disconnect_mid_stream_is_a_truncated_record(mock: EmbeddedMock) -> None:
    async def go() -> RequestRecord:
        async with KernelTransport(timeouts=TIMEOUTS) as transport:
            return await exchange(transport, chat(mock, **{"X-Mock-Fault": "disconnect_after=4"}))

    record = run(go())
    assert record.error_kind is ErrorKind.TRUNCATED
    assert len(record.token_times_ns) == 4


# -- scripted servers -----------------------------------------------------------------

FIRST, SECOND, *_ = chat_events(["one", "two", "three"])
BODY = b"".join(chat_events(["one", "two", "three"]))
RESPONSES = {
    # chunk sizes of one, two and three hex digits
    "chunked": SSE_HEAD + chunked(BODY[:1], BODY[1:27], BODY[27:]),
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
}


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("framing", sorted(RESPONSES))
def test_every_byte_read_alone_still_gives_the_body(loop: str, framing: str) -> None:
    async def go() -> tuple[int, list[list[bytes]]]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: RESPONSES[framing], bytewise=True)

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            bodies = [(await body_of(t, server.url()))[1] for _ in range(2)]
            return server.connections, bodies

    connections, bodies = run(go(), loop)
    assert connections == 1  # kept alive, even when read a byte at a time
    for chunks in bodies:
        assert b"".join(chunks) == BODY
        assert len(chunks) == len(BODY)  # every body byte came in a read of its own


def test_a_response_split_in_two_at_every_point_is_read_whole() -> None:
    response = RESPONSES["chunked"]

    async def go() -> list[bytes]:
        splits = iter(range(1, len(response)))

        async def handler(conn: Conn) -> None:
            while await conn.request() is not None:
                at = next(splits)
                await conn.send(response[:at])
                await turns(2)  # the client reads the first part
                await conn.send(response[at:])

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            return [b"".join((await body_of(t, server.url()))[1]) for _ in response[1:]]

    assert run(go()) == [BODY] * (len(response) - 1)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_close_delimited_body_ends_at_the_close(loop: str) -> None:
    async def go() -> tuple[int, list[bytes], list[bytes]]:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
            for event in chat_events(["a", "b"]):
                await conn.send(event)
                await turns(2)
            conn.close()

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            first = (await body_of(t, server.url()))[1]
            second = (await body_of(t, server.url()))[1]
            return server.connections, first, second

    connections, first, second = run(go(), loop)
    assert b"".join(first) == b"".join(chat_events(["a", "b"])) == b"".join(second)
    assert connections == 2  # a close-delimited body's connection is not reused


@pytest.mark.parametrize("loop", LOOPS)
def test_a_server_closing_mid_chunk_breaks_the_read(loop: str) -> None:
    async def go() -> tuple[list[bytes], BaseException | None, RequestRecord]:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD + chunked(FIRST)[:-5] + b"40\r\n" + SECOND[:10])
            conn.close()

        received: list[bytes] = []
        error = None
        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            try:
                await collect(t, server.url(), received)
            except ReadFailed as exc:
                error = exc
            record = await exchange(t, get(server.url()))
        return received, error, record

    received, error, record = run(go(), loop)
    assert isinstance(error, ReadFailed)
    assert b"".join(received) == FIRST + SECOND[:10]  # all before the break was handed on
    assert record.error_kind is ErrorKind.TRUNCATED
    assert len(record.token_times_ns) == 1


def test_keep_alive_connections_are_reused_up_to_the_concurrency() -> None:
    async def go() -> tuple[int, int]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: SSE_HEAD + chunked(BODY))

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            for _ in range(4):
                assert await body_of(t, server.url()) == (200, [BODY])
            alone = server.connections
            for _ in range(3):
                await asyncio.gather(*(body_of(t, server.url()) for _ in range(3)))
            return alone, server.connections

    alone, together = run(go())
    assert alone == 1
    assert together == 3


def test_a_reused_connection_the_server_dropped_is_retried_on_a_new_one() -> None:
    async def go() -> tuple[list[tuple[int, list[bytes]]], int]:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD + chunked(BODY))
            if server.connections == 1:
                await conn.request()  # the next request came on the kept-alive connection
                conn.close()  # ...and the server drops it unanswered
            else:
                await serve_each(conn, lambda _: SSE_HEAD + chunked(BODY))

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            results = [await body_of(t, server.url()) for _ in range(2)]
            return results, server.connections

    results, connections = run(go())
    assert results == [(200, [BODY]), (200, [BODY])]
    assert connections == 2


def test_a_fresh_connection_closed_unanswered_fails_to_connect() -> None:
    async def go() -> BaseException:
        async def handler(conn: Conn) -> None:
            await conn.request()
            conn.close()

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            with pytest.raises(ConnectFailed) as caught:
                await body_of(t, server.url())
            return caught.value

    assert "closed" in str(run(go()))


def test_a_4xx_body_is_read_and_the_connection_kept() -> None:
    async def go() -> tuple[tuple[int, list[bytes]], tuple[int, list[bytes]], int]:
        not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno route!"
        answers = iter([not_found, SSE_HEAD + chunked(BODY)])

        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: next(answers))

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            missing = await body_of(t, server.url())
            found = await body_of(t, server.url())
            return missing, found, server.connections

    missing, found, connections = run(go())
    assert missing == (404, [b"no route!"])
    assert found == (200, [BODY])
    assert connections == 1


def test_interim_responses_are_skipped_and_headers_read_without_case() -> None:
    async def go() -> tuple[int, str | None, str | None, bool]:
        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            await conn.send(
                b"HTTP/1.1 200 OK\r\nX-Thing: a\r\nx-thing: b\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 2\r\n\r\nok"
            )

        async with (
            raw_server(handler) as server,
            KernelTransport(timeouts=TIMEOUTS) as t,
            t.stream(get(server.url())) as response,
        ):
            _ = [d async for _, d in response.chunks()]
            return (
                response.status,
                response.headers.get("Content-Type"),
                response.headers.get("X-THING"),
                "content-length" in response.headers,
            )

    assert run(go()) == (200, "text/plain", "a, b", True)


def test_the_request_goes_out_whole_even_when_large() -> None:
    body = bytes(range(256)) * 8192  # 2 MiB: more than one send takes

    async def go() -> bytes:
        seen: list[bytes] = []

        async def handler(conn: Conn) -> None:
            request = await conn.request()
            assert request is not None
            seen.append(request)
            await conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            request = HttpRequest(method="POST", url=server.url("/in?x=1"), headers={}, body=body)
            async with t.stream(request) as response:
                assert response.status == 204
                assert [d async for _, d in response.chunks()] == []
        return seen[0]

    seen = run(go())
    head, _, received = seen.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /in?x=1 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in head.lower()
    assert received == body


def test_no_bytes_within_the_idle_timeout_times_the_read_out() -> None:
    async def go() -> tuple[list[bytes], float]:
        release = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(SSE_HEAD + chunked(BODY)[:-5])
            await release.wait()

        short = Timeouts(connect_s=5, ttft_s=60, idle_s=0.2, total_s=120)
        received: list[bytes] = []
        async with raw_server(handler) as server, KernelTransport(timeouts=short) as t:
            started = time.monotonic()
            with pytest.raises(ReadTimedOut):
                await collect(t, server.url(), received)
            waited = time.monotonic() - started
            release.set()
        return received, waited

    received, waited = run(go())
    assert received == [BODY]
    # not before the idle timeout; the upper bound only tells the idle timer apart from the
    # others (a minute and more), however late a busy machine runs it
    assert 0.2 <= waited < 30


def test_leaving_a_stream_early_closes_its_connection() -> None:
    async def go() -> tuple[tuple[int, list[bytes]], int]:
        gone = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            if server.connections > 1:
                await conn.send(SSE_HEAD + chunked(BODY))
                return
            try:
                await conn.send(SSE_HEAD)
                for _ in range(50):
                    await conn.send(chunked(BODY)[:-5])  # a chunk, not the last one
                    await turns(1)
                await conn.reader.read()  # until the client's close
            except ConnectionError:
                pass
            gone.set()

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            async with t.stream(get(server.url())) as response:
                async for _ in response.chunks():
                    break
            await asyncio.wait_for(gone.wait(), 5)
            return await body_of(t, server.url()), server.connections

    after, connections = run(go())
    assert after == (200, [BODY])
    assert connections == 2  # the half-read connection was closed, not reused


def test_unreachable_targets_fail_to_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    async def go() -> list[str]:
        messages = []
        async with KernelTransport(timeouts=TIMEOUTS) as t:
            for url in (f"http://127.0.0.1:{port}/", "ftp://127.0.0.1/", "http:///nohost"):
                with pytest.raises(ConnectFailed) as caught:
                    await body_of(t, url)
                messages.append(str(caught.value))
        return messages

    refused, scheme, host = run(go())
    assert "cannot reach" in refused
    assert "not an http" in scheme
    assert "not an http" in host


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("with_head", [True, False], ids=["with the head", "after the head"])
def test_a_chunk_read_together_with_a_broken_size_line_comes_before_the_failure(
    loop: str, with_head: bool
) -> None:
    # one read: a whole chunk, then a size line that is not hexadecimal
    broken = chunked(FIRST)[:-5] + b"zz\r\n"

    async def go() -> tuple[int, list[tuple[int, bytes]], BaseException | None, RequestRecord]:
        head_read = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            if with_head or server.connections > 1:  # the record's request: all at once
                await conn.send(SSE_HEAD + broken)
            else:
                await conn.send(SSE_HEAD)
                await head_read.wait()
                await conn.send(broken)
            await conn.reader.read()  # the connection stays open until the client's close

        received: list[tuple[int, bytes]] = []
        error = None
        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            try:
                async with t.stream(get(server.url())) as response:
                    t_headers_ns = response.t_headers_ns
                    head_read.set()
                    async for arrival_ns, data in response.chunks():
                        received.append((arrival_ns, data))
            except ReadFailed as exc:
                error = exc
            record = await exchange(t, get(server.url()))
        return t_headers_ns, received, error, record

    t_headers_ns, received, error, record = run(go(), loop)
    assert isinstance(error, ReadFailed)
    assert [data for _, data in received] == [FIRST]
    [(arrival_ns, _)] = received
    assert (arrival_ns == t_headers_ns) if with_head else (arrival_ns > t_headers_ns)
    assert record.error_kind is ErrorKind.TRUNCATED
    assert len(record.token_times_ns) == 1
    assert record.t_first_token_ns == record.token_times_ns[0] > 0
