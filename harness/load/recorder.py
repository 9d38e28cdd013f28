"""From a stream's bytes to a ``RequestRecord``: stamping and verdicts, without I/O.

Reading a stream is done two ways, by the asyncio exchange (``sse-harness run``,
``check``) and by the gevent client of the locust user. What they do with each chunk is
the same and lives here: :class:`StreamRecorder` feeds the ``StreamReader`` and stamps
the record with the arrival of every event, token, first answer and terminator, and stops
the read where the client chose to (an abandonment, ``--max-events``). :func:`conclude`
and :func:`fail` give the verdicts once the body is read or the read broke, so every entry
point judges a stream by the same rules. The callers own the socket and the deadlines.
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.dialects import (
    Delta,
    DeltaKind,
    StreamReader,
    StreamResult,
    answer_complete,
    incomplete_why,
    is_streamed,
)
from harness.record import ErrorKind, Outcome, RequestRecord, TokenSource

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "ERROR_BODY_BYTES",
    "MOCK_REQUEST_ID",
    "StreamRecorder",
    "conclude",
    "error_body_message",
    "fail",
    "fail_status",
    "parse_retry_after",
    "redact",
    "redact_record",
]

#: Events after which a stream is cut when no ``--max-events`` is given: what one record
#: holds stays bounded (a million token stamps, some 40 MB) even for an endless stream.
DEFAULT_MAX_EVENTS = 1_000_000
#: How much of an error response's body is kept in the record.
ERROR_BODY_BYTES = 2048
#: The mock's response header naming its ground-truth record of the request.
MOCK_REQUEST_ID = "x-mock-request-id"

#: Called at each token: its arrival, and the previous token's (None for the first).
OnToken = Callable[[int, int | None], None]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``[redacted]``.

    An excerpt may cut a secret at its edge (``sk-abc12...``): a piece of a secret of
    four characters or more that stands right before a trailing ``...`` or right after a
    leading one is redacted too.
    """
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "[redacted]")
        if "..." in text:
            text = _redact_cut(text, secret)
    return text


def _redact_cut(text: str, secret: str) -> str:
    for size in range(len(secret) - 1, 3, -1):
        head, tail = secret[:size], secret[-size:]
        if head + "..." in text:
            text = text.replace(head + "...", "[redacted]...")
        if "..." + tail in text:
            text = text.replace("..." + tail, "...[redacted]")
    return text


def redact_record(record: RequestRecord, secrets: Iterable[str]) -> None:
    """Redact ``secrets`` from every string of ``record`` that the server chose (error
    messages, headers kept, finish reason, usage): a server that echoes a key back in
    any of them does not get it written to a file or shown on a terminal."""
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        return
    if record.error_message:
        record.error_message = redact(record.error_message, secrets)
    if record.content_type:
        record.content_type = redact(record.content_type, secrets)
    if record.mock_request_id:
        record.mock_request_id = redact(record.mock_request_id, secrets)
    if record.finish_reason:
        record.finish_reason = redact(record.finish_reason, secrets)
    if record.usage:
        record.usage = _redact_value(record.usage, secrets)


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact(str(k), secrets): _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    return value


