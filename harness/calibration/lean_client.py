"""A lean load client for ``sse-harness bench mock``: many streams, almost no work each.

Each stream is an asyncio ``Protocol`` that sends one request, keeps the response's
``x-mock-request-id`` and counts bytes; nothing is parsed, so the client costs the mock's
benchmark as little CPU as Python allows. Run as a module in its own process (pinned to
a core of its own), it prints one JSON object. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import Sequence
from typing import cast

from harness.calibration.baseline import mock_chat_request
from harness.limits import raise_open_files_limit

__all__ = ["main"]

#: The longest the window waits for every stream's response headers.
_HEADERS_WAIT_S = 30.0
_REQUEST_ID = re.compile(rb"\r\nx-mock-request-id: *([^\r\n]+)", re.IGNORECASE)


class _Stream(asyncio.Protocol):
    __slots__ = ("bytes", "closed", "head", "request", "request_id", "transport")

    def __init__(self, request: bytes, closed: asyncio.Future[None]) -> None:
        self.request = request
        self.closed = closed
        self.head = b""
        self.request_id: str | None = None
        self.bytes = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection's: it writes
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        if self.request_id is None and len(self.head) < 8192:
            self.head += data
            match = _REQUEST_ID.search(self.head)
            if match:
                self.request_id = match.group(1).decode().strip()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _run(
    port: int, streams: int, seconds: float, ramp_s: float, tokens: int, settle_s: float
) -> dict:
    loop = asyncio.get_running_loop()
    request = mock_chat_request(port, tokens)
    opened: list[_Stream] = []
    start_ns = time.perf_counter_ns()
    failures = 0
    for i in range(streams):
        due = start_ns + int(i * ramp_s * 1e9 / streams)
        delay = (due - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            _, stream = await loop.create_connection(
                lambda: _Stream(request, loop.create_future()), "127.0.0.1", port
            )
        except OSError:
            failures += 1
        else:
            opened.append(stream)
    # The window opens once every stream has its response headers (bounded), then after
    # ``settle_s``: a server still taking in requests is not yet holding them all.
    deadline = time.perf_counter() + _HEADERS_WAIT_S
    while any(s.request_id is None and not s.closed.done() for s in opened):
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(settle_s)
    window_start_ns = time.perf_counter_ns()
    cpu_start = time.process_time()
    await asyncio.sleep(seconds)
    window_end_ns = time.perf_counter_ns()
    cpu_s = time.process_time() - cpu_start
    early = sum(1 for s in opened if s.closed.done())
    for stream in opened:
        if stream.transport is not None:
            stream.transport.close()
    return {
        "streams": len(opened),
        "failed_connects": failures,
        "ended_early": early,
        "window_start_ns": window_start_ns,
        "window_end_ns": window_end_ns,
        "bytes": sum(s.bytes for s in opened),
        "client_cpu_s": cpu_s,
        "request_ids": [s.request_id for s in opened if s.request_id],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-c", "--streams", type=int, required=True)
    parser.add_argument("-d", "--seconds", type=float, default=5.0)
    parser.add_argument("--ramp", type=float, default=1.0)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds between ramp and window")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    result = run(_run(args.port, args.streams, args.seconds, args.ramp, args.tokens, args.settle))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
