"""``execute`` with a server gauge and no ground truth: the mock, read only through its
``/metrics``, stops every abandoned stream at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.load.config import RunConfig
from harness.load.exchange import Abandon
from harness.load.payloads import RequestSpec
from harness.load.schedule import Bounds, ClosedLoop
from harness.run import execute
from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments
from harness.transports import Timeouts

pytestmark = pytest.mark.slow  # real runs against a mock process

#: At 25 ms each: 15 s a stream. A stream counts as stopped when the gauge fell within half
#: its remaining time, here 7 s: far longer than a busy machine takes to notice a close.
TOKENS = 600


@pytest.fixture(scope="module")
def long_mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=40, itl_ms=25, tokens=TOKENS)) as running:
        yield running


def config_for(mock: EmbeddedMock) -> RunConfig:
    return RunConfig(
        spec=RequestSpec(url=mock.base_url, max_tokens=TOKENS),
        profile=ClosedLoop(concurrency=3, ramp_up_s=0.05),
        bounds=Bounds(requests=3),
        timeouts=Timeouts(ttft_s=10, idle_s=10, total_s=30),
        disconnect_rate=1.0,
        disconnect_after=Abandon(after_tokens=2),
    )


def test_a_server_gauge_judges_abandonment_without_ground_truth(
    long_mock: EmbeddedMock, tmp_path: Path
) -> None:
    gauge = (long_mock.base_url + "/metrics", "mock_active_streams")
    result = asyncio.run(execute(config_for(long_mock), tmp_path, metrics_gauge=gauge))
    disconnect = result.summary["disconnect"]
    assert disconnect["source"] == "gauge"
    assert disconnect["stopped_by_server"] == 3
    assert disconnect["gauge"]["returned"] is True
    assert disconnect["gauge"]["samples"] > 0
    assert disconnect["stop_latency_ms"]["p99"] is None  # a gauge cannot say that
    assert disconnect["verdict"] in (tmp_path / "report.md").read_text()


def test_an_unreadable_gauge_stops_the_run_before_it_starts(
    long_mock: EmbeddedMock, tmp_path: Path
) -> None:
    gauge = (long_mock.base_url + "/metrics", 'mock_active_streams{route="chat"}')
    with pytest.raises(ConfigError) as caught:
        asyncio.run(execute(config_for(long_mock), tmp_path / "run", metrics_gauge=gauge))
    assert caught.value.field == "metrics-gauge"
    assert not (tmp_path / "run").exists()


def test_a_recognised_servers_own_gauge_judges_abandonment_without_being_named(
    long_mock: EmbeddedMock, tmp_path: Path
) -> None:
    metrics = long_mock.base_url + "/metrics"  # the mock speaks vLLM's names
    result = asyncio.run(execute(config_for(long_mock), tmp_path, server_metrics=[metrics]))
    disconnect = result.summary["disconnect"]
    assert disconnect["source"] == "gauge"
    assert disconnect["stopped_by_server"] == 3
    assert (
        disconnect["gauge"]["read"] == f"vllm:num_requests_running at {metrics} (--server-metrics)"
    )
    assert result.summary["server"]["recognised"] == "mock"