class StreamRecorder:
    """Stamps ``record`` with the events of one stream as its chunks arrive.

    Args:
        record: the request's record; its token times and event stamps are filled here.
        reader: the stream's reader (framing, dialect, accumulation).
        abandon_after_tokens: close the stream on purpose after this many tokens.
        max_events: cut the stream (the client's bound, not an error) after this many
            (``DEFAULT_MAX_EVENTS`` when None).
        clock_source: where the arrival stamps come from (``kernel`` or ``user``); with
            ``kernel``, each token's user-space stamp is kept beside it.
        on_token: called at every token-bearing event (live statistics).
        on_first_token: called once, at the first token-bearing event (a TTFT timer).

    Attributes:
        stopped: True once ``feed`` returned True.
    """

    __slots__ = (
        "_abandon",
        "_max_events",
        "_on_first_token",
        "_on_token",
        "_plain_only",
        "_user_times",
        "reader",
        "record",
        "stopped",
    )

    def __init__(
        self,
        record: RequestRecord,
        reader: StreamReader,
        *,
        abandon_after_tokens: int | None = None,
        max_events: int | None = None,
        clock_source: str = "user",
        on_token: OnToken | None = None,
        on_first_token: Callable[[], None] | None = None,
    ) -> None:
        self.record = record
        self.reader = reader
        self._abandon = abandon_after_tokens
        self._max_events = max_events if max_events is not None else DEFAULT_MAX_EVENTS
        self._on_token = on_token
        self._on_first_token = on_first_token
        self.stopped = False
        record.clock_source = clock_source
        self._user_times: list[int] | None = None
        if clock_source != "user":
            self._user_times = record.token_times_user_ns = []
        #: Set once a plain text event needs only its count and stamp (see ``feed``).
        self._plain_only = False

    def feed(self, arrival_ns: int, data: bytes, user_ns: int = 0) -> bool:
        """One chunk of the body, arrived at ``arrival_ns`` (``user_ns`` in user space).

        Returns:
            True when the stream is to be read no further: the client abandons or cuts
            it here, or the reader met a fatal error.
        """
        record = self.record
        record.bytes_received += len(data)
        text = self.reader.read_plain(data)
        if text and self._plain_only:  # the common event, in the common stream
            record.events += 1
            record.token_times_ns.append(arrival_ns)
            if self._user_times is not None:
                self._user_times.append(user_ns)
            if record.events < self._max_events:
                return False
            self.stopped = self._cut(arrival_ns)
            return True
        if record.t_first_byte_ns is None:
            record.t_first_byte_ns = arrival_ns
        if text is not None:  # one event of answer text, read without building it
            self.stopped = self._stamp(arrival_ns, user_ns, bool(text), None, False)
            return self.stopped
        for read in self.reader.feed(data):
            if self._stamp(arrival_ns, user_ns, read.token, read.deltas, read.terminator):
                self.stopped = True
                return True
        if self.reader.fatal is not None:
            self.stopped = True
        return self.stopped

    def close(self, end_ns: int) -> None:
        """The body ended at ``end_ns``: what its end completes is stamped then."""
        for read in self.reader.close():  # plain text: the end completes its last text
            self._stamp(end_ns, end_ns, read.token, read.deltas, read.terminator)
        if self.record.t_end_ns is None:
            self.record.t_end_ns = end_ns

    def _stamp(
        self,
        arrival_ns: int,
        user_ns: int,
        token: bool,
        deltas: tuple[Delta, ...] | None,
        terminator: bool,
    ) -> bool:
        """Stamp one event; ``deltas`` None: the event's token is answer text."""
        record = self.record
        record.events += 1
        if record.t_first_event_ns is None:
            record.t_first_event_ns = arrival_ns
        if token:
            tokens = record.token_times_ns
            previous = tokens[-1] if tokens else None
            tokens.append(arrival_ns)
            if self._user_times is not None:
                self._user_times.append(user_ns)
            if record.t_first_token_ns is None:
                record.t_first_token_ns = arrival_ns
                if self._user_times is not None:
                    record.t_first_token_user_ns = user_ns
                if self._on_first_token is not None:
                    self._on_first_token()
            if record.t_first_answer_ns is None and (deltas is None or _has_answer(deltas)):
                record.t_first_answer_ns = arrival_ns
                # every first stamp is taken: from here on, an answer text event changes
                # nothing but the count of events and the token times, unless there is
                # more to do for each token
                self._plain_only = self._abandon is None and self._on_token is None
            if self._on_token is not None:
                self._on_token(arrival_ns, previous)
            if self._abandon is not None and len(tokens) >= self._abandon:
                record.outcome = Outcome.ABANDONED
                record.abandoned_after_tokens = len(tokens)
                record.t_end_ns = arrival_ns
                return True
        if terminator and record.t_end_ns is None:
            record.t_end_ns = arrival_ns
        if record.events >= self._max_events:
            return self._cut(arrival_ns)
        return False

    def _cut(self, arrival_ns: int) -> bool:
        """The client's bound on events is reached: the stream is cut here."""
        self.record.outcome = Outcome.CUT
        self.record.t_end_ns = arrival_ns
        return True


def _has_answer(deltas: Iterable[Any]) -> bool:
    return any(d.kind is DeltaKind.CONTENT and d.text for d in deltas)


def error_body_message(
    status: int | None, body: bytes, secrets: Iterable[str], location: str | None = None
) -> str:
    """The error message of a non-2xx response: its status, where a redirect pointed
    (``location``, not followed), and the start of its body (redacted before it is cut,
    so that no cut leaves a piece of a secret)."""
    text = redact(body.decode("utf-8", "replace"), secrets).strip()
    cut = len(body) >= ERROR_BODY_BYTES  # the read stops there: the body may go on
    excerpt = text[:ERROR_BODY_BYTES] + ("..." if cut else "")
    where = f" redirect to {location} (not followed)" if location else ""
    return redact(f"HTTP {status}:{where} {excerpt}".rstrip(), secrets)


#: Statuses that ask the client to come back later: recorded as ``rate_limited``.
RATE_LIMIT_STATUSES = frozenset({429, 503})


