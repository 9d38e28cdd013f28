"""Locust runs against the mock on loopback, each in subprocesses and bounded by -t.

Locust's clock cannot be injected: each run is long enough that what a test waits for
(each user's first streams, a shape's first step) happens well inside it on a busy
machine, and a test asserts counts and order, never how fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.record import ErrorKind, Outcome
from harness.results import read_records
from harness.servers.embedded import EmbeddedMock
from tests.locust.conftest import ROOT, SCENARIO, SHAPES, STREAM, run_locust

pytestmark = pytest.mark.slow


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("http_client", ["fasthttp", "requests"])
def test_a_run_writes_the_report_and_its_records_match_locusts_counts(
    mock: EmbeddedMock, tmp_path: Path, http_client: str
) -> None:
    out = tmp_path / "run"
    run = run_locust(["-u", "4", "-r", "10", "-t", "3s", "--host", mock.base_url, "--out",
                      str(out), "--stop-timeout", "10", "--http-client", http_client])  # fmt: skip
    assert run.returncode == 0, run.log[-3000:]
    records = list(read_records(out / "results.jsonl"))
    assert {r.user for r in records} == {0, 1, 2, 3}  # every user's streams were recorded
    assert all(r.outcome is Outcome.OK for r in records)
    # one locust request per stream, under the URL's path: no row of tokens or gaps
    assert [(e["method"], e["name"]) for e in run.stats] == [("SSE", STREAM)]
    assert run.count() == len(records)
    stream = run.stats[0]
    assert stream["total_content_length"] == 10 * len(records)  # output tokens
    assert stream["total_response_time"] >= 65 * len(records)  # E2E: 20 ms + 9 gaps of 5 ms
    assert all(r.output_tokens == 10 and len(r.token_times_ns) == 10 for r in records)
    summary = summary_of(out)
    assert summary["requests"] == len(records)
    assert summary["config"]["transport"] == f"locust-{http_client}"
    assert summary["ttft_s"]["p50"] >= 0.020  # the mock's TTFT, measured from raw records
    assert (out / "report.md").exists()
    assert (out / "requests.csv").exists()


def test_sse_harness_locust_runs_a_master_and_two_workers_whose_records_add_up(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    cli = [sys.executable, "-m", "harness.cli", "locust", "--workers", "2",
           "--mock-ttft-ms", "20", "--mock-itl-ms", "5", "--mock-tokens", "10"]  # fmt: skip
    run = run_locust(["-u", "6", "-r", "20", "-t", "3s", "--out", str(out)], command=cli)
    assert run.returncode == 0, run.log[-3000:]
    assert f"wrote {out}/" in run.log
    records = list(read_records(out / "results.jsonl"))
    summary = summary_of(out)
    assert len(summary["locust"]["nodes"]) == 2
    assert summary["locust"]["missing_nodes"] == []
    workers = {r.request_id.split("-")[0] for r in records}
    assert len(workers) == 2  # both workers' records reached the master
    cancelled = sum(1 for r in records if r.error_kind is ErrorKind.CANCELLED)
    assert run.count() == len(records) - cancelled  # every ended stream, once
    assert summary["requests"] == len(records)
    assert summary["config"]["url"].startswith("http://127.0.0.1:")  # the embedded mock


def test_the_step_shape_raises_users_and_ends_the_test(mock: EmbeddedMock, tmp_path: Path) -> None:
    out = tmp_path / "run"
    scenario = [sys.executable, "-m", "locust", "-f", f"{SCENARIO},{SHAPES}"]
    # steps of 3 s: the first request may come a second and a half late on a busy machine
    # and still fall in the first step (the shape's timing itself: test_shapes)
    run = run_locust(["--shape", "step", "-u", "4", "-r", "20", "--shape-step-users", "2",
                      "--shape-step-seconds", "3", "--host", mock.base_url, "--out", str(out),
                      "--stop-timeout", "10"], command=scenario)  # fmt: skip
    assert run.returncode == 0, run.log[-3000:]
    assert "Shape test updating to 4 users" in run.log
    records = list(read_records(out / "results.jsonl"))
    first_step = min(r.t_sent_ns for r in records) + 1_500_000_000
    assert {r.user for r in records if r.t_sent_ns < first_step} <= {0, 1}
    assert {r.user for r in records} == {0, 1, 2, 3}
    assert summary_of(out)["config"]["profile"]["shape"] == "LLMLoadShape"


def test_the_rest_of_the_harness_never_imports_locust_or_gevent() -> None:
    code = (
        "import sys, harness.cli, harness.cli.locust_command, harness.locust.records,"
        " harness.locust.settings, harness.locust.shapes, harness.calibration.locust_bench;"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("query", "options", "kind"),
    [
        ("mock_fault=error_event@3", [], ErrorKind.STREAM_ERROR),
        ("mock_fault=http_500", [], ErrorKind.HTTP_STATUS),
        ("mock_ttft_ms=5000", ["--ttft-timeout", "0.2"], ErrorKind.TIMEOUT_TTFT),
        ("mock_fault=stall=5@3", ["--idle-timeout", "0.2"], ErrorKind.TIMEOUT_IDLE),
    ],
)
def test_failures_are_rows_named_by_their_error_kind(
    mock: EmbeddedMock, tmp_path: Path, query: str, options: list[str], kind: ErrorKind
) -> None:
    out = tmp_path / "run"
    host = f"{mock.base_url}/v1/chat/completions?{query}"
    run = run_locust(["-u", "2", "-r", "10", "-t", "3s", "--host", host, "--out", str(out),
                      "--stop-timeout", "10", *options])  # fmt: skip
    assert run.returncode == 1, run.log[-3000:]  # locust's exit code when requests failed
    records = list(read_records(out / "results.jsonl"))
    # a request in flight when -t stopped its user is kept as cancelled, which is no
    # failure: whether one was caught so is the machine's timing, at most one a user
    stopped = [r for r in records if r.error_kind is ErrorKind.CANCELLED]
    failed = [r for r in records if r.error_kind is not ErrorKind.CANCELLED]
    assert len(stopped) <= 2
    assert {r.error_kind for r in failed} == {kind}
    error = f"{kind.value} 500" if kind is ErrorKind.HTTP_STATUS else kind.value
    assert run.errors == {error: len(failed)}  # locust's failures table: one row a kind
    assert run.failures() == {STREAM: len(failed)}
    assert run.count() == len(failed)
    assert len(failed) > 2  # a failed stream frees its user's connection for the next one
    cancelled = {ErrorKind.CANCELLED.value: len(stopped)} if stopped else {}
    assert summary_of(out)["errors_by_kind"] == {kind.value: len(failed), **cancelled}


def test_a_stream_that_locust_stops_is_kept_as_cancelled_but_is_no_failure(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    # about 60 s per stream, stopped after 5 s: long enough for the first tokens to come
    # on a busy machine, far too short for a stream to end
    host = f"{mock.base_url}/v1/chat/completions?mock_tokens=12000"
    run = run_locust(["-u", "2", "-r", "10", "-t", "5s", "--host", host, "--out", str(out)])
    assert run.returncode == 0, run.log[-3000:]
    records = list(read_records(out / "results.jsonl"))
    assert [r.error_kind for r in records] == [ErrorKind.CANCELLED] * 2
    assert all(r.token_times_ns for r in records)  # what arrived before the stop is kept
    assert run.failures() == {}
    assert run.count() == 0  # no stream ended: locust counts no request


def test_an_invalid_option_stops_the_test_with_exit_code_2(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    run = run_locust(["-u", "1", "-r", "10", "-t", "5s", "--host", mock.base_url,
                      "--out", str(tmp_path / "run"), "--max-tokens", "lots"])  # fmt: skip
    assert run.returncode == 2
    assert "max-tokens: not a whole number: 'lots'" in run.log
    assert run.count() == 0


def test_sse_harness_locust_scrapes_the_server_and_puts_its_view_beside_the_clients(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cli = [sys.executable, "-m", "harness.cli", "locust", "--server-metrics",
           f"{mock.base_url}/metrics", "--scrape-interval", "0.2"]  # fmt: skip
    run = run_locust(["-u", "2", "-r", "10", "-t", "3s", "--host", mock.base_url, "--out",
                      str(out), "--stop-timeout", "10"], command=cli)  # fmt: skip
    assert run.returncode == 0, run.log[-3000:]
    summary = summary_of(out)
    server = summary["server"]
    assert server["recognised"] == "mock"
    assert server["server_ttft_s"]["count"] >= summary["requests"] > 0
    gap = summary["client_vs_server"]
    assert gap["ttft_p50_ms"] >= -gap["bound_ms"]["ttft_p50_ms"]  # never faster than the server
    assert "## The server's own view" in (out / "report.md").read_text()
