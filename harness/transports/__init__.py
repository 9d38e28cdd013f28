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


def make_transport(
    name: str, *, timeouts: Timeouts, connections: int, http2: bool = False
) -> Transport:
    """The transport called ``name``, with a pool of ``connections``.

    Raises:
        ConfigError: an unknown name (field ``transport``).
    """
    if name == "httpx":
        from harness.transports.httpx_transport import HttpxTransport

        return HttpxTransport(timeouts=timeouts, connections=connections, http2=http2)
    if name == "aiohttp":
        from harness.transports.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(timeouts=timeouts, connections=connections)
    if name == "kernel":
        from harness.transports.kernel import KernelTransport

        return KernelTransport(timeouts=timeouts, connections=connections)
    raise ConfigError(
        "transport", f"unknown transport {name!r}; choose one of {', '.join(TRANSPORTS)}"
    )
