"""The transport interface: the only client-side code that touches sockets or reads the
clock for arrivals.

A transport sends one ``HttpRequest`` and hands back a ``StreamingResponse`` whose
``chunks()`` yields ``(arrival_ns, bytes)`` pairs, stamped as soon as the library hands
the bytes over. Library exceptions are mapped onto ``harness.errors.TransportError``
subclasses at this boundary.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "Clock",
    "HttpRequest",
    "StreamingResponse",
    "Timeouts",
    "Transport",
    "run_event_loop",
    "steady_collector",
]

Clock = Callable[[], int]
T = TypeVar("T")
#: While a load runs, a full garbage collection waits for this many young ones.
FULL_COLLECTION_EVERY = 1000


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

    def chunks(self) -> AsyncIterator[tuple[int, bytes]]:
        """The body's chunks with their arrival times, until the body ends.

        Raises:
            ReadTimedOut: no bytes within the idle timeout.
            ReadFailed: the connection broke.
        """
        ...


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


@contextmanager
def steady_collector() -> Iterator[None]:
    """Keep full garbage collections from stalling a load.

    A full collection walks every tracked object and stops the event loop meanwhile:
    with 1,000 streams on this kind of machine, 60 ms in which no socket is read, so
    every arrival in that time is stamped late (and the kernel's stamps of segments
    queued meanwhile merge into one). Inside the block, the objects alive before it
    (modules, pandas) are moved out of the collector's reach (``gc.freeze``), and a
    full collection waits for ``FULL_COLLECTION_EVERY`` young ones instead of ten;
    young collections go on as before. A load creates next to no cyclic garbage, so
    memory does not grow for it. The previous settings come back on exit.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold[0], threshold[1], max(threshold[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
