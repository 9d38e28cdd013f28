"""Running the conformance suite against an endpoint and keeping every byte.

The one module of ``harness.conformance`` that does I/O or reads the clock. It sends a
small, bounded suite, one step after another: a few ordinary streams, one asking for
usage (OpenAI requests), a long one, one the client abandons after a few tokens (then
watches whether the server stops), a few invalid requests, and a burst of streams at
once. Each response is kept as it arrived (status, headers, every read with its arrival
time) in a ``Captured``, which the pure checks judge afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.conformance.captured import (
    Captured,
    Disconnect,
    Ending,
    Exchange,
    Purpose,
    Received,
    SuiteSettings,
)
from harness.conformance.client_headers import CLIENT_HEADERS, default_client, headers_of
from harness.conformance.events import load_payload
from harness.dialects import StreamReader, get
from harness.errors import ConfigError, ConnectFailed, TransportError
from harness.load.payloads import MAX_TOKENS_PLACEHOLDER, RequestSpec, build_request
from harness.load.recorder import MOCK_REQUEST_ID, redact
from harness.record import ErrorKind, kind_of
from harness.servers.embedded import fetch_truth
from harness.servers.gauge import read_gauge, wait_for_baseline
from harness.transports import (
    Clock,
    HttpRequest,
    Timeouts,
    Transport,
    make_transport,
    run_event_loop,
)

__all__ = ["PROMPT", "Target", "capture", "capture_suite", "invalid_requests"]

PROMPT = "Tell me a story about a lighthouse keeper and the ships she guides home."
DEFAULT_SETTINGS = SuiteSettings()
#: How an exchange ended, by the error kind of what broke it (``TRANSPORT_ERROR_KINDS``).
_ENDINGS = {
    ErrorKind.CONNECT: Ending.CONNECT,
    ErrorKind.TIMEOUT_IDLE: Ending.TIMEOUT,
    ErrorKind.TRUNCATED: Ending.BROKEN,
    ErrorKind.PROTOCOL: Ending.BROKEN,
}
#: The headers the request builder sets that a client's defaults replace.
_NEGOTIATED = frozenset({"accept", "accept-encoding"})
#: Endings of a first attempt that may be a stale kept-alive connection: sent again once.
_RETRIED = (Ending.CONNECT, Ending.BROKEN)
_TRUNCATED_JSON = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "'


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What to check and how to reach it.

    Attributes:
        spec: how requests look (URL, body kind, model, headers, API key).
        dialect: how to read the answers (``auto``: detected).
        pointer: the generic dialect's JSON pointer to the text.
        transport: ``httpx`` or ``aiohttp``.
        http2: speak HTTP/2 with httpx.
        follow_redirects: follow redirects within the URL's origin (by default a 3xx is
            the answer judged).
        metrics_url: the server's Prometheus ``/metrics``, to watch it stop an
            abandoned stream; with ``metrics_gauge``, its gauge of running requests.
        truth_url: a mock's base URL, whose ground truth tells when it noticed a close.
        client_headers: whose default headers the requests carry (``CLIENT_HEADERS``);
            None: the official SDK's for the request kind.
    """

    spec: RequestSpec
    dialect: str = "auto"
    pointer: str | None = None
    transport: str = "httpx"
    http2: bool = False
    follow_redirects: bool = False
    metrics_url: str | None = None
    metrics_gauge: str | None = None
    truth_url: str | None = None
    client_headers: str | None = None

    def __post_init__(self) -> None:
        if self.client_headers is not None and self.client_headers not in CLIENT_HEADERS:
            raise ConfigError(
                "client-headers",
                f"must be one of {', '.join(CLIENT_HEADERS)}, not {self.client_headers!r}",
            )
        if (self.metrics_url is None) != (self.metrics_gauge is None):
            raise ConfigError("metrics-gauge", "give --metrics-url and --metrics-gauge together")
        get(self.dialect, pointer=self.pointer)  # raises ConfigError for a bad name or pointer

    @property
    def client(self) -> str:
        """Whose default headers the requests carry."""
        return self.client_headers or default_client(self.spec.request)

    def dressed(self, request: HttpRequest) -> HttpRequest:
        """``request`` with the client's default headers under its own: the content
        negotiation the request builder puts in gives way unless ``--header`` set it."""
        given = {name.lower() for name, _ in self.spec.headers}
        own = {k: v for k, v in request.headers.items() if k in given or k not in _NEGOTIATED}
        return dataclasses.replace(request, headers=headers_of(self.client, own))

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in output (``RequestSpec.secrets``)."""
        return self.spec.secrets


def _spec_for(spec: RequestSpec, tokens: int, usage: bool) -> tuple[RequestSpec, int | None]:
    """The spec of a request asking for ``tokens``, and the length it can really ask."""
    changes: dict[str, Any] = {"max_tokens": tokens, "include_usage": usage}
    asked: int | None = tokens
    if spec.request == "json" or spec.method == "GET":
        template = spec.body_json if isinstance(spec.body_json, str) else ""
        # build_request puts the length in for the placeholder (payloads.fill_template)
        asked = tokens if MAX_TOKENS_PLACEHOLDER in template + spec.url else None
    return dataclasses.replace(spec, **changes), asked


def invalid_requests(spec: RequestSpec, valid: HttpRequest) -> list[tuple[str, str, HttpRequest]]:
    """Requests the endpoint should refuse: ``(label, what is wrong, request)``.

    A body that is not JSON for every POST endpoint; for the known APIs, also a required
    field left out and a field of the wrong type. GET endpoints get none.
    """
    if valid.method != "POST" or valid.body is None:
        return []
    found = [("invalid-json", "the body is not JSON", _TRUNCATED_JSON)]
    body = load_payload(valid.body)  # a template nested too deeply reads as no object
    changes: dict[str, tuple[str, Any]] = {
        "openai-chat": ("messages", {"max_tokens": "sixteen"}),
        "openai-completions": ("prompt", {"max_tokens": "sixteen"}),
        "openai-responses": ("input", {"max_output_tokens": "sixteen"}),
        "anthropic": ("max_tokens", {"messages": "not a list"}),
    }
    if spec.request in changes and isinstance(body, dict):
        missing, wrong = changes[spec.request]
        without = {k: v for k, v in body.items() if k != missing}
        found.append((f"invalid-no-{missing}", f"no '{missing}'", json.dumps(without).encode()))
        key = next(iter(wrong))
        found.append(
            (f"invalid-type-{key}", f"'{key}' is a string", json.dumps({**body, **wrong}).encode())
        )
    return [(label, note, dataclasses.replace(valid, body=data)) for label, note, data in found]


OnToken = Callable[[int], Awaitable[bool]]


class _Capturer:
    """Sends the suite's requests and records their responses as they arrive."""

    def __init__(
        self, transport: Transport, target: Target, settings: SuiteSettings, clock: Clock
    ) -> None:
        self._transport = transport
        self._target = target
        self._settings = settings
        self._clock = clock
        self._dialect = get(target.dialect, pointer=target.pointer)
        self._answered = False  # some request got a response: connections may be reused

    async def stream(
        self,
        label: str,
        purpose: Purpose,
        *,
        tokens: int,
        usage: bool = False,
        bound_s: float | None = None,
        on_token: OnToken | None = None,
    ) -> Exchange:
        spec, asked = _spec_for(self._target.spec, tokens, usage)
        request = self._target.dressed(build_request(spec, [{"role": "user", "content": PROMPT}]))
        note = f"max_tokens {tokens}" if asked is not None else "length not settable"
        if usage:
            note += ", include_usage"
        return await self.exchange(
            label,
            purpose,
            request,
            note=note,
            asked=asked,
            usage=usage,
            bound_s=bound_s or self._settings.timeout_s,
            on_token=on_token,
        )

    async def exchange(
        self,
        label: str,
        purpose: Purpose,
        request: HttpRequest,
        *,
        note: str,
        asked: int | None = None,
        usage: bool = False,
        bound_s: float,
        on_token: OnToken | None = None,
    ) -> Exchange:
        """Send ``request`` and keep its response, within ``bound_s`` seconds.

        ``on_token`` is awaited with the count of token events so far after each read
        that brought one; when it returns True the client closes the stream. A request
        that breaks before any response comes, once an earlier one was answered (so on
        a connection that may have been kept alive and closed by the server since), is
        sent once more (the pool has dropped the broken connection); the exchange says so
        (``retried``).
        """
        options: dict[str, Any] = {
            "note": note,
            "asked": asked,
            "usage": usage,
            "bound_s": bound_s,
            "on_token": on_token,
        }
        answered_before = self._answered
        first = await self._attempt(label, purpose, request, **options)
        self._answered |= first.status is not None
        if first.status is not None or first.ending not in _RETRIED or not answered_before:
            return first
        second = await self._attempt(label, purpose, request, **options)
        self._answered |= second.status is not None
        return dataclasses.replace(second, retried=first.error)

    async def _attempt(
        self,
        label: str,
        purpose: Purpose,
        request: HttpRequest,
        *,
        note: str,
        asked: int | None,
        usage: bool,
        bound_s: float,
        on_token: OnToken | None,
    ) -> Exchange:
        clock, limit = self._clock, self._settings.max_body_bytes
        found: dict[str, Any] = {"ending": Ending.EOF}
        body, ends, arrivals_ns = bytearray(), array("q"), array("q")
        t_sent_ns = clock()
        try:
            async with asyncio.timeout(bound_s):
                async with self._transport.stream(request) as response:
                    found["status"] = response.status
                    found["t_headers_ns"] = response.t_headers_ns
                    raw = response.headers
                    pairs = raw.multi_items() if hasattr(raw, "multi_items") else raw.items()
                    found["headers"] = tuple((k.lower(), v) for k, v in pairs)
                    content_type = response.headers.get("content-type")
                    reader = StreamReader(self._dialect, content_type=content_type)
                    tokens = 0
                    async for arrival_ns, data in response.chunks():
                        body += data
                        ends.append(len(body))
                        arrivals_ns.append(arrival_ns)
                        if len(body) > limit:
                            found["ending"] = Ending.BOUND
                            break
                        if on_token is None:
                            continue
                        new = sum(read.token for read in reader.feed(data))
                        tokens += new
                        if new and await on_token(tokens):
                            found["ending"] = Ending.ABANDONED
                            break
        except TimeoutError:
            found["ending"] = Ending.ABANDONED if on_token else Ending.BOUND
            if purpose not in (Purpose.LONG, Purpose.ABANDON):
                what = "no end" if "status" in found else "no response headers"
                found["ending"], found["error"] = Ending.TIMEOUT, f"{what} within {bound_s:g} s"
        except TransportError as exc:
            found["ending"], found["error"] = _ENDINGS[kind_of(exc)], str(exc)
        if found.get("error"):
            found["error"] = redact(found["error"], self._target.secrets)
        return Exchange(
            label=label,
            purpose=purpose,
            asked_encoding=request.headers.get("accept-encoding"),
            method=request.method,
            path=urlsplit(request.url).path or "/",
            note=note,
            asked_tokens=asked,
            include_usage=usage,
            t_sent_ns=t_sent_ns,
            chunks=Received.of(bytes(body), ends, arrivals_ns),
            t_end_ns=clock(),
            **found,
        )

    async def abandon(self) -> tuple[Exchange, Disconnect]:
        """A long stream left after a few tokens, and what the server did then."""
        target, settings = self._target, self._settings
        gauge = None
        if target.metrics_url is not None and target.metrics_gauge is not None:
            gauge = (target.metrics_url, target.metrics_gauge)
        readings: dict[str, float | None] = {}
        if gauge is not None:
            readings["baseline"] = await asyncio.to_thread(read_gauge, *gauge)

        async def on_token(count: int) -> bool:
            if gauge is not None and "during" not in readings:
                readings["during"] = await asyncio.to_thread(read_gauge, *gauge)
            return count >= settings.abandon_after_tokens

        exchange = await self.stream(
            "abandon",
            Purpose.ABANDON,
            tokens=settings.long_tokens,
            bound_s=min(settings.long_s, settings.timeout_s),
            on_token=on_token,
        )
        if exchange.ending is not Ending.ABANDONED:
            return exchange, Disconnect(reason="the stream ended before the client left it")
        t_close_ns = exchange.t_end_ns
        request_id = exchange.header(MOCK_REQUEST_ID)
        if target.truth_url is not None and request_id is not None:
            wait_s = settings.disconnect_wait_s
            # the mock's truth endpoint waits (?wait_ms) for the request to end first
            truth = await asyncio.to_thread(
                fetch_truth,
                target.truth_url,
                f"{request_id}?wait_ms={int(wait_s * 1000)}",
                timeout_s=wait_s + 2,
            )
            if truth is not None:
                return exchange, Disconnect(
                    source="ground truth", truth=truth, t_close_ns=t_close_ns
                )
        baseline = readings.get("baseline")
        if gauge is not None and baseline is not None:
            seen = await asyncio.to_thread(
                wait_for_baseline, *gauge, baseline, timeout_s=settings.disconnect_wait_s
            )
            observed = {
                **seen,
                "during": readings.get("during"),
                "timeout_s": settings.disconnect_wait_s,
            }
            return exchange, Disconnect(source="gauge", gauge=observed, t_close_ns=t_close_ns)
        reason = (
            f"the gauge {target.metrics_gauge} could not be read at {target.metrics_url}"
            if gauge is not None
            else "the target has no ground truth (it is not the mock) and no --metrics-url "
            "--metrics-gauge was given"
        )
        return exchange, Disconnect(reason=reason, t_close_ns=t_close_ns)


