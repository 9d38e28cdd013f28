"""What the conformance suite sent and received: the raw record the checks judge.

Pure data, no I/O: ``harness.conformance.capture`` fills it, the checks only read it, and
tests build it from bytes. Each ``Exchange`` keeps its response exactly as it arrived:
status, headers, and the body's reads with their arrival times.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "Captured",
    "Disconnect",
    "Ending",
    "Exchange",
    "Purpose",
    "Received",
    "SuiteSettings",
]


class Purpose(enum.StrEnum):
    """Why a request is in the suite."""

    ORDINARY = "ordinary"  # a plain stream, one after another
    USAGE = "usage"  # a stream asking for usage (OpenAI ``stream_options.include_usage``)
    LONG = "long"  # a longer stream, bounded in tokens and time
    ABANDON = "abandon"  # a stream the client leaves after a few tokens
    INVALID = "invalid"  # a request the endpoint should refuse with a 4xx
    BURST = "burst"  # one of several streams started at once


#: Purposes whose requests are valid streams.
STREAM_PURPOSES = frozenset({Purpose.ORDINARY, Purpose.USAGE, Purpose.LONG, Purpose.BURST})


class Ending(enum.StrEnum):
    """How an exchange ended."""

    EOF = "eof"  # the body ended
    ABANDONED = "abandoned"  # the client closed it on purpose
    BOUND = "bound"  # the client's time or size bound for it was reached
    TIMEOUT = "timeout"  # no bytes within the idle timeout, or the request's time ran out
    BROKEN = "broken"  # the connection broke while the body was read
    CONNECT = "connect"  # no connection, or no response headers


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteSettings:
    """How large the suite is. Every request is bounded in tokens and in time.

    Attributes:
        streams: ordinary streams, sent one after another.
        max_tokens: output length asked of ordinary, usage and burst streams.
        long_tokens: output length asked of the long stream (and the abandoned one).
        long_s: the long stream is cut after this many seconds.
        abandon_after_tokens: the abandoned stream is closed after this many tokens.
        burst: streams started at once.
        timeout_s: the bound of every other request, and the idle timeout.
        disconnect_wait_s: how long to watch the server stop after the abandonment.
        max_body_bytes: a response body is cut past this size.
    """

    streams: int = 3
    max_tokens: int = 16
    long_tokens: int = 100
    long_s: float = 10.0
    abandon_after_tokens: int = 3
    burst: int = 4
    timeout_s: float = 30.0
    disconnect_wait_s: float = 5.0
    max_body_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("streams", "max_tokens", "long_tokens", "abandon_after_tokens", "burst"):
            if getattr(self, name) < 1:
                raise ConfigError(name.replace("_", "-"), "must be at least 1")
        if self.burst < 2:
            raise ConfigError("burst", "must be at least 2: it tests streams side by side")
        for name in ("long_s", "timeout_s", "disconnect_wait_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(name.replace("_s", "").replace("_", "-"), "must be positive")
        if self.max_body_bytes < 1024:
            raise ConfigError("max-body-bytes", "must be at least 1024")

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Received:
    """A response body as it arrived: its bytes, and where each read ended and when.

    A body can arrive in millions of reads within its size bound, so the reads are not
    kept as objects: one ``bytes`` holds the body, and two arrays hold each read's end
    offset and arrival time (16 bytes a read). Iterating gives ``(arrival_ns, bytes)``
    per read, as the transport handed them over.

    Args:
        chunks: the reads, ``(arrival_ns, bytes)`` each, in order.
    """

    __slots__ = ("arrivals_ns", "body", "ends")

    def __init__(self, chunks: Iterable[tuple[int, bytes]] = ()) -> None:
        pieces: list[bytes] = []
        self.ends = array("q")
        self.arrivals_ns = array("q")
        size = 0
        for arrival_ns, data in chunks:
            pieces.append(data)
            size += len(data)
            self.ends.append(size)
            self.arrivals_ns.append(arrival_ns)
        #: The whole body.
        self.body = b"".join(pieces)

    @classmethod
    def of(cls, body: bytes, ends: array[int], arrivals_ns: array[int]) -> Received:
        """A body already joined, with its reads' end offsets and arrival times."""
        if len(ends) != len(arrivals_ns) or (ends and ends[-1] != len(body)):
            raise ValueError("every read needs an end offset and an arrival time")
        received = cls()
        received.body, received.ends, received.arrivals_ns = body, ends, arrivals_ns
        return received

    def __len__(self) -> int:
        return len(self.ends)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        start = 0
        for end, arrival_ns in zip(self.ends, self.arrivals_ns, strict=True):
            yield arrival_ns, self.body[start:end]
            start = end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Received):
            return NotImplemented
        return (self.body, self.ends, self.arrivals_ns) == (
            other.body,
            other.ends,
            other.arrivals_ns,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Received({len(self.body)} bytes in {len(self)} reads)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One request of the suite and its response, as received.

    Attributes:
        label: its name in reports (``stream-1``, ``usage``, ``invalid-json``, ``burst-2``).
        purpose: why it was sent.
        method: the HTTP method.
        path: the URL's path (no query: it may hold a prompt or a key).
        note: what is special about the request (``max_tokens 16``, ``body is not JSON``).
        asked_tokens: the output length asked, when the request could say it.
        include_usage: whether the request asked for the usage chunk.
        t_sent_ns: just before the request was sent.
        status: the response's status, None when none came.
        headers: the response's headers, names in lower case, in order.
        t_headers_ns: when the headers arrived.
        chunks: the body as it arrived (any iterable of ``(arrival_ns, bytes)`` reads is
            kept as ``Received``).
        t_end_ns: when the body ended or the client closed it.
        ending: how it ended.
        error: what went wrong below HTTP, if anything.
        asked_encoding: the request's Accept-Encoding.
        retried: what broke a first attempt before any response came (a kept-alive
            connection the server had closed): the request was then sent once more, and
            this is that second attempt.
    """

    label: str
    purpose: Purpose
    method: str = "POST"
    path: str = "/"
    note: str = ""
    asked_tokens: int | None = None
    include_usage: bool = False
    t_sent_ns: int = 0
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    t_headers_ns: int | None = None
    chunks: Received = field(default_factory=Received)
    t_end_ns: int | None = None
    ending: Ending = Ending.EOF
    error: str | None = None
    asked_encoding: str | None = None
    retried: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.chunks, Received):
            object.__setattr__(self, "chunks", Received(self.chunks))

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    @property
    def body(self) -> bytes:
        """The whole body received."""
        return self.chunks.body

    @property
    def ok(self) -> bool:
        """A 2xx response was received."""
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> dict[str, Any]:
        """A short, secret-free description for reports."""
        duration = None
        if self.t_end_ns is not None:
            duration = round((self.t_end_ns - self.t_sent_ns) / 1e9, 4)
        return {
            "label": self.label,
            "purpose": self.purpose.value,
            "request": f"{self.method} {self.path}" + (f" ({self.note})" if self.note else ""),
            "status": self.status,
            "content_type": self.header("content-type"),
            "bytes": len(self.body),
            "reads": len(self.chunks),
            "seconds": duration,
            "ending": self.ending.value,
            "error": self.error,
            "retried": self.retried,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    """What was seen of the server after the client abandoned a stream.

    Attributes:
        source: ``"ground truth"`` (the mock's record of the request), ``"gauge"`` (a
            Prometheus gauge of running requests), or None when neither could be had.
        truth: the mock's record of the abandoned request.
        gauge: ``baseline`` (before the stream), ``during`` (while it ran), ``after_run``,
            ``returned`` and ``seconds_to_baseline`` (from the close), ``timeout_s``.
        t_close_ns: when the client closed the stream.
        reason: why it could not be verified, when it could not.
    """

    source: str | None = None
    truth: Mapping[str, Any] | None = None
    gauge: Mapping[str, Any] | None = None
    t_close_ns: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Captured:
    """The whole suite as captured.

    Attributes:
        target: the URL checked (secrets redacted).
        request: the kind of request body (``openai-chat``, ``anthropic``, ``json``...).
        dialect: the dialect asked for (``auto`` to detect it).
        pointer: the generic dialect's JSON pointer, if one was given.
        settings: the suite's size and bounds.
        exchanges: every request, in the order sent.
        disconnect: what was seen after the abandonment.
    """

    target: str
    request: str
    dialect: str = "auto"
    pointer: str | None = None
    settings: SuiteSettings = SuiteSettings()
    exchanges: tuple[Exchange, ...] = ()
    disconnect: Disconnect = Disconnect()
