"""The baseline of ``sse-harness calibrate --baseline``: the least a Python client does.

Each stream is an asyncio ``Protocol`` on a connection of its own. It writes one request
for the embedded mock's chat stream, stamps every read as the event loop hands it over,
and counts in it the events (``data:`` lines) and the token events (content deltas): a
byte scan each, with no HTTP library, no chunk framing, no JSON and no record beyond the
stamps. Its arrival lag and CPU per event, measured beside the transports on the same
mock, core and event loop, are this machine's floor; a transport's figure divided by the
baseline's is what the harness itself costs, whatever the machine.

It reads only the mock's ``openai-chat`` stream, whose content deltas open with
``"delta":{"content":"``; it is a yardstick, not a client.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import cast

from harness.load.recorder import fail
from harness.record import ErrorKind, RequestRecord

__all__ = ["MAX_HEAD_BYTES", "mock_chat_request", "read_streams"]

#: A response head longer than this is an error here.
MAX_HEAD_BYTES = 64 * 1024
#: Bytes of an unfinished event carried to the next read before the stream is an error.
MAX_CARRY_BYTES = 1024 * 1024
_EVENT = b"data: "
_TOKEN = b'"delta":{"content":"'
_LAST_CHUNK = b"0\r\n\r\n"
_CHUNK_ENDS = (b"\r", b"\r\n")  # what may follow an event's end in a read, not carried
_REQUEST_ID = re.compile(rb"\r\nx-mock-request-id: *([^\r\n]+)", re.IGNORECASE)


def mock_chat_request(port: int, tokens: int, *, close: bool = False) -> bytes:
    """The bytes of one streamed chat request to the mock on loopback ``port``, asking for
    ``tokens`` tokens; ``close`` asks the mock to close the connection after it."""
    body = b'{"model":"bench","stream":true,"messages":[{"role":"user","content":"bench"}]}'
    connection = "Connection: close\r\n" if close else ""
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Mock-Tokens: {tokens}\r\n{connection}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Stream(asyncio.Protocol):
    __slots__ = ("carry", "clock", "done", "head", "record", "request", "times", "transport")

    def __init__(
        self,
        request: bytes,
        record: RequestRecord,
        done: asyncio.Future[None],
        clock: Callable[[], int],
    ) -> None:
        self.request = request
        self.record = record
        self.done = done
        self.clock = clock
        self.head: bytes | None = b""  # None once the head is read
        self.carry = b""
        self.times = record.token_times_ns
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection's: it writes
        self.record.t_sent_ns = self.clock()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = self.clock()
        if self.head is not None:
            data = self._read_head(now, data)
            if not data:
                return
        if self.carry:
            data = self.carry + data
            self.carry = b""
        cut = data.rfind(b"\n\n") + 2  # count whole events only; carry an unfinished one
        if cut < 2 or (cut < len(data) and data[cut:] not in _CHUNK_ENDS):
            self.carry = data[cut:] if cut > 1 else data
            if len(self.carry) > MAX_CARRY_BYTES:
                self.abort(now, ErrorKind.PROTOCOL, "an event longer than 1 MiB")
            if cut < 2:
                return
            data = data[:cut]
        self.record.events += data.count(_EVENT)
        tokens = data.count(_TOKEN)
        if tokens:
            self.times.extend([now] * tokens)

    def _read_head(self, now: int, data: bytes) -> bytes:
        head = self.head + data  # type: ignore[operator]
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self.head = head
            if len(head) > MAX_HEAD_BYTES:
                self.abort(now, ErrorKind.PROTOCOL, "a response head longer than 64 KiB")
            return b""
        self.head = None
        record = self.record
        record.t_headers_ns = now
        status = head[9:12]
        record.status = int(status) if status.isdigit() else None
        if record.status != 200:
            self.abort(now, ErrorKind.HTTP_STATUS, f"HTTP {status.decode('latin-1')}")
            return b""
        found = _REQUEST_ID.search(head, 0, end + 2)
        record.mock_request_id = found.group(1).decode("latin-1").strip() if found else None
        return head[end + 4 :]

    def abort(self, now: int, kind: ErrorKind, message: str) -> None:
        """Record the stream as failed (unless it already is) and close it."""
        if self.record.ok:
            fail(self.record, kind, message, now)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        record = self.record
        if record.t_end_ns is None:
            record.t_end_ns = self.clock()
        if record.ok and self.carry.lstrip(b"\r\n") != _LAST_CHUNK:  # no last chunk read
            why = f": {exc!r}" if exc is not None else ""
            fail(record, ErrorKind.TRUNCATED, f"the connection ended mid-response{why}")
        if not self.done.done():
            self.done.set_result(None)


async def read_streams(
    port: int,
    streams: int,
    *,
    tokens: int,
    ramp_s: float,
    timeout_s: float,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[RequestRecord]:
    """Read ``streams`` chat streams of ``tokens`` tokens from the mock on loopback
    ``port``, their starts spread evenly over ``ramp_s``; every stream still open after
    ``timeout_s`` is closed and recorded as timed out.

    Returns:
        One record per stream, with its status, ``mock_request_id``, ``events`` and the
        arrival of each token event (``token_times_ns``).
    """
    loop = asyncio.get_running_loop()
    request = mock_chat_request(port, tokens, close=True)
    opened: list[_Stream] = []
    records: list[RequestRecord] = []
    start_ns = clock()
    for i in range(streams):
        delay = (start_ns + i * ramp_s * 1e9 / streams - clock()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        record = RequestRecord(request_id=f"baseline-{i}", user=i)
        records.append(record)
        stream = _Stream(request, record, loop.create_future(), clock)
        try:
            await loop.create_connection(lambda s=stream: s, "127.0.0.1", port)  # type: ignore[misc]
        except OSError as exc:
            fail(record, ErrorKind.CONNECT, f"cannot reach 127.0.0.1:{port}: {exc}", clock())
            continue
        opened.append(stream)
    pending = [s.done for s in opened]
    if pending:
        left_s = max(timeout_s - (clock() - start_ns) / 1e9, 0.0)
        _, late = await asyncio.wait(pending, timeout=left_s)
        for stream in opened:
            if not stream.done.done():
                stream.abort(clock(), ErrorKind.TIMEOUT_TOTAL, f"not ended within {timeout_s:g} s")
        if late:
            await asyncio.wait(late, timeout=5)
    return records
