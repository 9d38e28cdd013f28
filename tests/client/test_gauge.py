"""Reading a server's gauge of running requests from Prometheus text."""

from __future__ import annotations

import http.server
import itertools
import socket
import threading
from collections.abc import Iterator

import pytest

from harness.errors import ConfigError
from harness.servers import gauge
from harness.servers.gauge import GaugeSampler, GaugeSelector, check_gauge, parse_gauge, read_gauge

TEXT = """# HELP vllm:num_requests_running Number of requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="a"} 3.0
vllm:num_requests_running{model_name="b"} 2.0
vllm:num_requests_running_total 99
mock_active_streams 7
"""


def test_samples_of_every_label_set_are_summed() -> None:
    assert parse_gauge(TEXT, "vllm:num_requests_running") == 5.0


def test_a_metric_is_matched_by_its_whole_name() -> None:
    assert parse_gauge(TEXT, "mock_active_streams") == 7.0
    assert parse_gauge(TEXT, "vllm:num_requests") is None


LABELLED = """# HELP app_streams Streams running.
# TYPE app_streams gauge
app_streams{route="chat",model="a"} 3.0
app_streams{route="chat",model="b"} 1.0
app_streams{route="embed",model="a"} 2.0
app_streams{route="say \\"hi\\"",model="a"} 7.0
app_streams_created 12
"""


def test_a_selector_is_a_name_and_the_labels_it_needs() -> None:
    assert GaugeSelector.parse("vllm:num_requests_running") == GaugeSelector(
        "vllm:num_requests_running"
    )
    selector = GaugeSelector.parse('app_streams{route="chat", model="a"}')
    assert selector == GaugeSelector("app_streams", (("model", "a"), ("route", "chat")))
    assert str(selector) == 'app_streams{model="a",route="chat"}'
    assert GaugeSelector.parse(str(selector)) == selector
    quoted = GaugeSelector.parse('app_streams{route="say \\"hi\\""}')
    assert quoted.labels == (("route", 'say "hi"'),)


@pytest.mark.parametrize(
    "text",
    ["", " ", '{route="chat"}', 'app_streams{route!="chat"}', 'app_streams{route=~"c.*"}',
     'app_streams{route="chat"} 5', "app streams", "app_streams\nother", "app_streams{route"],
)  # fmt: skip
def test_anything_else_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GaugeSelector.parse(text)
    assert caught.value.field == "metrics-gauge"


def test_a_selector_matches_the_samples_whose_labels_include_its_own() -> None:
    selector = GaugeSelector.parse('app_streams{route="chat"}')
    assert selector.matches("app_streams", {"route": "chat", "model": "a"})
    assert not selector.matches("app_streams", {"route": "embed"})
    assert not selector.matches("app_streams", {"model": "a"})
    assert not selector.matches("other", {"route": "chat"})


def test_every_matching_sample_is_summed() -> None:
    assert parse_gauge(LABELLED, 'app_streams{route="chat"}') == 4.0
    assert parse_gauge(LABELLED, 'app_streams{route="chat",model="b"}') == 1.0
    assert parse_gauge(LABELLED, 'app_streams{route="say \\"hi\\""}') == 7.0
    assert parse_gauge(LABELLED, "app_streams") == 13.0
    assert parse_gauge(LABELLED, 'app_streams{route="none"}') is None
    assert parse_gauge(LABELLED, "app_streams_created") == 12.0