async def capture(
    target: Target,
    settings: SuiteSettings = DEFAULT_SETTINGS,
    *,
    clock: Clock = time.perf_counter_ns,
    progress: Callable[[str], None] | None = None,
) -> Captured:
    """Run the suite against ``target`` and keep every response.

    Raises:
        ConnectFailed: the first request got no response at all (no connection, or no
            headers within the timeout).
    """
    say = progress or (lambda step: None)
    timeouts = Timeouts(
        connect_s=min(10.0, settings.timeout_s),
        ttft_s=settings.timeout_s,
        idle_s=settings.timeout_s,
        total_s=settings.timeout_s,
    )
    spec = target.spec
    exchanges: list[Exchange] = []
    transport = make_transport(
        target.transport,
        timeouts=timeouts,
        connections=settings.burst + 2,
        http2=target.http2,
        follow_redirects=target.follow_redirects,
        httpcore=True,  # the body in the pieces the SDKs see: framing.split-reads
    )
    async with transport:
        capturer = _Capturer(transport, target, settings, clock)
        say(f"{settings.streams} ordinary streams")
        for number in range(1, settings.streams + 1):
            exchange = await capturer.stream(
                f"stream-{number}", Purpose.ORDINARY, tokens=settings.max_tokens
            )
            if number == 1 and exchange.status is None:  # no answer at all: stop here
                raise ConnectFailed(
                    redact(exchange.error or f"no response from {spec.full_url}", target.secrets)
                )
            exchanges.append(exchange)
        if spec.request in ("openai-chat", "openai-completions") and spec.method == "POST":
            say("a stream asking for usage")
            exchanges.append(
                await capturer.stream(
                    "usage", Purpose.USAGE, tokens=settings.max_tokens, usage=True
                )
            )
        say(f"a long stream ({settings.long_tokens} tokens, at most {settings.long_s:g} s)")
        exchanges.append(
            await capturer.stream(
                "long", Purpose.LONG, tokens=settings.long_tokens, bound_s=settings.long_s
            )
        )
        say(f"a stream abandoned after {settings.abandon_after_tokens} tokens")
        abandoned, disconnect = await capturer.abandon()
        exchanges.append(abandoned)
        valid = target.dressed(
            build_request(
                _spec_for(spec, settings.max_tokens, False)[0],
                [{"role": "user", "content": PROMPT}],
            )
        )
        wrong = invalid_requests(spec, valid)
        if wrong:
            say(f"{len(wrong)} invalid requests")
        for label, note, request in wrong:
            exchanges.append(
                await capturer.exchange(
                    label, Purpose.INVALID, request, note=note, bound_s=settings.timeout_s
                )
            )
        say(f"{settings.burst} streams at once")
        burst = [
            capturer.stream(f"burst-{n}", Purpose.BURST, tokens=settings.max_tokens)
            for n in range(1, settings.burst + 1)
        ]
        exchanges.extend(await asyncio.gather(*burst))
    return Captured(
        target=redact(spec.full_url, target.secrets),
        request=spec.request,
        dialect=target.dialect,
        pointer=target.pointer,
        settings=settings,
        exchanges=tuple(exchanges),
        disconnect=disconnect,
    )


def capture_suite(
    target: Target,
    settings: SuiteSettings = DEFAULT_SETTINGS,
    *,
    progress: Callable[[str], None] | None = None,
) -> Captured:
    """``capture`` on its own event loop (uvloop where installed)."""
    return run_event_loop(capture(target, settings, progress=progress))
