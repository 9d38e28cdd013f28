"""TLS through memory BIOs: the stamps stay those of the encrypted segments."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ConnectFailed, ReadFailed
from harness.transports import HttpRequest, Timeouts
from harness.transports.kernel import KernelTransport
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
EVENTS = chat_events([f"w{i}" for i in range(20)])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    from tests.transports.servers import self_signed

    return self_signed(tmp_path_factory.mktemp("tls"))


def contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def stream_events(conn: Conn) -> None:
    while await conn.request() is not None:
        await conn.send(SSE_HEAD)
        for event in EVENTS:
            await conn.send(chunked(event)[:-5])
            await turns(2)
        await conn.send(b"0\r\n\r\n")


async def collect(transport: KernelTransport, request: HttpRequest, into: list[bytes]) -> None:
    async with transport.stream(request) as response:
        async for _, data in response.chunks():
            into.append(data)


async def stamped(transport: KernelTransport, url: str) -> tuple[str, list[tuple[int, int, bytes]]]:
    async with transport.stream(HttpRequest(method="GET", url=url, headers={})) as response:
        chunks = [(arrival, response.user_ns, data) async for arrival, data in response.chunks()]
        return response.clock_source, chunks


@pytest.mark.parametrize("loop", LOOPS)
def test_a_tls_stream_is_read_whole_with_kernel_stamps(certificate, loop: str) -> None:
    server_tls, client_tls = contexts(certificate)

    async def go() -> tuple[list[tuple[str, list[tuple[int, int, bytes]]]], int]:
        async with (
            raw_server(stream_events, tls=server_tls) as server,
            KernelTransport(timeouts=TIMEOUTS, ssl_context=client_tls) as transport,
        ):
            url = server.url(scheme="https")
            results = [await stamped(transport, url) for _ in range(3)]
            return results, server.connections

    results, connections = run(go(), loop)
    assert connections == 1  # kept alive through TLS
    for source, chunks in results:
        assert source == "kernel"
        assert b"".join(data for _, _, data in chunks) == b"".join(EVENTS)
        arrivals = [arrival for arrival, _, _ in chunks]
        assert arrivals == sorted(arrivals)
        assert all(arrival <= user for arrival, user, _ in chunks)


def test_an_untrusted_certificate_fails_to_connect(certificate) -> None:
    server_tls, _ = contexts(certificate)

    async def go() -> str:
        async with (
            raw_server(stream_events, tls=server_tls) as server,
            KernelTransport(timeouts=TIMEOUTS) as transport,  # the system's trust store
        ):
            with pytest.raises(ConnectFailed) as caught:
                await stamped(transport, server.url(scheme="https"))
            return str(caught.value)

    assert "certificate" in run(go()).lower()


def test_a_tls_server_closing_mid_body_breaks_the_read(certificate) -> None:
    server_tls, client_tls = contexts(certificate)

    async def cut(conn: Conn) -> None:
        await conn.request()
        await conn.send(SSE_HEAD + chunked(EVENTS[0])[:-5] + b"80\r\n" + EVENTS[1][:5])
        conn.close()

    async def go() -> list[bytes]:
        received: list[bytes] = []
        async with (
            raw_server(cut, tls=server_tls) as server,
            KernelTransport(timeouts=TIMEOUTS, ssl_context=client_tls) as transport,
        ):
            request = HttpRequest(method="GET", url=server.url(scheme="https"), headers={})
            with pytest.raises(ReadFailed):
                await collect(transport, request, received)
        return received

    assert b"".join(run(go())) == EVENTS[0] + EVENTS[1][:5]
