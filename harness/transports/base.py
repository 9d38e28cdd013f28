"""The transport interface: the only client-side code that touches sockets or reads the
clock for arrivals.

A transport sends one ``HttpRequest`` and hands back a ``StreamingResponse`` whose
``chunks()`` yields ``(arrival_ns, bytes)`` pairs, stamped as soon as the library hands
the bytes over. Library exceptions are mapped onto ``harness.errors.TransportError``
subclasses at this boundary. ``deliver`` reads a body into a sink instead, without a
task switch per chunk where the transport can call the sink from its read callback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from harness.limits import steady_collector

__all__ = [
    "ChunkSink",
    "Clock",
    "HttpRequest",
    "StampedSink",
    "StreamingResponse",
    "Timeouts",
    "Transport",
    "deliver",
    "run_event_loop",
]

Clock = Callable[[], int]
#: Takes one chunk of a body, ``(arrival_ns, data)``; returns True to read no further.
ChunkSink = Callable[[int, bytes], bool]
#: Takes one chunk and its user-space stamp too, ``(arrival_ns, data, user_ns)``, from a
#: transport whose arrival stamps are the kernel's; returns True to read no further.
StampedSink = Callable[[int, bytes, int], bool]
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """One request to send. ``headers`` may hold secrets: never log or record them."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None

    def __repr__(self) -> str:  # headers may carry an API key
        size = len(self.body or b"")
        return f"HttpRequest(method={self.method!r}, url={self.url!r}, body={size} bytes)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds to wait: to connect, for the first token, between reads, for everything."""

    connect_s: float = 10.0
    ttft_s: float = 60.0
    idle_s: float = 60.0
    total_s: float = 600.0


class StreamingResponse(Protocol):
    """A response whose body is read as it arrives."""

    status: int
    headers: Mapping[str, str]
    t_headers_ns: int

    def chunks(self) -> AsyncGenerator[tuple[int, bytes], None]:
        """The body's chunks with their arrival times, until the body ends: an async
        generator, so a reader that stops early closes it (``aclose``).

        Raises:
            ReadTimedOut: no bytes within the idle timeout.
            ReadFailed: the connection broke.
        """
        ...


async def deliver(response: StreamingResponse, sink: ChunkSink) -> None:
    """Give every chunk of ``response``'s body to ``sink`` until the body ends or the sink
    returns True.

    A response with a ``deliver(sink)`` method of its own (aiohttp's) calls the sink from
    the connection's read callback, which spares a task switch per chunk; any other is
    read through ``chunks()``. The sink runs in the event loop either way: it must not
    block, and what it raises is raised here.

    Raises:
        ReadTimedOut: no bytes within the idle timeout.
        ReadFailed: the connection broke.
    """
    own = getattr(response, "deliver", None)
    if own is not None:
        await own(sink)
        return
    # closed here, not left to the event loop's finalizer: an async generator dropped
    # mid-body stays alive, with its response, until the loop gets round to closing it
    async with contextlib.aclosing(response.chunks()) as chunks:
        async for arrival_ns, data in chunks:
            if sink(arrival_ns, data):
                return


class Transport(Protocol):
    """An HTTP client that streams responses. Use it as an async context manager."""

    name: str

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def stream(self, request: HttpRequest) -> AbstractAsyncContextManager[StreamingResponse]:
        """Send ``request``; the context yields the response once its headers arrived.

        Raises:
            ConnectFailed: no connection, or the request could not be sent.
            ReadTimedOut: the headers did not come within the idle timeout.
        """
        ...


def run_event_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on uvloop where it is installed (Linux), else on asyncio's loop.

    uvloop roughly halves the client's CPU per event, which is the client's own error
    under load (see ``sse-harness calibrate``). Full garbage collections are held back
    while it runs (see ``steady_collector``).
    """
    with steady_collector():
        try:
            import uvloop
        except ImportError:
            return asyncio.run(coroutine)
        return uvloop.run(coroutine)
