"""The run's own live figures, served as Prometheus metrics (``--prometheus-port``).

For long runs watched from Grafana (``examples/grafana-dashboard.json``): every record is
counted as it completes, and a Prometheus server scraping ``http://127.0.0.1:PORT/metrics``
graphs rates and quantiles over its own windows. Only the records' figures are exposed:
no prompt, answer, URL or header, so nothing secret can leak through it.

==================================== =========================================================
metric                               what
==================================== =========================================================
``sse_harness_requests_total``       requests completed, by ``outcome`` (ok, error, abandoned, ...)
``sse_harness_errors_total``         failed requests by error ``kind``
``sse_harness_ttft_seconds``         TTFT of ok and cut requests (histogram)
``sse_harness_itl_seconds``          gaps between token events (histogram)
``sse_harness_e2e_seconds``          E2E of ok requests (histogram)
``sse_harness_output_tokens_total``  output tokens of completed requests (``rate()``: tokens/s)
``sse_harness_in_flight``            requests in flight now (the current segment's)
``sse_harness_send_lateness_seconds`` how late each request was sent against its schedule
==================================== =========================================================

The HTTP server is ``prometheus_client``'s, in a thread of its own, bound to loopback
unless told otherwise; it stops with ``close()``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from harness.errors import ConfigError
from harness.record import Outcome, RequestRecord

__all__ = ["LATENCY_BUCKETS_S", "LiveExport"]

#: Histogram edges (seconds), from 1 ms to 10 minutes: the same for TTFT, ITL and E2E.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
                     0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
                     300.0, 600.0)  # fmt: skip


class LiveExport:
    """Counts each completed record and serves the counts on ``host:port``.

    Args:
        port: the TCP port (0: a free one; ``port`` then says which).
        host: the address to bind (loopback by default).

    Raises:
        ConfigError: (``prometheus-port``) the port cannot be bound.
    """

    def __init__(self, port: int, *, host: str = "127.0.0.1") -> None:
        registry = CollectorRegistry()
        self.registry = registry
        self.requests = Counter(
            "sse_harness_requests", "Requests completed, by outcome.", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "sse_harness_errors", "Failed requests, by error kind.", ["kind"], registry=registry
        )
        self.ttft = Histogram("sse_harness_ttft_seconds", "Time to first token.",
                              buckets=LATENCY_BUCKETS_S, registry=registry)  # fmt: skip
        self.itl = Histogram("sse_harness_itl_seconds", "Gaps between token events.",
                             buckets=LATENCY_BUCKETS_S, registry=registry)  # fmt: skip
        self.e2e = Histogram("sse_harness_e2e_seconds", "End-to-end request latency.",
                             buckets=LATENCY_BUCKETS_S, registry=registry)  # fmt: skip
        self.tokens = Counter(
            "sse_harness_output_tokens", "Output tokens of completed requests.", registry=registry
        )
        self.in_flight = Gauge("sse_harness_in_flight", "Requests in flight.", registry=registry)
        self.lateness = Histogram(
            "sse_harness_send_lateness_seconds",
            "Time a request was sent after it was due (open loop; the client's own health).",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError("prometheus-port", f"cannot serve on {host}:{port}: {exc}") from exc
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def observe(self, record: RequestRecord) -> None:
        """Count one completed request."""
        self.requests.labels(outcome=record.outcome.value).inc()
        if record.error_kind is not None:
            self.errors.labels(kind=record.error_kind.value).inc()
        if record.outcome in (Outcome.OK, Outcome.CUT) and (ttft := record.ttft_s) is not None:
            self.ttft.observe(ttft)
        if record.outcome is Outcome.OK and (e2e := record.e2e_s) is not None:
            self.e2e.observe(e2e)
        for gap_ns in record.itl_ns():
            self.itl.observe(gap_ns / 1e9)
        if record.output_tokens:
            self.tokens.inc(record.output_tokens)
        if record.t_scheduled_ns is not None:
            self.lateness.observe(max(record.t_sent_ns - record.t_scheduled_ns, 0) / 1e9)

    def watch(self, in_flight: Callable[[], float]) -> None:
        """Read the in-flight gauge from this at each scrape (the current runner's)."""
        self.in_flight.set_function(in_flight)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