def fail_status(
    record: RequestRecord,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str],
    now_epoch_s: float,
) -> None:
    """Record a non-2xx answer: ``rate_limited`` with its Retry-After for a 429 or 503,
    else ``http_status``; the message holds the status, a redirect's target and the
    start of the body."""
    message = error_body_message(record.status, body, secrets, headers.get("location"))
    if record.status in RATE_LIMIT_STATUSES:
        record.retry_after_s = parse_retry_after(headers.get("retry-after"), now_epoch_s)
        fail(record, ErrorKind.RATE_LIMITED, message)
    else:
        fail(record, ErrorKind.HTTP_STATUS, message)
    record.t_end_ns = record.t_end_ns or record.t_headers_ns


def parse_retry_after(value: str | None, now_epoch_s: float) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds, or an HTTP date (then
    measured from ``now_epoch_s``); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is in GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(when.timestamp() - now_epoch_s, 0.0)


def fail(record: RequestRecord, kind: ErrorKind, message: str, end_ns: int | None = None) -> None:
    """Record an error, unless a verdict was given already (the first one stands: an
    abandoned stream's close is not an error). ``end_ns`` ends the request if still open."""
    if record.outcome is not Outcome.OK:
        return
    record.outcome = Outcome.ERROR
    record.error_kind = kind
    record.error_message = message
    if end_ns is not None and record.t_end_ns is None:
        record.t_end_ns = end_ns


def conclude(
    record: RequestRecord, reader: StreamReader, result: StreamResult, end_ns: int
) -> None:
    """Token counts, usage, finish and the stream-level verdicts once the body is read."""
    record.dialect = reader.dialect.name if reader.dialect is not None else None
    record.text_chars = len(result.text)
    record.reasoning_chars = len(result.reasoning or "")
    record.finish_reason = result.finish_reason
    record.done_sentinel = result.done
    record.token_kinds = dict(result.token_events)
    usage = dict(result.usage) if result.usage else None
    record.usage = usage
    completion = _usage_count(usage, "completion_tokens", "output_tokens")
    record.usage_output_tokens = completion
    record.prompt_tokens, record.cached_tokens = prompt_usage(usage)
    if completion is not None:
        record.output_tokens, record.token_source = completion, TokenSource.USAGE
    else:
        record.output_tokens, record.token_source = len(record.token_times_ns), TokenSource.EVENTS
    if record.outcome is not Outcome.OK:
        return
    if reader.fatal is not None:
        fail(record, ErrorKind.PROTOCOL, str(reader.fatal), end_ns)
    elif reader.errors:
        message = f"{len(reader.errors)} bad event(s); first: {reader.errors[0]}"
        fail(record, ErrorKind.PROTOCOL, message)
    elif record.events == 0:  # an empty body, or bytes that hold no event at all
        content_type = record.content_type or "no content type"
        size = f"{record.bytes_received} bytes, {content_type}"
        if is_streamed(record.content_type):
            fail(record, ErrorKind.PROTOCOL, f"the body held no event ({size})", end_ns)
        else:
            message = f"the answer is not an event stream and held no event ({size})"
            fail(record, ErrorKind.NOT_STREAMED, message, end_ns)
    elif result.error is not None:
        message = f"the server sent an error in the stream: {result.error}"
        fail(record, ErrorKind.STREAM_ERROR, message)
    elif not answer_complete(record.dialect, result):
        fail(record, ErrorKind.TRUNCATED, f"the body ended {incomplete_why(record.dialect)}")


def prompt_usage(usage: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """The prompt tokens and, of them, the cached ones a usage report gives.

    OpenAI chat and completions: ``prompt_tokens`` and ``prompt_tokens_details.
    cached_tokens``; Responses: ``input_tokens`` and ``input_tokens_details.
    cached_tokens``; Anthropic: ``input_tokens`` counts only the uncached tokens, so the
    prompt is it plus ``cache_read_input_tokens`` (the cached) plus
    ``cache_creation_input_tokens``.
    """
    if not usage:
        return None, None
    prompt = _usage_count(usage, "prompt_tokens", "input_tokens")
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    cached = _usage_count(details, "cached_tokens") if isinstance(details, Mapping) else None
    read = _usage_count(usage, "cache_read_input_tokens")
    if read is not None and "prompt_tokens" not in usage:
        created = _usage_count(usage, "cache_creation_input_tokens") or 0
        prompt = (prompt or 0) + read + created
        cached = read
    return prompt, cached


def _usage_count(usage: Mapping[str, Any] | None, *keys: str) -> int | None:
    if not usage:
        return None
    for key in keys:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
