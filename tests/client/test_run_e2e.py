"""The load client end to end against the mock (loopback only, every run bounded).

Real sockets and a real clock: what these tests assert holds however busy the machine
(order, counts, causality against the mock's ground truth). The runner's pacing and the
arithmetic of TTFT and ITL are checked exactly on a virtual clock (``test_pacing``); how
close the stamps come to the mock's writes is measured by ``sse-harness calibrate``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.summary import summarize
from harness.load.config import RunConfig
from harness.load.exchange import Abandon, StreamBounds
from harness.load.payloads import RequestSpec
from harness.load.runner import Runner
from harness.load.schedule import Bounds, ClosedLoop, OpenLoop
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.results import read_records
from harness.run import execute
from harness.servers.embedded import EmbeddedMock
from harness.transports import Timeouts
from tests.launcher import DEADLINE_S, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "harness.cli"]
#: The mock's TTFT (the module's mock), less the 0.5 ms it may write a token early.
MOCK_TTFT_S = 0.040 - 0.0005


def run(config: RunConfig) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    asyncio.run(Runner(config, records.append).run())
    return records


def config_for(mock: EmbeddedMock, **changes: object) -> RunConfig:
    base = {
        "spec": RequestSpec(url=mock.base_url),
        "profile": ClosedLoop(concurrency=4, ramp_up_s=0.05),
        "bounds": Bounds(requests=12),
        "timeouts": Timeouts(ttft_s=10, idle_s=10, total_s=30),
    }
    base.update(changes)
    return RunConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_every_token_is_stamped_after_the_mock_wrote_it(mock: EmbeddedMock, transport: str) -> None:
    records = run(config_for(mock, transport=transport))
    summary = summarize(records)
    assert summary["requests"] == 12
    assert summary["errors"] == 0
    assert summary["ttft_s"]["count"] == summary["tpot_s"]["count"] == 12
    assert summary["ttft_s"]["p50"] >= MOCK_TTFT_S  # the mock waits that long after receipt
    assert all(r.output_tokens == 12 and r.done_sentinel for r in records)
    for record in records:
        assert record.mock_request_id
        truth = mock.truth(record.mock_request_id, timeout_s=DEADLINE_S)
        assert truth is not None
        # one clock for both on Linux: sent before received, each token after its write
        assert record.t_sent_ns <= truth["received_ns"]
        written = truth["token_write_ns"]
        assert len(record.token_times_ns) == len(written) == 12
        lags_ns = [a - w for a, w in zip(record.token_times_ns, written, strict=True)]
        assert min(lags_ns) >= 0, lags_ns
        assert record.token_times_ns == sorted(record.token_times_ns)


def test_closed_loop_holds_its_concurrency(mock: EmbeddedMock) -> None:
    records = run(
        config_for(mock, profile=ClosedLoop(concurrency=5, ramp_up_s=0), bounds=Bounds(requests=20))
    )
    events = sorted([(r.t_sent_ns, 1) for r in records] + [(r.t_end_ns, -1) for r in records])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 5
    assert {r.user for r in records} == set(range(5))


def test_an_open_loop_sends_every_request_of_its_schedule(mock: EmbeddedMock) -> None:
    # its pacing is checked exactly on a virtual clock (test_pacing)
    records = run(config_for(mock, profile=OpenLoop(rate=20), bounds=Bounds(requests=10)))
    assert len(records) == 10
    assert all(r.outcome is Outcome.OK for r in records)
    assert all(r.t_scheduled_ns is not None and r.t_sent_ns >= r.t_scheduled_ns for r in records)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("http_500", ErrorKind.HTTP_STATUS), ("http_503", ErrorKind.RATE_LIMITED),
     ("malformed_json@3", ErrorKind.PROTOCOL), ("disconnect_after=3", ErrorKind.TRUNCATED),
     ("error_event@3", ErrorKind.STREAM_ERROR), ("stall=60@2", ErrorKind.TIMEOUT_IDLE)],
)  # fmt: skip
def test_every_fault_becomes_its_error_kind_and_the_run_goes_on(
    mock: EmbeddedMock, fault: str, kind: ErrorKind
) -> None:
    spec = RequestSpec(url=mock.base_url, headers=(("X-Mock-Fault", fault),))
    # a short idle timeout only where the stall must meet it: elsewhere a busy machine's
    # slow answer is no stall
    timeouts = Timeouts(ttft_s=10, idle_s=1.0 if "stall" in fault else 10, total_s=30)
    records = run(config_for(mock, spec=spec, bounds=Bounds(requests=3), timeouts=timeouts))
    assert len(records) == 3
    assert {r.error_kind for r in records} == {kind}, [r.error_message for r in records]
    assert all(r.error_message for r in records)


def test_a_complete_answer_without_its_terminator_is_ok_and_says_so(mock: EmbeddedMock) -> None:
    spec = RequestSpec(url=mock.base_url, headers=(("X-Mock-Fault", "no_terminator"),))
    records = run(config_for(mock, spec=spec, bounds=Bounds(requests=3)))
    assert [r.outcome for r in records] == [Outcome.OK] * 3, [r.error_message for r in records]
    assert not any(r.done_sentinel for r in records)
    assert all(r.finish_reason == "stop" and r.ttft_s is not None for r in records)


def test_cut_streams_are_not_errors(mock: EmbeddedMock) -> None:
    records = run(
        config_for(mock, stream_bounds=StreamBounds(max_events=4), bounds=Bounds(requests=2))
    )
    assert {r.outcome for r in records} == {Outcome.CUT}
    assert all(r.events == 4 for r in records)


def test_abandoned_streams_close_at_the_asked_point_and_the_mock_stops(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    # a token every 10 s: a write after the close would be a stream the mock kept on, not
    # one a busy machine was slow to notice (how fast the mock notices is measured on a
    # fake clock in tests/mock/test_stream.py)
    slow = (("X-Mock-Itl-Ms", "10000"), ("X-Mock-Tokens", "30"))
    config = config_for(mock, spec=RequestSpec(url=mock.base_url, headers=slow),
                        disconnect_rate=1.0, disconnect_after=Abandon(after_tokens=1),
                        bounds=Bounds(requests=4))  # fmt: skip
    result = asyncio.run(execute(config, tmp_path, truth_url=mock.base_url))
    assert {r.outcome for r in result.records} == {Outcome.ABANDONED}
    assert all(r.abandoned_after_tokens == 1 for r in result.records)
    disconnect = result.summary["disconnect"]
    assert disconnect["abandoned"] == 4
    assert disconnect["verifiable"] is True
    assert disconnect["stopped_by_server"] == 4
    assert disconnect["tokens_after_close"] <= 4  # at most one write already under way each
    assert disconnect["stop_latency_ms"]["p99"] >= 0  # noticed after the close
    for record in result.records:
        truth = mock.truth(record.mock_request_id or "", timeout_s=DEADLINE_S)
        assert truth is not None
        assert truth["outcome"] == "disconnected"
        assert truth["tokens_sent"] < truth["tokens_planned"]
    assert result.summary["ttft_s"]["count"] == 0  # kept out of the latency figures


def test_run_writes_its_files_and_no_api_key(mock: EmbeddedMock, tmp_path: Path) -> None:
    secret = "sk-test-NEVER-WRITE-ME-123"
    env = {**os.environ, "OPENAI_API_KEY": secret}
    out = tmp_path / "run"
    command = [*CLI, "run", "--url", mock.base_url, "--requests", "6", "--concurrency", "3",
               "--header", f"X-Extra:{secret}", "--out", str(out), "--quiet"]  # fmt: skip
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert {"results.jsonl", "summary.json", "requests.csv", "report.md"} <= names
    summary = json.loads((out / "summary.json").read_text())
    for key in ("requests", "errors", "error_rate", "output_tokens_per_s", "requests_per_s"):
        assert key in summary
    for key in ("ttft_s", "itl_s", "tpot_s", "e2e_s"):
        assert set(summary[key]) >= {"p50", "p90", "p95", "p99", "p999", "mean", "max"}
    assert summary["config"]["api_key"] == "[redacted]"
    for path in out.iterdir():
        assert secret not in path.read_text(), path.name
    assert secret not in result.stdout + result.stderr


def test_sigint_leaves_a_valid_results_file(mock: EmbeddedMock, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [*CLI, "run", "--url", mock.base_url, "--duration", "30", "--concurrency", "4",
               "--out", str(out), "--quiet", "--grace", "5"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    results = out / "results.jsonl"
    wait_for(lambda: results.exists() and results.stat().st_size >= 2000, "records")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    records = list(read_records(results))
    assert len(records) >= 4
    assert all(r.outcome in (Outcome.OK, Outcome.ERROR) for r in records)
    assert (out / "summary.json").exists()


def test_a_gauge_does_not_credit_the_server_when_the_streams_would_have_ended_anyway(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    # every stream abandoned after 2 tokens, none read to its end and no --max-tokens: when
    # they would have ended by themselves is unknown, so a fall of the gauge proves nothing
    config = config_for(mock, disconnect_rate=1.0, disconnect_after=Abandon(after_tokens=2),
                        bounds=Bounds(requests=3))  # fmt: skip
    gauge = (mock.base_url + "/metrics", "mock_active_streams")
    result = asyncio.run(execute(config, tmp_path, metrics_gauge=gauge))
    disconnect = result.summary["disconnect"]
    assert disconnect["source"] == "gauge"
    assert disconnect["gauge"]["returned"] is True
    assert disconnect["stopped_by_server"] is None
    assert disconnect["stop_latency_ms"]["p99"] is None  # a gauge cannot say that
    assert disconnect["verdict"].startswith("the gauge cannot tell whether the server stopped")
    assert "cannot tell" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "timeseries.csv").read_text().startswith("second,")
