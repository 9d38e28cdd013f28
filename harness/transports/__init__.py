"""Client transports: the only client code that touches sockets or stamps arrivals."""

from __future__ import annotations

from harness.errors import ConfigError
from harness.transports.base import (
    Clock,
    HttpRequest,
    StreamingResponse,
    Timeouts,
    Transport,
    run_event_loop,
)

__all__ = [
    "DEFAULT_TRANSPORT",
    "TRANSPORTS",
    "Clock",
    "HttpRequest",
    "StreamingResponse",
    "Timeouts",
    "Transport",
    "make_transport",
    "run_event_loop",
]

TRANSPORTS = ("httpx", "aiohttp", "kernel")
#: The transport that measures best under load on the benchmarks (see the README's
#: transports table): aiohttp's connection handling with the harness's own chunk reader.
DEFAULT_TRANSPORT = "aiohttp"


def make_transport(
    name: str,
    *,
    timeouts: Timeouts,
    connections: int,
    http2: bool = False,
    follow_redirects: bool = False,
    httpcore: bool = False,
) -> Transport:
    """The transport called ``name``, with a pool of ``connections``.

    Args:
        name: one of ``TRANSPORTS``.
        timeouts: the connect and idle timeouts the transport applies itself.
        connections: the pool's size; size it to the load's concurrency.
        http2: speak HTTP/2 where the server offers it (httpx only).
        follow_redirects: follow redirects within the request's origin, a few hops at
            most (see ``harness.transports.redirects``); by default a 3xx is the response.
        httpcore: httpx only: read through httpx's own transport, which hands over a
            chunked body one HTTP chunk at a time, as the SDKs built on httpx see it.

    Raises:
        ConfigError: an unknown name (field ``transport``).
    """
    if name == "httpx":
        from harness.transports.httpx_transport import HttpxTransport

        return HttpxTransport(
            timeouts=timeouts,
            connections=connections,
            http2=http2,
            follow_redirects=follow_redirects,
            httpcore=httpcore,
        )
    if name == "aiohttp":
        from harness.transports.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(
            timeouts=timeouts, connections=connections, follow_redirects=follow_redirects
        )
    if name == "kernel":
        from harness.transports.kernel import KernelTransport

        return KernelTransport(
            timeouts=timeouts, connections=connections, follow_redirects=follow_redirects
        )
    raise ConfigError(
        "transport", f"unknown transport {name!r}; choose one of {', '.join(TRANSPORTS)}"
    )