@pytest.fixture(scope="module")
def metrics_url() -> Iterator[str]:
    """A loopback server whose ``/metrics`` is ``LABELLED`` (404 elsewhere)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/metrics"
            body = LABELLED.encode() if found else b"not here"
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_readable_gauge_gives_its_value(metrics_url: str) -> None:
    assert check_gauge(metrics_url, 'app_streams{route="chat"}') == 4.0
    assert read_gauge(metrics_url, 'app_streams{route="chat"}') == 4.0


@pytest.mark.parametrize(
    ("url", "selector", "field", "says"),
    [
        ("{base}/metrics", "vllm:num_requests_running", "metrics-gauge", "no metric"),
        ("{base}/metrics", 'app_streams{route="none"}', "metrics-gauge",
         'it has {model="a",route="chat"}'),
        ("{base}/metrics", "app_streams{", "metrics-gauge", "expected name"),
        ("{base}/nothing", "app_streams", "metrics-url", "Not Found"),
        ("http://127.0.0.1:{port}/metrics", "app_streams", "metrics-url", "cannot read"),
        ("127.0.0.1/metrics", "app_streams", "metrics-url", "not an http"),
    ],
)  # fmt: skip
def test_a_gauge_that_cannot_be_read_says_which_option_is_wrong(
    metrics_url: str, url: str, selector: str, field: str, says: str
) -> None:
    url = url.format(base=metrics_url.removesuffix("/metrics"), port=_free_port())
    with pytest.raises(ConfigError) as caught:
        check_gauge(url, selector, timeout_s=2)
    assert caught.value.field == field
    assert says in caught.value.reason
    if field == "metrics-url":
        assert read_gauge(url, "app_streams", timeout_s=2) is None


class Scripted:
    """A gauge read that returns ``values`` in turn (None: a failed scrape), then the
    last one, and says when it has returned them all."""

    def __init__(self, values: list[float | None]) -> None:
        self.values = values
        self.calls = 0
        self.done = threading.Event()

    def __call__(self, url: str, selector: GaugeSelector, timeout_s: float) -> float | None:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        if self.calls >= len(self.values):
            self.done.set()
        return value


def test_the_sampler_reads_in_its_own_thread_until_stopped() -> None:
    read = Scripted([4.0, None, 3.0, 1.0, 0.0])
    sampler = GaugeSampler("http://127.0.0.1:1/metrics", "app_streams", interval_s=0.01,
                           read=read)  # fmt: skip
    sampler.start()
    assert read.done.wait(timeout=10)
    samples = sampler.stop()
    calls = read.calls
    assert [s.value for s in samples[:4]] == [4.0, 3.0, 1.0, 0.0]
    assert sampler.failures == 1
    assert all(a.t_ns < b.t_ns for a, b in itertools.pairwise(samples))
    assert all(s.spread_ns >= 0 for s in samples)
    assert read.calls == calls  # stopped means stopped


def test_waiting_for_the_baseline_ends_at_it_or_at_the_deadline() -> None:
    read = Scripted([3.0, 2.0, 1.0, 0.0])
    sampler = GaugeSampler("http://127.0.0.1:1/metrics", "app_streams", interval_s=0.01,
                           read=read)  # fmt: skip
    sampler.start()
    now = sampler.now_ns()
    sampler.wait_settled(baseline=0.0, since_ns=now, until_ns=now + 30 * 10**9)
    assert sampler.samples[-1].value == 0.0
    # a gauge that never comes back: the deadline ends the wait
    sampler.wait_settled(baseline=-1.0, since_ns=now, until_ns=sampler.now_ns() + 50_000_000)
    assert sampler.samples[-1].value == 0.0
    sampler.stop()


def test_a_long_run_thins_its_samples_and_reads_less_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gauge, "MAX_SAMPLES", 8)
    read = Scripted([float(i) for i in range(8)])
    sampler = GaugeSampler("http://127.0.0.1:1/metrics", "app_streams", interval_s=0.01,
                           read=read)  # fmt: skip
    sampler.start()
    assert read.done.wait(timeout=10)
    samples = sampler.stop()
    assert [s.value for s in samples[:4]] == [0.0, 2.0, 4.0, 6.0]
    assert sampler.interval_ns == 20_000_000


def test_only_the_gauges_own_lines_are_read() -> None:
    text = LABELLED + "this line is no Prometheus text {{{\napp_streams_total 99\n"
    assert parse_gauge(text, 'app_streams{route="chat"}') == 4.0
    assert parse_gauge("app_streams{route= 1\n", "app_streams") is None  # its own line, broken
