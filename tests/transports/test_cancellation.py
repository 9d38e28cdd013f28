"""Every transport's stream ends at the caller's deadline, however slowly the server talks.

The exchange puts the whole request under one ``asyncio.timeout_at``; a transport that
shielded or swallowed the cancellation would let a server that sends its head a byte at
a time, or nothing but comments, hold a request past its deadline. Each server here
dribbles forever; the client's deadline must end the stream with ``TimeoutError`` and
close the connection, whatever the transport's own (long) timeouts say.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.transports import TRANSPORTS, HttpRequest, Timeouts, make_transport
from harness.transports.base import deliver
from tests.transports.servers import LOOPS, Conn, raw_server, run

pytestmark = pytest.mark.slow  # every transport against a dribbling server, to its deadline

#: The transports' own timeouts are far away: only the caller's deadline can end the wait.
PATIENT = Timeouts(connect_s=30, ttft_s=60, idle_s=60, total_s=120)
DEADLINE_S = 0.5
#: The test fails only past this: a generous bound, not a measurement.
GIVE_UP_S = 10.0
DRIBBLE_S = 0.1

HEADS = {
    "chunked": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    "close-delimited": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
}
PING = b": ping\n\n"


async def dribble(conn: Conn, phase: str) -> None:
    """Forever: the head a byte at a time, or a head and then comments alone."""
    if phase == "headers":
        head = HEADS["chunked"][:-2] + b"X-Slow: " + b"a" * 1_000_000
        for i in range(len(head)):
            conn.writer.write(head[i : i + 1])
            await asyncio.sleep(DRIBBLE_S)
        return
    await conn.send(HEADS[phase])
    ping = b"%x\r\n%s\r\n" % (len(PING), PING) if phase == "chunked" else PING
    while True:
        conn.writer.write(ping)
        await asyncio.sleep(DRIBBLE_S)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("phase", ["headers", "chunked", "close-delimited"])
@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_dribbling_server_is_cut_off_at_the_deadline_and_its_connection_closed(
    name: str, phase: str, loop: str
) -> None:
    async def go() -> tuple[float, bool, int]:
        closed = asyncio.Event()

        async def handler(conn: Conn) -> None:
            await conn.request()
            writing = asyncio.create_task(dribble(conn, phase))
            try:
                while await conn.reader.read(4096):  # until the client closes
                    pass
            except ConnectionError:
                pass
            finally:
                writing.cancel()
                closed.set()

        async with raw_server(handler) as server:
            transport = make_transport(name, timeouts=PATIENT, connections=1)
            async with transport:
                request = HttpRequest(method="GET", url=server.url(), headers={})

                async def read_within(deadline_s: float) -> None:
                    async with (
                        asyncio.timeout(deadline_s),
                        transport.stream(request) as response,
                    ):
                        await deliver(response, lambda _, data: False)

                started = time.monotonic()
                async with asyncio.timeout(GIVE_UP_S):  # only if the deadline was swallowed
                    with pytest.raises(TimeoutError):
                        await read_within(DEADLINE_S)
                waited = time.monotonic() - started
                async with asyncio.timeout(GIVE_UP_S):
                    await closed.wait()  # the server saw the connection end
            return waited, closed.is_set(), server.connections

    waited, closed, connections = run(go(), loop)
    assert waited < GIVE_UP_S
    assert closed
    assert connections == 1
