"""Hostile connections: idle ones, unfinished request heads and stalled bodies are ended.

Each test configures a short timeout (0.2 s) and waits for the server to act with a
generous deadline, so a busy machine only makes a test slower, never wrong.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from mock_server.server import RunningMock

pytestmark = pytest.mark.slow  # each test waits for a server's timeout on a real socket

SHORT_S = 0.2
DEADLINE_S = 10.0
CHAT_BODY = b'{"messages": [{"role": "user", "content": "hi"}]}'


async def talk(mock: RunningMock, *writes: bytes) -> bytes:
    """Connect, send ``writes``, and read until the server closes (or fail at the deadline)."""
    reader, writer = await asyncio.open_connection(mock.host, mock.port)
    try:
        for data in writes:
            writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), DEADLINE_S)  # b"" or more, then EOF
    finally:
        writer.close()


def test_a_connection_that_sends_nothing_is_closed(make_mock) -> None:
    mock = make_mock(keepalive_timeout_s=SHORT_S)
    assert asyncio.run(talk(mock)) == b""


def test_a_request_head_left_unfinished_is_closed(make_mock) -> None:
    mock = make_mock(keepalive_timeout_s=SHORT_S)
    half = b"POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\nContent-Le"
    assert asyncio.run(talk(mock, half)) == b""
    assert mock.metrics_snapshot()["requests"] == []  # no request ever reached a handler


def test_a_kept_alive_connection_idle_after_its_answer_is_closed(make_mock) -> None:
    mock = make_mock(keepalive_timeout_s=SHORT_S)
    answer = asyncio.run(talk(mock, b"GET /healthz HTTP/1.1\r\nHost: mock\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 200 ")  # answered, kept alive, then closed when idle
    assert b'"status": "ok"' in answer


def test_a_body_that_stalls_gets_408_and_the_connection_closes(make_mock) -> None:
    mock = make_mock(body_timeout_s=SHORT_S)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(CHAT_BODY)
    )
    answer = asyncio.run(talk(mock, head + CHAT_BODY[:10]))  # the rest never comes
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"Connection: close" in headers
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert "did not arrive within 0.2 s" in error["message"]
    assert mock.metrics_snapshot()["requests"] == [["/v1/chat/completions", 408, 1]]
    request_id = next(
        line.split(b": ")[1].decode()
        for line in headers.split(b"\r\n")
        if line.lower().startswith(b"x-mock-request-id")
    )
    truth = mock.truth(request_id)
    assert truth is not None
    assert (truth["status"], truth["outcome"], truth["done"]) == (408, "error", True)


def test_a_chunked_body_that_stalls_gets_408_in_the_anthropic_shape(make_mock) -> None:
    mock = make_mock(body_timeout_s=SHORT_S)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: mock\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer = asyncio.run(talk(mock, head + b'5\r\n{"mod\r\n'))
    assert answer.startswith(b"HTTP/1.1 408 ")
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"


def test_a_complete_request_on_a_live_connection_is_answered(make_mock) -> None:
    mock = make_mock(keepalive_timeout_s=SHORT_S, body_timeout_s=SHORT_S)
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(CHAT_BODY)
    ) + CHAT_BODY
    answer = asyncio.run(talk(mock, request))
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b'"finish_reason":"stop"' in answer


def test_a_client_gone_before_slow_headers_is_a_disconnect_not_a_500(make_mock) -> None:
    mock = make_mock()
    body = b'{"stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\nX-Mock-Fault: slow_headers=1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body

    async def send_and_leave() -> None:
        _, writer = await asyncio.open_connection(mock.host, mock.port)
        writer.write(request)
        await writer.drain()
        deadline = time.monotonic() + DEADLINE_S
        while mock.metrics_snapshot()["active"] == 0:  # each look is a round trip to it
            assert time.monotonic() < deadline, "the request was never admitted"
        writer.close()  # admitted, waiting for its headers' time: leave now
        await writer.wait_closed()

    asyncio.run(send_and_leave())
    truth = mock.truth("0-000001", wait_s=DEADLINE_S)  # the first request of a new server
    assert truth is not None
    assert truth["done"]
    assert truth["outcome"] == "disconnected"
    assert truth["disconnect_detected_ns"] is not None
    assert truth["tokens_sent"] == 0
    snapshot = mock.metrics_snapshot()
    assert snapshot["counters"]["client_disconnects"] == 1
    assert all(status != 500 for _, status, _ in snapshot["requests"])
