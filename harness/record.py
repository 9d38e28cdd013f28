"""What one request did, in timestamps: ``RequestRecord`` and its versioned JSON form.

All times are ``time.perf_counter_ns()`` nanoseconds (monotonic; on Linux shared by
every process, so the mock's write times and the client's arrival times compare). The
names follow the definitions in the README:

    t_scheduled   when the load profile meant the request to start (open loop), else t_sent
    t_sent        just before the request is written
    t_headers     status line and headers received
    t_first_byte  first body byte
    t_first_event first SSE event of any kind (a role-only chunk counts here)
    t_first_token first event carrying non-empty content or reasoning text
    t_first_answer first event carrying answer text (content, after any reasoning)
    t_end         terminator or end of body (or the moment the client stopped)

``clock_source`` says where the arrival stamps came from: ``kernel`` (the kernel
transport's receive timestamps) or ``user`` (the event loop read the socket). Records
stamped by the kernel keep the user-space stamps of their tokens too
(``token_times_user_ns``, ``t_first_token_user_ns``), so the difference can be shown.
"""

from __future__ import annotations

import enum
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import (
    ConnectFailed,
    ReadFailed,
    ReadTimedOut,
    TransportError,
    UndecodableBody,
)

__all__ = [
    "FORMAT_VERSION",
    "TRANSPORT_ERROR_KINDS",
    "ErrorKind",
    "Outcome",
    "RequestRecord",
    "TokenSource",
    "kind_of",
    "span_s",
]

#: Version of the JSON form; readers refuse versions they do not know.
FORMAT_VERSION = 2
#: Versions still read: 1 lacks the user-space token stamps (they load as None).
READABLE_VERSIONS = frozenset({1, 2})


class ErrorKind(enum.StrEnum):
    """Why a request failed."""

    CONNECT = "connect"  # no connection (refused, DNS, TLS)
    HTTP_STATUS = "http_status"  # a status other than 2xx
    TIMEOUT_TTFT = "timeout_ttft"  # no first token in time
    TIMEOUT_IDLE = "timeout_idle"  # too long a gap between events
    TIMEOUT_TOTAL = "timeout_total"  # the whole request took too long
    RATE_LIMITED = "rate_limited"  # a 429 or 503: the server asked the client to wait
    NOT_STREAMED = "not_streamed"  # a 2xx that is no event stream (JSON, HTML) and held none
    PROTOCOL = "protocol"  # bad SSE or a payload that does not fit the dialect
    TRUNCATED = "truncated"  # the body ended before the answer was complete
    STREAM_ERROR = "stream_error"  # the server reported an error inside the stream
    CANCELLED = "cancelled"  # the client chose to stop it (second Ctrl-C)


#: The error kind of each transport error, the most specific first: the one table the
#: asyncio exchange, the locust client and ``check``'s capture all go by.
TRANSPORT_ERROR_KINDS: tuple[tuple[type[TransportError], ErrorKind], ...] = (
    (UndecodableBody, ErrorKind.PROTOCOL),  # the bytes came, but no event can be read
    (ConnectFailed, ErrorKind.CONNECT),
    (ReadTimedOut, ErrorKind.TIMEOUT_IDLE),
    (ReadFailed, ErrorKind.TRUNCATED),
)


def kind_of(error: TransportError) -> ErrorKind:
    """The error kind of a transport error (``TRANSPORT_ERROR_KINDS``); the exchange
    broke below the stream in some other way: ``truncated``."""
    for error_type, kind in TRANSPORT_ERROR_KINDS:
        if isinstance(error, error_type):
            return kind
    return ErrorKind.TRUNCATED


class Outcome(enum.StrEnum):
    """How a request ended."""

    OK = "ok"
    ERROR = "error"
    ABANDONED = "abandoned"  # the load profile closed it on purpose (a user closing a tab)
    CUT = "cut"  # the client's per-request bound (--max-stream-seconds, --max-events) ended it


class TokenSource(enum.StrEnum):
    """Where ``output_tokens`` came from."""

    USAGE = "usage"  # the server's own usage report
    EVENTS = "events"  # the count of token-bearing events


