"""--prometheus-port: the run's own figures, scraped while it runs."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.schedule import Bounds, ClosedLoop
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.run import execute
from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments
from harness.servers.export import LiveExport
from harness.servers.scrape import parse_samples
from harness.transports import Timeouts

MS = 1_000_000


def value(text: str, name: str, **labels: str) -> float:
    return sum(
        v for n, lab, v in parse_samples(text) if n == name and labels.items() <= lab.items()
    )


def test_each_record_is_counted_and_served() -> None:
    export = LiveExport(0)
    try:
        export.observe(RequestRecord(request_id="a", t_sent_ns=0, t_first_token_ns=30 * MS,
                                     t_end_ns=90 * MS, token_times_ns=[30 * MS, 50 * MS, 90 * MS],
                                     output_tokens=3))  # fmt: skip
        export.observe(RequestRecord(request_id="b", outcome=Outcome.ERROR,
                                     error_kind=ErrorKind.TIMEOUT_TTFT))  # fmt: skip
        export.watch(lambda: 7)
        text = urllib.request.urlopen(export.url, timeout=10).read().decode()
    finally:
        export.close()
    assert value(text, "sse_harness_requests_total", outcome="ok") == 1
    assert value(text, "sse_harness_errors_total", kind="timeout_ttft") == 1
    assert value(text, "sse_harness_ttft_seconds_count") == 1
    assert value(text, "sse_harness_ttft_seconds_bucket", le="0.03") == 1
    assert value(text, "sse_harness_itl_seconds_count") == 2
    assert value(text, "sse_harness_output_tokens_total") == 3
    assert value(text, "sse_harness_in_flight") == 7
    assert export.host == "127.0.0.1"


def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError) as caught:
            LiveExport(taken.getsockname()[1])
    assert caught.value.field == "prometheus-port"


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=20, itl_ms=5, tokens=8)) as running:
        yield running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_endpoint_is_scraped_during_a_run(mock: EmbeddedMock, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    config = RunConfig(
        spec=RequestSpec(url=mock.base_url + "/v1/chat/completions", max_tokens=8),
        profile=ClosedLoop(concurrency=2, ramp_up_s=0.05),
        bounds=Bounds(requests=60),
        timeouts=Timeouts(ttft_s=20, idle_s=20, total_s=60),
    )

    async def scrape_while_running() -> list[float]:
        run = asyncio.create_task(execute(config, tmp_path, prometheus_port=port))
        seen = []
        while not run.done():
            try:
                text = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(url, timeout=5).read().decode()
                )
                seen.append(value(text, "sse_harness_requests_total"))
            except OSError:
                pass  # not serving yet, or already stopped
            await asyncio.sleep(0.02)
        await run
        return seen

    seen = asyncio.run(scrape_while_running())
    # 60 requests of ~60 ms two at a time: ~2 s of run, polled every 20 ms
    assert any(0 < n < 60 for n in seen)
    assert seen == sorted(seen)  # a counter
    with pytest.raises(urllib.error.URLError):  # stopped with the run
        urllib.request.urlopen(url, timeout=5)


def test_the_grafana_dashboard_graphs_only_what_the_run_exports() -> None:
    dashboard = json.loads(
        (Path(__file__).parents[2] / "examples/grafana-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    export = LiveExport(0)
    try:
        exported = {m.name for m in export.registry.collect()}
    finally:
        export.close()
    used = {
        re.sub(r"_(bucket|total)$", "", n) for e in exprs for n in re.findall(r"sse_harness_\w+", e)
    }
    assert used
    assert used <= exported, used - exported
