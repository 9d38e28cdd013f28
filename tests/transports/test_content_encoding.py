"""Content codings: every transport asks for identity, decodes gzip and deflate read by
read (each piece keeps its read's stamp), and refuses any other coding by name."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ReadFailed
from harness.load.exchange import run_exchange
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.transports import TRANSPORTS, HttpRequest, Timeouts, make_transport
from harness.transports.base import Transport
from harness.transports.encoding import MAX_PIECE, BodyDecoder, content_coding
from tests.transports.servers import (
    LOOPS,
    Conn,
    RawServer,
    chat_events,
    chunked,
    raw_server,
    run,
    serve_each,
)

TIMEOUTS = Timeouts(connect_s=5, ttft_s=10, idle_s=10, total_s=20)
EVENTS = chat_events(["one", "two", "three"])
BODY = b"".join(EVENTS)


def head(coding: str, *, status: bytes = b"200 OK", length: int | None = None) -> bytes:
    framing = (
        b"Content-Length: %d" % length if length is not None else b"Transfer-Encoding: chunked"
    )
    return (
        b"HTTP/1.1 %s\r\nContent-Type: text/event-stream\r\nContent-Encoding: %s\r\n%s\r\n\r\n"
        % (status, coding.encode(), framing)
    )


def compressor(coding: str) -> zlib._Compress:
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "bare deflate": -15}[coding]
    return zlib.compressobj(wbits=wbits)


def flushed(coding: str, events: list[bytes]) -> list[bytes]:
    """``events`` compressed as one stream, each flushed so it can be read alone."""
    squeeze = compressor(coding)
    pieces = [squeeze.compress(event) + squeeze.flush(zlib.Z_SYNC_FLUSH) for event in events]
    pieces[-1] += squeeze.flush()
    return pieces


def wire_name(coding: str) -> str:
    return "deflate" if coding == "bare deflate" else coding


def get(url: str, **headers: str) -> HttpRequest:
    return HttpRequest(method="GET", url=url, headers=headers)


@asynccontextmanager
async def against(
    handler: Callable[[Conn], Awaitable[None]], name: str
) -> AsyncIterator[tuple[RawServer, Transport]]:
    """A scripted server, and the transport called ``name`` to talk to it."""
    async with (
        raw_server(handler) as server,
        make_transport(name, timeouts=TIMEOUTS, connections=1) as transport,
    ):
        yield server, transport


async def reads_of(transport: Transport, url: str) -> list[tuple[int, bytes]]:
    async with transport.stream(get(url)) as response:
        return [read async for read in response.chunks()]


async def exchange(transport: Transport, url: str) -> RequestRecord:
    record = RequestRecord(request_id="c")
    await run_exchange(transport, get(url), record, dialect=None, timeouts=TIMEOUTS)
    return record


# -- what is asked for ------------------------------------------------------------------


@pytest.mark.parametrize("name", TRANSPORTS)
def test_every_transport_asks_for_identity_unless_the_request_says(name: str) -> None:
    async def go() -> list[bytes]:
        seen: list[bytes] = []

        async def handler(conn: Conn) -> None:
            while (request := await conn.request()) is not None:
                seen.append(request.lower())
                await conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")

        async with raw_server(handler) as server:
            transport = make_transport(name, timeouts=TIMEOUTS, connections=1)
            async with transport:
                for request in (get(server.url()), get(server.url(), **{"Accept-Encoding": "br"})):
                    async with transport.stream(request) as response:
                        assert response.status == 204
        return seen

    plain, own = run(go())
    assert b"\r\naccept-encoding: identity\r\n" in plain
    assert plain.count(b"accept-encoding") == 1
    assert b"\r\naccept-encoding: br\r\n" in own
    assert own.count(b"accept-encoding") == 1


# -- what is decoded --------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("coding", ["gzip", "deflate", "bare deflate"])
@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_compressed_stream_is_decoded_by_every_transport(
    name: str, coding: str, loop: str
) -> None:
    pieces = flushed(coding, EVENTS)
    answers = {
        "/chunked": head(wire_name(coding)) + chunked(*pieces),
        "/length": head(wire_name(coding), length=len(b"".join(pieces))) + b"".join(pieces),
    }

    async def go() -> tuple[list[RequestRecord], list[bytes]]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda request: answers[request.split(b" ")[1].decode()])

        async with against(handler, name) as (server, transport):
            records = [await exchange(transport, server.url(path)) for path in answers]
            bodies = [
                b"".join(data for _, data in await reads_of(transport, server.url(path)))
                for path in answers
            ]
        return records, bodies

    records, bodies = run(go(), loop)
    assert bodies == [BODY, BODY]
    for record in records:
        assert record.outcome is Outcome.OK, record.error_message
        assert record.events == len(EVENTS)  # three tokens and [DONE]
        assert len(record.token_times_ns) == 3
        assert record.done_sentinel


@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_compressed_stream_is_decoded_read_by_read_with_each_reads_arrival(name: str) -> None:
    pieces = flushed("gzip", EVENTS)

    async def go() -> list[tuple[int, bytes]]:
        asked: list[asyncio.Event] = [asyncio.Event() for _ in pieces]

        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(head("gzip"))
            for piece, ask in zip(pieces, asked, strict=True):
                await ask.wait()  # the next event goes out once the last one was read
                await conn.send(chunked(piece)[:-5])
            await conn.send(b"0\r\n\r\n")

        async def read_asking(transport: Transport, url: str) -> list[tuple[int, bytes]]:
            reads: list[tuple[int, bytes]] = []
            async with transport.stream(get(url)) as response:
                asked[0].set()
                async for arrival_ns, data in response.chunks():
                    reads.append((arrival_ns, data))
                    if len(reads) < len(asked):
                        asked[len(reads)].set()
            return reads

        async with against(handler, name) as (server, transport):
            return await read_asking(transport, server.url())

    reads = run(go())
    assert [data for _, data in reads] == EVENTS  # each event decoded before the next was sent
    stamps = [arrival_ns for arrival_ns, _ in reads]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_compressed_error_body_is_decoded_into_the_record(name: str) -> None:
    refused = gzip.compress(b'{"error": "slow down"}')
    answer = head("gzip", status=b"429 Too Many Requests", length=len(refused)) + refused

    async def go() -> RequestRecord:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: answer)

        async with against(handler, name) as (server, transport):
            return await exchange(transport, server.url())

    record = run(go())
    assert record.error_kind is ErrorKind.RATE_LIMITED
    assert "slow down" in (record.error_message or "")


@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_body_that_inflates_far_is_handed_on_in_bounded_pieces(name: str) -> None:
    inflated = b": " + b"x" * (3 * MAX_PIECE + 17) + b"\n\n" + BODY
    squeezed = gzip.compress(inflated)

    async def go() -> list[tuple[int, bytes]]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: head("gzip") + chunked(squeezed))

        async with against(handler, name) as (server, transport):
            return await reads_of(transport, server.url())

    reads = run(go())
    assert b"".join(data for _, data in reads) == inflated
    assert max(len(data) for _, data in reads) <= MAX_PIECE


# -- what is refused --------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["br", "zstd", "x-gzip", "compress", "gzip, gzip", "gzip, br"])
@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_coding_not_decoded_here_fails_the_read_and_names_it(name: str, coding: str) -> None:
    body = gzip.compress(gzip.compress(BODY)) if coding == "gzip, gzip" else b"\x8b\x0b\x80" + BODY
    # several codings come as one line or as one line each
    lines = "\r\nContent-Encoding: ".join(coding.split(", ")) if "br" in coding else coding

    async def go() -> tuple[BaseException | None, RequestRecord]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: head(lines) + chunked(body))

        error = None
        async with against(handler, name) as (server, transport):
            try:
                await reads_of(transport, server.url())
            except ReadFailed as exc:
                error = exc
            record = await exchange(transport, server.url())
        return error, record

    error, record = run(go())
    assert isinstance(error, ReadFailed)
    assert f"Content-Encoding: {coding}" in str(error)
    assert record.outcome is Outcome.ERROR
    assert f"Content-Encoding: {coding}" in (record.error_message or "")
    assert record.events == 0


@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_broken_gzip_body_fails_the_read_after_what_came_before(name: str) -> None:
    async def go() -> tuple[list[bytes], BaseException | None]:
        first_read = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            await conn.send(head("gzip") + chunked(flushed("gzip", EVENTS)[0])[:-5])
            await first_read.wait()
            await conn.send(chunked(b"\xff" * 64)[:-5])
            await conn.reader.read()  # until the client's close

        reads: list[bytes] = []
        error = None
        async with against(handler, name) as (server, transport):
            try:
                async with transport.stream(get(server.url())) as response:
                    async for _, data in response.chunks():
                        reads.append(data)
                        first_read.set()
            except ReadFailed as exc:
                error = exc
        return reads, error

    reads, error = run(go())
    assert isinstance(error, ReadFailed)
    assert "gzip coding is broken" in str(error)
    assert reads == [EVENTS[0]]


@pytest.mark.parametrize("name", TRANSPORTS)
def test_an_empty_body_in_a_coding_not_decoded_here_is_no_error(name: str) -> None:
    async def go() -> list[tuple[int, bytes]]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: head("br", length=0))

        async with against(handler, name) as (server, transport):
            return await reads_of(transport, server.url())

    assert run(go()) == []


# -- the decoder, without sockets -------------------------------------------------------


def decode(coding: str, feeds: list[bytes]) -> bytes:
    decoder = BodyDecoder(coding)
    return b"".join(itertools.chain.from_iterable(decoder.feed(f) for f in feeds)) + decoder.flush()


@pytest.mark.parametrize("coding", ["gzip", "deflate", "bare deflate"])
def test_the_decoder_reads_whole_and_byte_by_byte(coding: str) -> None:
    squeezed = b"".join(flushed(coding, EVENTS))
    name = wire_name(coding)
    assert decode(name, [squeezed]) == BODY
    assert decode(name, [squeezed[i : i + 1] for i in range(len(squeezed))]) == BODY


@given(st.sampled_from(["gzip", "deflate", "bare deflate"]), st.data())
def test_the_decoder_reads_any_split(coding: str, data: st.DataObject) -> None:
    squeezed = b"".join(flushed(coding, EVENTS))
    points = sorted(set(data.draw(st.lists(st.integers(min_value=1, max_value=len(squeezed) - 1)))))
    feeds = [squeezed[a:b] for a, b in itertools.pairwise([0, *points, len(squeezed)])]
    assert decode(wire_name(coding), feeds) == BODY


def test_gzip_members_one_after_the_other_are_read_in_turn() -> None:
    members = [gzip.compress(event) for event in EVENTS]
    assert decode("gzip", [b"".join(members)]) == BODY
    assert decode("gzip", members) == BODY


@pytest.mark.parametrize(
    ("value", "coding"),
    [(None, None), ("", None), ("identity", None), (" GZip ", "gzip"), ("deflate", "deflate"),
     ("identity, br", "br"), ("gzip, br", "gzip, br")],
)  # fmt: skip
def test_the_coding_is_read_from_the_headers(value: str | None, coding: str | None) -> None:
    assert content_coding(value) == coding
