"""The plain head reader says what h11 says of every head it reads, and the kernel
transport reads the same responses with it as with h11 alone."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.transports import HttpRequest, Timeouts
from harness.transports.kernel import KernelTransport
from harness.transports.plain_head import (
    LAST_CHUNK,
    PlainHead,
    asked,
    plain_head,
    replayed,
    request_bytes,
)
from tests.transports.servers import SSE_HEAD, Conn, chunked, raw_server, run, serve_each

TIMEOUTS = Timeouts(connect_s=5, ttft_s=10, idle_s=10, total_s=20)
POST = h11.Request(
    method="POST",
    target="/v1/chat/completions",
    headers=[("Host", "127.0.0.1"), ("Content-Length", "2")],
)
MOCK_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Mock-Request-Id: mock-1\r\nTransfer-Encoding: chunked\r\n"
    b"Date: Thu, 03 Dec 2026 13:00:00 GMT\r\nServer: Python/3.11 aiohttp/3.9.5\r\n\r\n"
)


def h11_reading(raw: bytes, request: h11.Request) -> PlainHead | str:
    """What h11 makes of ``raw`` answering ``request``, in ``plain_head``'s terms: a
    ``PlainHead`` for a response whose body h11 reads as chunked, else what it read."""
    h = h11.Connection(h11.CLIENT)
    h.send(request)
    h.send(h11.Data(data=b"{}"))
    h.send(h11.EndOfMessage())
    try:
        h.receive_data(raw)
        event = h.next_event()
    except h11.ProtocolError as exc:
        return f"refused: {exc}"
    if type(event) is not h11.Response:
        return f"not a final response: {event!r}"
    headers = list(event.headers)
    chunked = h.their_state is h11.SEND_BODY and any(
        name == b"transfer-encoding" for name, _ in headers
    )
    if not chunked:
        return "not chunked"
    try:
        h.receive_data(LAST_CHUNK)
        while type(h.next_event()) is not h11.EndOfMessage:
            pass
    except h11.ProtocolError as exc:
        return f"refused the end: {exc}"
    keep_alive = h.our_state is h11.DONE and h.their_state is h11.DONE
    return PlainHead(event.status_code, headers, keep_alive)


# Heads as servers send them, with now and then something h11 reads apart: another
# status, a framing header more or less, a name or value of other bytes, a fold, a bare LF.
ODD_STATUS_LINES = [
    b"HTTP/1.1 200\r\n",
    b"HTTP/1.1 204 No Content\r\n",
    b"HTTP/1.1 304 Not Modified\r\n",
    b"HTTP/1.1 100 Continue\r\n",
    b"HTTP/1.0 200 OK\r\n",
    b"HTTP/1.1 200 OK\n",
    b"HTTP/1.1 200 \xc3\xa9\r\n",
    b"HTTP/1.1 2000 OK\r\n",
]
NAMES = [b"Content-Type", b"Cache-Control", b"X-Request-Id", b"Connection", b"Server"]
ODD_NAMES = [b"Transfer-Encoding", b"Content-Length", b"Bad Name", b"", b"X\x7fY"]
VALUES = [b"text/event-stream", b"no-cache", b"close", b"keep-alive", b"Keep-Alive, close",
          b" close ", b"", b"a\tb", b"  padded  ", b"upgrade,CLOSE", b"12", b"gzip"]  # fmt: skip
ODD_VALUES = [b"caf\xc3\xa9", b"x\x00y"]
CODINGS = [b"chunked", b"Chunked", b"CHUNKED", b" chunked "]
ODD_CODINGS = [b"gzip, chunked", b"chunked, chunked", b"identity"]


@st.composite
def heads(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A head, and whether it is plain: nothing odd drawn, and chunked."""
    odd = False

    def pick(usual: list[bytes], unusual: list[bytes]) -> bytes:
        nonlocal odd
        if draw(st.integers(0, 19)) == 0:
            odd = True
            return draw(st.sampled_from(unusual))
        return draw(st.sampled_from(usual))

    if draw(st.integers(0, 9)) == 0:
        odd = True
        lines = [draw(st.sampled_from(ODD_STATUS_LINES))]
    else:
        status = draw(st.sampled_from([b"200", b"201", b"404", b"429", b"500", b"503"]))
        reason = draw(st.sampled_from([b"OK", b"", b"Not Found", b"Too  Many\tRequests"]))
        lines = [b"HTTP/1.1 " + status + b" " + reason + b"\r\n"]
    fields = [
        (pick(NAMES, ODD_NAMES), pick(VALUES, ODD_VALUES)) for _ in range(draw(st.integers(0, 4)))
    ]
    chunked = bool(draw(st.integers(0, 9)))
    if chunked:
        coding = (b"Transfer-Encoding", pick(CODINGS, ODD_CODINGS))
        fields.insert(draw(st.integers(0, len(fields))), coding)
    for name, value in fields:
        separator = draw(st.sampled_from([b": ", b":", b":\t", b":  "]))
        lines.append(name + separator + value + pick([b"\r\n"], [b"\n"]))
        if draw(st.integers(0, 29)) == 0:
            odd = True
            lines.append(b" folded\r\n")
    return b"".join(lines) + b"\r\n", chunked and not odd


@settings(max_examples=500)
@given(head=heads(), close=st.booleans())
def test_a_head_read_here_is_read_the_same_by_h11(head: tuple[bytes, bool], close: bool) -> None:
    raw, plain_kind = head
    headers = [("Host", "127.0.0.1"), ("Content-Length", "2")]
    if close:
        headers.append(("Connection", "close"))
    request = h11.Request(method="POST", target="/", headers=headers)
    plain = plain_head(raw, asked(request))
    if plain is not None:
        assert h11_reading(raw, request) == plain
    assert (plain is not None) == plain_kind  # the plain kind is read here, and only it


