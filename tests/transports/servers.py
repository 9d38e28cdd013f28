"""Tiny HTTP/1.1 servers scripted by the transport tests, and how to run a test's loop.

Each server runs in the test's own event loop on a free loopback port; its handler is a
coroutine ``handler(conn)`` that reads requests and writes exactly the bytes the test
wants, split however the test wants.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")
LOOPS = ("asyncio", "uvloop")

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def run(coroutine: Coroutine[Any, Any, T], loop: str = "uvloop") -> T:
    """Run ``coroutine`` on a fresh event loop of the given kind."""
    return uvloop.run(coroutine) if loop == "uvloop" else asyncio.run(coroutine)


async def turns(n: int) -> None:
    """Let the event loop turn ``n`` times (a yield, not a wait)."""
    for _ in range(n):
        await asyncio.sleep(0)


def chunked(*pieces: bytes) -> bytes:
    """``pieces`` as a chunked body, each its own chunk, with the last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def chat_events(words: list[str], *, done: bool = True) -> list[bytes]:
    """OpenAI chat SSE events carrying ``words``, then ``[DONE]``."""
    events = [
        b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % w.encode() for w in words
    ]
    return [*events, b"data: [DONE]\n\n"] if done else events


class Conn:
    """One accepted connection, as the handler sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        sock = writer.get_extra_info("socket")
        if sock is not None:  # every write goes out as its own segment
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def request(self) -> bytes | None:
        """The next request's head and body; None when the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                head += await self.reader.readexactly(int(value))
        return head

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_bytewise(self, data: bytes) -> None:
        """One write per byte, so the client reads every byte alone.

        After each write the server lets the loop turn twice (yields, not waits): on
        asyncio's loop a reader callback runs one turn after its socket became
        readable, on uvloop's in the same turn.
        """
        for i in range(len(data)):
            self.writer.write(data[i : i + 1])
            await turns(2)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


class RawServer:
    def __init__(self, server: asyncio.Server) -> None:
        self.server = server
        self.port = server.sockets[0].getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def raw_server(
    handler: Callable[[Conn], Awaitable[None]], *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[RawServer]:
    """Serve ``handler`` on a free loopback port for the block's duration."""
    tasks: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
    holder: list[RawServer] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        holder[0].connections += 1
        conn = Conn(reader, writer)
        task = asyncio.current_task()
        assert task is not None
        tasks[task] = writer
        try:
            await handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            tasks.pop(task, None)
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=tls)
    holder.append(RawServer(server))
    try:
        yield holder[0]
    finally:
        server.close()
        for writer in tasks.values():
            writer.transport.abort()  # a handler waiting to read sees the end and returns
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=5)
            for task in pending:
                task.cancel()
        await server.wait_closed()


async def serve_each(conn: Conn, response: Callable[[bytes], bytes], *, bytewise: bool = False):
    """Answer every request on ``conn`` with ``response(request)``, keeping it alive."""
    while (request := await conn.request()) is not None:
        data = response(request)
        await (conn.send_bytewise(data) if bytewise else conn.send(data))


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key, made with the openssl CLI.

    Returns:
        (certificate, key) paths.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        import pytest

        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key
