"""A run that scrapes the mock's vLLM-named metrics: the server's TTFT and E2E quantiles,
read from its histograms, agree with the mock's ground truth within their stated bound;
the client is never faster than the server; a server whose scrape fails costs a recorded
error per scrape and never the run."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.schedule import Bounds, ClosedLoop
from harness.results import read_scrapes
from harness.run import Sweep, execute
from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments
from harness.transports import Timeouts
from tests.apps.metrics_app import metrics_app

pytestmark = pytest.mark.slow  # real runs against a mock process


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=60, itl_ms=10, tokens=8)) as running:
        yield running


def config_for(mock: EmbeddedMock, requests: int) -> RunConfig:
    return RunConfig(
        spec=RequestSpec(url=mock.base_url + "/v1/chat/completions", max_tokens=8),
        profile=ClosedLoop(concurrency=4, ramp_up_s=0.05),
        bounds=Bounds(requests=requests),
        timeouts=Timeouts(ttft_s=20, idle_s=20, total_s=60),
    )


def order_statistic(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def test_the_servers_quantiles_hold_to_the_mocks_truth_within_their_bound(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    result = asyncio.run(
        execute(
            config_for(mock, 60),
            tmp_path,
            server_metrics=[mock.base_url + "/metrics"],
            scrape_interval_s=0.2,
        )
    )
    server = result.summary["server"]
    assert server["recognised"] == "mock"
    assert server["scrape_errors"] == 0
    assert list(read_scrapes(tmp_path / "server_metrics.jsonl"))  # every scrape kept
    found = [mock.truth(r.mock_request_id) for r in result.records if r.mock_request_id]
    truths = [t for t in found if t is not None]
    assert len(truths) == len(found)
    ttft = [(t["token_write_ns"][0] - t["received_ns"]) / 1e9 for t in truths]
    e2e = [(t["last_write_ns"] - t["received_ns"]) / 1e9 for t in truths]
    assert server["server_ttft_s"]["count"] == len(ttft) == 60  # no warm-up: every request
    for figure, values in (("server_ttft_s", ttft), ("server_e2e_s", e2e)):
        for stat, q in (("p50", 0.5), ("p99", 0.99)):
            bound = server[figure]["bound_s"][stat]
            assert bound is not None
            assert bound <= 0.004  # the mock's fine edges: a few ms
            assert abs(server[figure][stat] - order_statistic(values, q)) <= bound + 1e-9
    assert server["running"]["max"] <= 4
    assert server["waiting"]["max"] == 0
    gaps = result.summary["client_vs_server"]
    # the client sends before the server receives and reads after it writes: its TTFT
    # can only be longer, give or take the server figure's bound
    assert gaps["ttft_p50_ms"] >= -gaps["bound_ms"]["ttft_p50_ms"]
    assert gaps["e2e_p50_ms"] >= -gaps["bound_ms"]["e2e_p50_ms"]
    report = (tmp_path / "report.md").read_text()
    assert "## The server's own view" in report
    assert "The gap holds what happens before the server starts its own clock" in report
    page = (tmp_path / "report.html").read_text()
    assert "server: running" in page  # the panel's legend, beside "client: in flight"
    assert "client: in flight" in page


def test_servers_that_hang_or_talk_garbage_cost_a_recorded_error_per_scrape(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    with metrics_app() as app:
        bad = [f"{app}/hang", f"{app}/garbage", f"{app}/error"]
        result = asyncio.run(
            execute(config_for(mock, 8), tmp_path, server_metrics=bad, scrape_interval_s=0.2)
        )
    assert result.summary["requests"] == 8
    assert result.summary["errors"] == 0
    server = result.summary["server"]
    scrapes = list(read_scrapes(tmp_path / "server_metrics.jsonl"))
    assert server["scrapes"] == 0
    assert server["scrape_errors"] == len(scrapes) >= 2 * len(bad)  # the first and the last
    assert {s.url for s in scrapes} == set(bad)
    assert "recognised" in server
    assert result.summary.get("client_vs_server") is None


def test_an_unknown_servers_named_series_is_reported(mock: EmbeddedMock, tmp_path: Path) -> None:
    with metrics_app() as app:
        result = asyncio.run(
            execute(
                config_for(mock, 4),
                tmp_path,
                server_metrics=[f"{app}/unknown"],
                server_series=['app_streams{route="chat"}'],
                scrape_interval_s=0.2,
            )
        )
    server = result.summary["server"]
    assert server["recognised"] is None
    assert server["series"]['app_streams{route="chat"}']["max"] == 3.0


def test_each_level_of_a_sweep_gets_the_servers_figures_over_its_own_window(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    result = asyncio.run(
        execute(
            config_for(mock, 12),
            tmp_path,
            sweep=Sweep("concurrency", (1.0, 4.0)),
            server_metrics=[mock.base_url + "/metrics"],
            scrape_interval_s=0.1,
        )
    )
    segments = result.summary["segments"]
    assert [s["segment"] for s in segments] == ["concurrency=1", "concurrency=4"]
    for segment in segments:
        ttft = segment["server"]["server_ttft_s"]
        # the window is framed by scrapes: it holds the level's requests, and may take in
        # a few of its neighbour's (up to one scrape interval on each side)
        assert ttft["count"] >= segment["summary"]["requests"]
        assert ttft["count"] < 24
        assert segment["client_vs_server"]["ttft_p50_ms"] >= -ttft["bound_s"]["p50"] * 1000
    assert segments[0]["server"]["running"]["max"] < segments[1]["server"]["running"]["max"]


def test_the_servers_prefix_cache_hit_rate_is_the_clients_cached_share(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    cache = ["--prefix-cache-tokens", "100000", "--prefill-ms-per-token", "0.02"]
    with embedded_mock(mock_arguments(ttft_ms=10, itl_ms=2, tokens=4, extra=cache)) as mock:
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--url", mock.base_url, "--quiet",
             "--server-metrics", f"{mock.base_url}/metrics", "--scrape-interval", "0.2",
             "--prefix-groups", "2", "--prefix-tokens", "256", "--input-tokens", "32",
             "--requests", "40", "--concurrency", "2", "--out", str(tmp_path)],
            capture_output=True, text=True, cwd=root, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    client = summary["prompt_cache"]["cached_share"]
    server = summary["server"]["prefix_cache_hit_rate"]
    assert client > 0.8  # both prefixes were cached after their first requests
    # the same tokens, counted by each side: the server's counters over the whole run
    assert server == pytest.approx(client, abs=1e-9)
