"""The exceptions sse-harness raises.

Every error the harness raises on purpose derives from ``HarnessError``, so a library
user can catch the whole family in one place::

    HarnessError
    ├── ConfigError            a configuration value is invalid (names the field)
    ├── SSEError               the byte stream is not a usable event stream
    │   └── EventTooLarge      a line or event outgrew the decoder's limit
    ├── DialectError           an event's payload does not fit its API dialect
    └── TransportError         the HTTP exchange failed below the stream
        ├── ConnectFailed      no connection could be made (refused, DNS, TLS)
        ├── ReadTimedOut       no bytes arrived within the idle timeout
        └── ReadFailed         the connection broke while the body was read
            └── UndecodableBody  its content coding is unknown or broken

The transports map their libraries' exceptions onto this tree once, at the boundary,
with ``raise ... from exc``.

Exceptions carry data (the field, the size, the limit) as attributes, so callers can
record them without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "ConnectFailed",
    "DialectError",
    "EventTooLarge",
    "HarnessError",
    "ReadFailed",
    "ReadTimedOut",
    "SSEError",
    "TransportError",
    "UndecodableBody",
]


class HarnessError(Exception):
    """Base class of every error sse-harness raises on purpose."""


class ConfigError(HarnessError, ValueError):
    """A configuration value is invalid.

    Attributes:
        field: the name of the offending field, as the user spells it.
        reason: what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SSEError(HarnessError):
    """The byte stream cannot be read as a Server-Sent Events stream."""


class EventTooLarge(SSEError):
    """A line or an event grew past the decoder's ``max_event_bytes``.

    Attributes:
        what: ``"line"`` (no line end seen yet) or ``"event"`` (no blank line seen yet).
        size: how large it had grown when the decoder gave up.
        limit: the decoder's ``max_event_bytes``.
        events: the events the failing feed completed before the overflow, so that a
            caller loses nothing already received.
    """

    def __init__(self, what: str, size: int, limit: int, events: Sequence[Any] = ()) -> None:
        super().__init__(
            f"SSE {what} of at least {size} bytes exceeds the limit of {limit} bytes "
            f"(raise max_event_bytes if the stream really sends {what}s this large)"
        )
        self.what = what
        self.size = size
        self.limit = limit
        self.events = tuple(events)


class DialectError(HarnessError):
    """An event's payload does not fit the API dialect it was read as.

    Attributes:
        dialect: the dialect's name.
        data: an excerpt of the offending payload.
    """

    def __init__(self, dialect: str, message: str, data: str = "") -> None:
        excerpt = data if len(data) <= 200 else data[:200] + "..."
        super().__init__(f"{dialect}: {message}" + (f": {excerpt!r}" if excerpt else ""))
        self.dialect = dialect
        self.data = excerpt


class TransportError(HarnessError):
    """The HTTP exchange failed below the event stream."""


class ConnectFailed(TransportError):
    """No connection could be made, or the request could not be sent."""


class ReadTimedOut(TransportError):
    """No bytes arrived within the idle timeout."""


class ReadFailed(TransportError):
    """The connection broke while the response was read."""


class UndecodableBody(ReadFailed):
    """The body's content coding is one the client does not decode, or it is broken:
    the bytes arrived, but no event can be read from them."""