@dataclass(slots=True, kw_only=True)
class RequestRecord:
    """Everything measured about one request. Built while the request runs."""

    request_id: str
    user: int = 0
    turn: int = 0
    segment: str = ""
    t_scheduled_ns: int | None = None  # None: closed loop, where it equals t_sent
    t_sent_ns: int = 0
    t_headers_ns: int | None = None
    t_first_byte_ns: int | None = None
    t_first_event_ns: int | None = None
    t_first_token_ns: int | None = None
    t_first_answer_ns: int | None = None
    t_end_ns: int | None = None
    status: int | None = None
    content_type: str | None = None
    dialect: str | None = None
    #: arrival of each token-bearing event
    token_times_ns: list[int] = field(default_factory=list)
    events: int = 0
    bytes_received: int = 0
    text_chars: int = 0
    reasoning_chars: int = 0
    prompt_tokens: int | None = None
    #: of ``prompt_tokens``, those the server reported read from its prompt cache (OpenAI
    #: ``prompt_tokens_details.cached_tokens``, Anthropic ``cache_read_input_tokens``)
    cached_tokens: int | None = None
    output_tokens: int = 0
    usage_output_tokens: int | None = None
    token_source: TokenSource = TokenSource.EVENTS
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    #: the stream's terminator came ([DONE], message_stop, response.completed); an answer
    #: complete without it is still ok (a habit of some servers, counted in the summary)
    done_sentinel: bool = False
    #: token-bearing events by what they bore: ``text``, ``reasoning``, ``tool_call``
    token_kinds: dict[str, int] | None = None
    #: seconds a 429 or 503 asked to wait (its Retry-After header), when it said
    retry_after_s: float | None = None
    #: earlier attempts of this request that were rate limited and retried (--retry-429):
    #: each with its ``t_sent_ns``, ``status``, ``retry_after_s`` and ``error_message``
    attempts: list[dict[str, Any]] | None = None
    outcome: Outcome = Outcome.OK
    error_kind: ErrorKind | None = None
    error_message: str | None = None
    abandoned_after_tokens: int | None = None
    t_close_ns: int | None = None  # when the client closed an abandoned stream
    mock_request_id: str | None = None
    clock_source: str = "user"  # "kernel" or "user": where the arrival stamps came from
    #: user-space stamps of the token arrivals, kept when the kernel stamped them
    t_first_token_user_ns: int | None = None
    token_times_user_ns: list[int] | None = None

    # -- derived figures (seconds), None where they do not apply ---------------------

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def ttft_s(self) -> float | None:
        return span_s(self.t_sent_ns, self.t_first_token_ns)

    @property
    def t_due_ns(self) -> int:
        """When the request was due: its scheduled start in open loop, else t_sent."""
        return self.t_scheduled_ns if self.t_scheduled_ns is not None else self.t_sent_ns

    @property
    def ttft_from_scheduled_s(self) -> float | None:
        return span_s(self.t_due_ns, self.t_first_token_ns)

    @property
    def e2e_s(self) -> float | None:
        return span_s(self.t_sent_ns, self.t_end_ns)

    @property
    def tpot_s(self) -> float | None:
        """(t_last_token - t_first_token) / (output_tokens - 1), for more than one token."""
        if self.t_first_token_ns is None or not self.token_times_ns or self.output_tokens < 2:
            return None
        return (self.token_times_ns[-1] - self.t_first_token_ns) / 1e9 / (self.output_tokens - 1)

    def itl_ns(self) -> list[int]:
        """The gaps between arrivals of consecutive token-bearing events."""
        times = self.token_times_ns
        return [b - a for a, b in itertools.pairwise(times)]

    # -- JSON ------------------------------------------------------------------------

    def to_json(self) -> str:
        """One line of ``results.jsonl``."""
        # a shallow dict: json.dumps reads the lists as they are (``asdict`` would copy
        # every list and number in them first, most of a record's cost to write)
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["v"] = FORMAT_VERSION
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RequestRecord:
        """Rebuild a record from its JSON form.

        Raises:
            ValueError: the form's version is unknown.
        """
        version = data.get("v")
        if version not in READABLE_VERSIONS:
            readable = ", ".join(map(str, sorted(READABLE_VERSIONS)))
            raise ValueError(f"record format version {version!r} is not one of {readable}")
        values = {k: v for k, v in data.items() if k in _FIELD_SET}
        values["outcome"] = Outcome(values.get("outcome", "ok"))
        values["token_source"] = TokenSource(values.get("token_source", "events"))
        if values.get("error_kind") is not None:
            values["error_kind"] = ErrorKind(values["error_kind"])
        return cls(**values)


_FIELD_NAMES = tuple(f.name for f in fields(RequestRecord))
_FIELD_SET = frozenset(_FIELD_NAMES)


def span_s(start_ns: int | None, end_ns: int | None) -> float | None:
    """Seconds from ``start_ns`` to ``end_ns``; None when either is unknown."""
    if start_ns is None or end_ns is None:
        return None
    return (end_ns - start_ns) / 1e9
