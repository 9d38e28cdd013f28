"""Reading the mock's responses in tests: raw reads, arrival times, and the decoded stream."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.dialects import StreamReader, get
from mock_server.config import MockConfig
from mock_server.overrides import Overrides
from mock_server.parsing import PARSERS, parse_counter, parse_tutorial
from mock_server.plan import Endpoint, Plan, make_plan

TIMEOUT = httpx.Timeout(10.0)


@dataclass
class Reading:
    """One response as a client saw it."""

    status: int
    headers: httpx.Headers
    chunks: list[bytes] = field(default_factory=list)
    arrivals_ns: list[int] = field(default_factory=list)
    token_arrivals_ns: list[int] = field(default_factory=list)
    reader: StreamReader | None = None
    failure: Exception | None = None
    sent_ns: int = 0
    headers_ns: int = 0

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def request_id(self) -> str:
        return self.headers["x-mock-request-id"]

    def json(self) -> Any:
        return httpx.Response(self.status, content=self.body).json()


def read(
    base_url: str,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    dialect: str = "auto",
    pointer: str | None = None,
    terminator: str | None = "[DONE]",
    stop_after_tokens: int | None = None,
) -> Reading:
    """Send one request and read its whole body, feeding a ``StreamReader`` as bytes come.

    A body that ends abruptly is kept with the exception in ``failure``.
    """
    kwargs: dict[str, Any] = {"headers": headers, "params": params}
    if body is not None:
        kwargs["json"] = body
    with httpx.Client(timeout=TIMEOUT) as client:
        sent_ns = time.perf_counter_ns()
        with client.stream(method, base_url + path, **kwargs) as response:
            reading = Reading(response.status_code, response.headers, sent_ns=sent_ns)
            reading.headers_ns = time.perf_counter_ns()
            content_type = response.headers.get("content-type")
            chosen = get(dialect, pointer=pointer, terminator=terminator)
            reader = StreamReader(chosen, content_type=content_type)
            reading.reader = reader
            try:
                for chunk in response.iter_raw():
                    now = time.perf_counter_ns()
                    reading.chunks.append(chunk)
                    reading.arrivals_ns.append(now)
                    reads = reader.feed(chunk)
                    reading.token_arrivals_ns += [now for r in reads if r.token]
                    if stop_after_tokens is not None and reader.content_events >= stop_after_tokens:
                        break
            except httpx.HTTPError as exc:
                reading.failure = exc
            reader.close()
    return reading


def expected_plan(
    config: MockConfig,
    endpoint: Endpoint,
    body: dict[str, Any],
    overrides: Overrides | None = None,
) -> Plan:
    """The plan the server makes for ``body`` (its text is what a client must rebuild)."""
    model = config.models[0]
    if endpoint is Endpoint.TUTORIAL_COUNTER:
        ask = parse_counter(body, model)
    elif endpoint in PARSERS:
        ask = PARSERS[endpoint](body, model)
    else:
        ask = parse_tutorial(endpoint, body, model)
    return make_plan(config, ask, overrides or Overrides())
