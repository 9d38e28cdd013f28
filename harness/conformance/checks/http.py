"""HTTP: the status and the headers of the streams."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.conformance.captured import Ending, Exchange, Purpose
from harness.conformance.checks.evidence import grouped, of_request
from harness.conformance.model import (
    API_DIALECTS,
    Check,
    CheckFactory,
    Evidence,
    Finding,
    Severity,
    Skip,
    show_bytes,
)
from harness.conformance.reading import Suite

__all__ = ["CHECKS"]

_VALID = (Purpose.ORDINARY, Purpose.USAGE, Purpose.LONG, Purpose.ABANDON)


def _media_type(value: str | None) -> tuple[str, dict[str, str]]:
    if not value:
        return "", {}
    kind, *params = value.split(";")
    parsed = {}
    for param in params:
        name, _, val = param.partition("=")
        parsed[name.strip().lower()] = val.strip().strip('"').lower()
    return kind.strip().lower(), parsed


def _status(suite: Suite) -> Sequence[Finding] | Skip:
    items: list[tuple[str, Evidence]] = []
    warnings: list[tuple[str, Evidence]] = []
    for reading in suite.of(*_VALID):
        exchange = reading.exchange
        if exchange.status == 200:
            continue
        if exchange.status is None:
            items.append(("no response to a valid request", of_request(reading, exchange.error)))
        elif 200 <= exchange.status < 300:
            warnings.append((f"a stream answered {exchange.status}, not 200", of_request(reading)))
        else:
            body = show_bytes(exchange.body[:160])
            retry = exchange.header("retry-after")
            detail = f"HTTP {exchange.status}" + (f", Retry-After {retry}" if retry else "")
            items.append(
                (
                    f"a valid request got HTTP {exchange.status}",
                    of_request(reading, detail + ": " + body),
                )
            )
    return grouped(STATUS, items) + grouped(STATUS, warnings, Severity.WARN)


def _complete_body(suite: Suite) -> Sequence[Finding] | Skip:
    judged = [r for r in suite.of(Purpose.ORDINARY, Purpose.USAGE, Purpose.LONG) if r.exchange.ok]
    if not judged:
        return Skip("no stream was received")
    items = []
    for reading in judged:
        exchange = reading.exchange
        if exchange.ending is Ending.BROKEN:
            message = "the connection broke before the body ended: the stream was cut"
            items.append((message, of_request(reading, exchange.error)))
        elif exchange.ending is Ending.TIMEOUT:
            message = "the stream hung: no end and no bytes within the client's timeout"
            items.append((message, of_request(reading, exchange.error)))
    return grouped(COMPLETE_BODY, items)


def _content_type(suite: Suite) -> Sequence[Finding] | Skip:
    streams = suite.streams
    if not streams:
        return Skip("no stream was received")
    items: list[tuple[str, Evidence]] = []
    infos: list[tuple[str, Evidence]] = []
    warnings: list[tuple[str, Evidence]] = []
    for reading in streams:
        value = reading.exchange.header("content-type")
        kind, params = _media_type(value)
        evidence = of_request(reading, f"Content-Type: {value}")
        if reading.framing == "text":
            infos.append(
                (
                    "a text/plain stream: EventSource cannot read it, only fetch-style readers",
                    evidence,
                )
            )
        elif kind != "text/event-stream":
            message = (
                f"Content-Type is {value or 'missing'}, not text/event-stream; the body was "
                "judged as the event stream it holds, but EventSource refuses it and proxies "
                "may buffer it"
            )
            items.append((message, evidence))
        charset = params.get("charset")
        if charset is not None and charset not in ("utf-8", "utf8"):
            warnings.append((f"charset={charset}: an event stream is always UTF-8", evidence))
    # the documented type of the APIs' streams; a generic endpoint only ought to send it
    wrong = Severity.WARN if suite.dialect in API_DIALECTS else Severity.INFO
    return (
        grouped(CONTENT_TYPE, items, wrong)
        + grouped(CONTENT_TYPE, warnings, Severity.WARN)
        + grouped(CONTENT_TYPE, infos, Severity.INFO)
    )


def _header_check(
    check: Check,
    suite: Suite,
    problem: Callable[[Exchange], str | None],
    shown: str | None = None,
) -> Sequence[Finding] | Skip:
    streams = suite.streams
    if not streams:
        return Skip("no stream was received")
    items = []
    for reading in streams:
        message = problem(reading.exchange)
        if message:
            value = None if shown is None else f"{shown}: {reading.exchange.header(shown)}"
            items.append((message, of_request(reading, value)))
    return grouped(check, items)


def _content_length(suite: Suite) -> Sequence[Finding] | Skip:
    def problem(exchange: Exchange) -> str | None:
        if exchange.header("content-length") is None:
            return None
        return "Content-Length on a stream: the body was complete before it was sent"

    return _header_check(CONTENT_LENGTH, suite, problem, "content-length")


def _cache_control(suite: Suite) -> Sequence[Finding] | Skip:
    def problem(exchange: Exchange) -> str | None:
        value = exchange.header("cache-control")
        if value is not None and ("no-cache" in value.lower() or "no-store" in value.lower()):
            return None
        return f"Cache-Control is {value or 'missing'}, not no-cache: caches may hold the stream"

    return _header_check(CACHE_CONTROL, suite, problem)


#: A compressed stream is judged held back or flushed only from this many token events:
#: a shorter one can arrive in one read merely because the client was busy.
BURST_MIN_TOKENS = 20


def _content_encoding(suite: Suite) -> Sequence[Finding] | Skip:
    streams = suite.streams
    if not streams:
        return Skip("no stream was received")
    warns: list[tuple[str, Evidence]] = []
    infos: list[tuple[str, Evidence]] = []
    for reading in streams:
        exchange = reading.exchange
        value = exchange.header("content-encoding")
        if value is None or value.strip().lower() == "identity":
            continue
        asked = (exchange.asked_encoding or "identity").strip().lower()
        evidence = of_request(reading, f"Content-Encoding: {value}; asked: {asked}")
        tokens = len(reading.token_times_ns)
        reads = len(set(reading.token_times_ns))
        if asked == "identity":
            warns.append(
                (
                    f"Content-Encoding: {value} although the request asked for identity: "
                    "compressed streams are held by proxies and decoders until a block fills",
                    evidence,
                )
            )
        elif tokens < BURST_MIN_TOKENS:
            continue  # too short to tell a held answer from a busy client's merged reads
        elif reads <= 1:
            warns.append(
                (
                    f"compressed ({value}) as the client asked, and the compressor held the "
                    f"answer back: its {tokens} token events arrived in one burst",
                    evidence,
                )
            )
        else:
            infos.append(
                (
                    f"compressed ({value}) as the client asked, and flushed as it went: the "
                    f"token events still arrived in {reads} reads",
                    evidence,
                )
            )
    return grouped(CONTENT_ENCODING, warns) + grouped(CONTENT_ENCODING, infos, Severity.INFO)


def _accel_buffering(suite: Suite) -> Sequence[Finding] | Skip:
    def problem(exchange: Exchange) -> str | None:
        value = exchange.header("x-accel-buffering")
        if value is not None and value.strip().lower() == "no":
            return None
        return "no X-Accel-Buffering: no header: an nginx in front would buffer the stream"

    return _header_check(ACCEL_BUFFERING, suite, problem)


def _silent_close(suite: Suite) -> Sequence[Finding] | Skip:
    items = []
    before: Exchange | None = None
    for reading in suite.readings:
        exchange = reading.exchange
        if exchange.retried is not None:
            detail = f"first attempt: {exchange.retried}"
            closes = before is not None and (before.header("connection") or "").lower() == "close"
            if before is not None and (before.status or 0) >= 500 and not closes:
                message = (
                    f"the server closed the connection after HTTP {before.status} without "
                    f"'Connection: close' ({before.label}): the next request on it broke, and "
                    "went through when sent again; clients that do not retry fail it"
                )
            else:
                message = (
                    "a kept-alive connection was closed by the server without a word: the "
                    "request broke before any response, and went through when sent again"
                )
            items.append((message, of_request(reading, detail)))
        before = exchange
    return grouped(SILENT_CLOSE, items)


check = CheckFactory("http")

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
STATUS = check("http.status", Severity.FAIL, "200 for a valid request",
               "a valid streaming request must get 200 and a stream; anything else is an error",
               _status)
COMPLETE_BODY = check("http.complete-body", Severity.FAIL, "the body ends cleanly",
                      "a body cut by a broken connection or left hanging loses the rest of "
                      "the answer",
                      _complete_body)
CONTENT_TYPE = check("http.content-type", Severity.WARN, "Content-Type: text/event-stream",
                     "WHATWG EventSource refuses any other type; SSE is always UTF-8",
                     _content_type)
CONTENT_LENGTH = check("http.no-content-length", Severity.WARN, "no Content-Length on a stream",
                       "a length known up front means the whole answer was buffered before sending",
                       _content_length)
CACHE_CONTROL = check("http.cache-control", Severity.WARN, "Cache-Control: no-cache",
                      "without it, caching proxies and CDNs may hold or replay the stream",
                      _cache_control)
CONTENT_ENCODING = check("http.no-content-encoding", Severity.WARN,
                         "compression that does not hold tokens back",
                         "gzip or br make proxies and decoders wait for whole blocks unless "
                         "the server flushes each event: tokens arrive late",
                         _content_encoding)
ACCEL_BUFFERING = check("http.accel-buffering", Severity.INFO, "X-Accel-Buffering: no",
                        "the hint that tells an nginx reverse proxy not to buffer this response",
                        _accel_buffering)
SILENT_CLOSE = check("http.silent-close", Severity.INFO, "connections closed with notice",
                     "a server that closes a kept-alive connection unannounced breaks the next "
                     "request on it",
                     _silent_close)
# fmt: on

CHECKS = (
    STATUS,
    COMPLETE_BODY,
    CONTENT_TYPE,
    CONTENT_LENGTH,
    CACHE_CONTROL,
    CONTENT_ENCODING,
    ACCEL_BUFFERING,
    SILENT_CLOSE,
)
