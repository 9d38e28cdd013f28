"""An in-memory transport that plays a scripted response, for exchange tests without sockets.

A script is a list of steps: bytes are a body chunk, a float is a pause in seconds before
the next step, and ``HANG`` waits forever (a server that stops sending). ``head`` is
played before the response's headers are handed over, so a server that never finishes
its headers is ``head=[HANG]``. Arrivals are stamped on ``clock``: on a virtual clock
(``tests.virtual_time``) the pauses, and so every measured time, are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from harness.transports.base import Clock, HttpRequest

HANG = object()
Step = bytes | float | object


async def _play(step: Step) -> None:
    if step is HANG:
        await asyncio.Event().wait()
    elif isinstance(step, float | int):
        await asyncio.sleep(step)


@dataclass
class ScriptedResponse:
    status: int
    headers: Mapping[str, str]
    body: Sequence[Step]
    t_headers_ns: int = 0
    clock: Clock = time.perf_counter_ns

    async def chunks(self) -> AsyncIterator[tuple[int, bytes]]:
        for step in self.body:
            if isinstance(step, bytes):
                yield self.clock(), step
            else:
                await _play(step)


@dataclass
class ScriptedTransport:
    """Answers every request with the same script; keeps the requests it was given."""

    body: Sequence[Step] = ()
    head: Sequence[Step] = ()
    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"content-type": "text/event-stream"}
    )
    name: str = "scripted"
    clock: Clock = time.perf_counter_ns
    requests: list[HttpRequest] = field(default_factory=list)
    open_streams: int = 0

    async def __aenter__(self) -> ScriptedTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    @contextlib.asynccontextmanager
    async def stream(self, request: HttpRequest) -> AsyncIterator[ScriptedResponse]:
        self.requests.append(request)
        self.open_streams += 1
        try:
            for step in self.head:
                await _play(step)
            yield ScriptedResponse(
                self.status, self.headers, self.body, t_headers_ns=self.clock(), clock=self.clock
            )
        finally:
            self.open_streams -= 1