def test_the_mock_s_head_is_read_here() -> None:
    plain = plain_head(MOCK_HEAD, asked(POST))
    assert plain is not None
    assert plain.status == 200
    assert (b"x-mock-request-id", b"mock-1") in plain.headers
    assert plain.keep_alive
    assert h11_reading(MOCK_HEAD, POST) == plain


@pytest.mark.parametrize(
    "raw",
    [
        SSE_HEAD.replace(b"200 OK", b"100 Continue"),  # an interim response: h11 reads past it
        SSE_HEAD.replace(b"Content-Type: text/event-stream\r\n", b"X-A: 1\r\n b\r\n"),  # fold
        SSE_HEAD.replace(b"\r\n", b"\n"),  # bare line feeds
        SSE_HEAD.replace(b"chunked", b"gzip, chunked"),
        SSE_HEAD.replace(b"Transfer-Encoding: chunked", b"Content-Length: 3"),
        SSE_HEAD.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n"),
        SSE_HEAD.replace(b"200 OK", b"204 No Content"),
        SSE_HEAD.replace(b"200 OK", b"304 Not Modified"),
    ],
)
def test_a_head_of_another_kind_is_left_to_h11(raw: bytes) -> None:
    assert plain_head(raw, asked(POST)) is None


@pytest.mark.parametrize(
    ("connection", "keep_alive"),
    [(b"keep-alive", True), (b"Keep-Alive, Close", False), (b"upgrade,close ", False)],
)
def test_a_response_asking_to_close_is_not_kept_alive(connection: bytes, keep_alive: bool) -> None:
    raw = SSE_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: " + connection + b"\r\n\r\n")
    plain = plain_head(raw, asked(POST))
    assert plain is not None
    assert plain.keep_alive is keep_alive
    assert h11_reading(raw, POST) == plain


def test_a_head_request_is_left_to_h11() -> None:
    head = h11.Request(method="HEAD", target="/", headers=[("Host", "a")])
    assert plain_head(SSE_HEAD, asked(head)) is None


@pytest.mark.parametrize(
    ("extra", "body_bytes", "plain"),
    [
        ([], 2, True),
        ([("Connection", "close")], 2, True),
        ([("Expect", "100-continue")], 2, False),
        ([("Transfer-Encoding", "chunked")], 0, False),
    ],
)
def test_a_request_goes_out_plain_only_as_h11_would_send_it(
    extra: list[tuple[str, str]], body_bytes: int, plain: bool
) -> None:
    length = [("Content-Length", str(body_bytes))] if body_bytes else []
    head = h11.Request(method="POST", target="/", headers=[("Host", "a"), *length, *extra])
    sent = request_bytes(head, body_bytes)
    assert (sent is not None) == plain
    if sent is not None:
        assert sent == h11.Connection(h11.CLIENT).send(head)


def test_a_stated_length_that_is_not_the_body_s_is_left_to_h11() -> None:
    head = h11.Request(method="POST", target="/", headers=[("Host", "a"), ("Content-Length", "5")])
    assert request_bytes(head, 2) is None
    assert request_bytes(head, 5) is not None


def test_a_replayed_exchange_stands_at_the_body() -> None:
    h = replayed(POST, b"{}", MOCK_HEAD)
    h.receive_data(b"3\r\nabc\r\n0\r\nx-end: 1\r\n\r\n")
    data = h.next_event()
    assert type(data) is h11.Data
    assert data.data == b"abc"
    end = h.next_event()
    assert type(end) is h11.EndOfMessage
    assert list(end.headers) == [(b"x-end", b"1")]


# -- the kernel transport, on its plain path -------------------------------------------


def post(url: str, **headers: str) -> HttpRequest:
    return HttpRequest(method="POST", url=url, headers=headers, body=b"{}")


async def body_of(transport: KernelTransport, request: HttpRequest) -> tuple[int, list[bytes]]:
    async with transport.stream(request) as response:
        return response.status, [data async for _, data in response.chunks()]


@pytest.mark.parametrize(
    ("response_head", "request_headers", "connections"),
    [
        (SSE_HEAD, {}, 1),
        (SSE_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), {}, 3),
        (SSE_HEAD, {"Connection": "close"}, 3),
        (SSE_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n"), {}, 1),
    ],
)
def test_a_plain_exchange_keeps_the_connection_only_when_neither_side_closes(
    response_head: bytes, request_headers: dict[str, str], connections: int
) -> None:
    async def go() -> tuple[list[tuple[int, list[bytes]]], int]:
        async def handler(conn: Conn) -> None:
            await serve_each(conn, lambda _: response_head + chunked(b"data: a\n\n"))

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            request = post(server.url(), **request_headers)
            results = [await body_of(t, request) for _ in range(3)]
            return results, server.connections

    results, used = run(go())
    assert results == [(200, [b"data: a\n\n"])] * 3
    assert used == connections


def test_bytes_after_the_end_of_a_response_close_its_connection() -> None:
    async def go() -> tuple[list[tuple[int, list[bytes]]], int]:
        async def handler(conn: Conn) -> None:
            extra = b"HTTP/1.1 200 OK\r\n" if server.connections == 1 else b""
            # one write: the extra bytes come in the read that ends the body
            await serve_each(conn, lambda _: SSE_HEAD + chunked(b"data: a\n\n") + extra)

        async with raw_server(handler) as server, KernelTransport(timeouts=TIMEOUTS) as t:
            results = [await body_of(t, post(server.url())) for _ in range(2)]
            return results, server.connections

    results, used = run(go())
    assert results == [(200, [b"data: a\n\n"])] * 2
    assert used == 2  # the first connection, with bytes no request asked for, was dropped
