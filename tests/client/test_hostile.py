"""``sse-harness run`` against a hostile server (``tests/apps/hostile.py``), used as a new
user would from the command line: deadlines hold before the first byte of the headers,
payloads that break our readers are recorded errors, keys echoed back reach no file and
no terminal, and an empty 200 is no success. Loopback only; every run is bounded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs `sse-harness run` against a hostile server

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "harness.cli"]
KEY = "sk-hostile-test-key-0123456789"
HEADER_VALUE = "custom-header-value-4242"
TRANSPORTS = ["httpx", "aiohttp", "kernel"]
#: A request the deadline ended is over well before this; one that waited for the run's
#: 60 s grace period is not: a bound that tells the two apart, not a measurement.
GRACE_MISSED_S = 30


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.hostile"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"serving hostile on (http://\S+)", line)
        assert match, f"the hostile server did not start: {line!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def run(url: str, out: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], list]:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    command = [
        *CLI,
        "run",
        "--url",
        url,
        "--out",
        str(out),
        "--header",
        f"x-secret: {HEADER_VALUE}",
    ]
    done = subprocess.run(
        [*command, *options], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    lines = (out / "results.jsonl").read_text().splitlines()
    return done, [json.loads(line) for line in lines]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_headers_sent_one_byte_at_a_time_end_at_the_total_timeout(
    hostile: str, tmp_path: Path, transport: str
) -> None:
    _, records = run(
        f"{hostile}/slow-headers",
        tmp_path,
        *("--requests", "2", "--concurrency", "2", "--total-timeout", "1"),
        *("--transport", transport, "--grace", "60"),
    )
    assert [r["error_kind"] for r in records] == ["timeout_total"] * 2
    for record in records:  # the deadline, not the run's grace period, ended them
        assert (record["t_end_ns"] - record["t_sent_ns"]) / 1e9 < GRACE_MISSED_S


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_of_comments_alone_ends_at_the_ttft_timeout(
    hostile: str, tmp_path: Path, transport: str
) -> None:
    _, records = run(
        f"{hostile}/comments",
        tmp_path,
        *("--requests", "2", "--concurrency", "2", "--ttft-timeout", "0.5"),
        *("--transport", transport, "--grace", "60"),
    )
    assert [r["error_kind"] for r in records] == ["timeout_ttft"] * 2
    for record in records:
        assert (record["t_end_ns"] - record["t_sent_ns"]) / 1e9 < GRACE_MISSED_S


def test_deeply_nested_json_is_a_protocol_error_and_every_request_is_made(
    hostile: str, tmp_path: Path
) -> None:
    _, records = run(f"{hostile}/deep-json", tmp_path, "--requests", "4", "--concurrency", "1")
    assert len(records) == 4
    assert {r["error_kind"] for r in records} == {"protocol"}
    assert all("deep" in r["error_message"] for r in records)


@pytest.mark.parametrize("route", ["empty", "garbage"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_200_without_events_is_an_error(
    hostile: str, tmp_path: Path, route: str, transport: str
) -> None:
    _, records = run(f"{hostile}/{route}", tmp_path, "--requests", "2", "--transport", transport)
    assert [r["error_kind"] for r in records] == ["protocol"] * 2
    assert all("no event" in r["error_message"] for r in records)


@pytest.mark.parametrize("route", ["echo", "echo-status"])
def test_keys_echoed_back_reach_no_file_and_no_terminal(
    hostile: str, tmp_path: Path, route: str
) -> None:
    done, records = run(f"{hostile}/{route}", tmp_path, "--requests", "2", "--concurrency", "1")
    assert len(records) == 2
    assert all(r["outcome"] == "error" for r in records)
    outputs = {path.name: path.read_text() for path in tmp_path.iterdir()}
    outputs |= {"stdout": done.stdout, "stderr": done.stderr}
    assert {"results.jsonl", "summary.json", "report.md", "report.html"} <= outputs.keys()
    for name, text in outputs.items():
        assert KEY not in text, name
        assert HEADER_VALUE not in text, name
    assert "[redacted]" in outputs["results.jsonl"]


def test_an_echoed_key_is_redacted_from_every_field_a_server_fills(
    hostile: str, tmp_path: Path
) -> None:
    _, records = run(f"{hostile}/echo", tmp_path, "--requests", "1", "--dialect", "openai-chat")
    (record,) = records
    assert "[redacted]" in record["content_type"]
    assert "[redacted]" in record["finish_reason"]
    assert "[redacted]" in record["usage"]["note"]
    assert "[redacted]" in record["error_message"]


@pytest.mark.parametrize("follow", [False, True], ids=["default", "follow-redirects"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_redirect_to_another_origin_is_recorded_not_followed(
    hostile: str, tmp_path: Path, transport: str, follow: bool
) -> None:
    options = ["--requests", "1", "--transport", transport]
    _, records = run(f"{hostile}/redirect", tmp_path, *options, *(["--follow-redirects"] * follow))
    (record,) = records
    assert record["status"] == 301
    assert record["error_kind"] == "http_status"
    assert "redirect to http://127.0.0.2:9/ (not followed)" in record["error_message"]


def run_cli(url: str, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [*CLI, "run", "--url", url, "--out", str(out), "--quiet", *options]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_a_complete_stream_without_done_is_ok_and_the_habit_is_counted(
    hostile: str, tmp_path: Path
) -> None:
    done = run_cli(f"{hostile}/no-done", tmp_path, "--requests", "4", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    summary = summary_of(tmp_path)
    assert summary["ok"] == 4
    assert summary["no_terminator"] == 4
    assert summary["ttft_s"]["p50"] is not None
    assert "without the stream's terminator" in done.stderr


def test_a_json_200_is_not_streamed_and_the_run_exits_1(hostile: str, tmp_path: Path) -> None:
    done = run_cli(f"{hostile}/json", tmp_path, "--requests", "3")
    assert done.returncode == 1
    assert summary_of(tmp_path)["errors_by_kind"] == {"not_streamed": 3}
    assert "not_streamed: 3, first: the answer is not an event stream" in done.stderr
    assert "no request succeeded" in done.stderr


def test_a_refused_port_stops_early_and_exits_1_naming_connect(tmp_path: Path) -> None:
    done = run_cli(
        "http://127.0.0.1:9/v1/chat/completions",
        tmp_path,
        *("--concurrency", "2", "--duration", "60", "--requests", "100000"),
    )
    assert done.returncode == 1
    summary = summary_of(tmp_path)
    assert summary["gave_up"].startswith("cannot connect")
    assert summary["requests"] < 10  # not thousands of requests to a dead port
    assert "stopped early: cannot connect" in done.stderr


def test_max_error_rate_fails_a_run_with_too_many_errors(hostile: str, tmp_path: Path) -> None:
    done = run_cli(f"{hostile}/limited", tmp_path, "--requests", "12", "--concurrency", "6",
                   "--max-error-rate", "0.01")  # fmt: skip
    summary = summary_of(tmp_path)
    assert summary["errors_by_kind"].get("rate_limited", 0) > 0
    assert done.returncode == 1
    assert "above --max-error-rate" in done.stderr


def test_retry_429_gets_requests_through_a_server_that_limits_streams(
    hostile: str, tmp_path: Path
) -> None:
    done = run_cli(f"{hostile}/limited", tmp_path, "--requests", "15", "--concurrency", "4",
                   "--retry-429", "5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sum(r["outcome"] == "ok" for r in records) >= 14
    retried = [r for r in records if r["attempts"]]
    assert retried
    for record in retried:  # every attempt kept, measured from the first one's send
        assert all(a["status"] == 429 and a["retry_after_s"] == 1.0 for a in record["attempts"])
        assert record["t_scheduled_ns"] == record["attempts"][0]["t_sent_ns"]


def test_tool_call_only_streams_have_ttft_and_tokens(hostile: str, tmp_path: Path) -> None:
    done = run_cli(f"{hostile}/tools", tmp_path, "--requests", "3", "--concurrency", "1")
    assert done.returncode == 0, done.stderr
    summary = summary_of(tmp_path)
    assert summary["ttft_s"]["p50"] is not None
    assert summary["output_tokens_per_s"] > 0
    assert summary["token_events_by_kind"] == {"text": 0, "reasoning": 0, "tool_call": 9}
    assert "token events: 0 text, 0 reasoning, 9 tool-call arguments" in done.stderr


@pytest.mark.parametrize(
    ("options", "named"),
    [(["--concurrency", "0"], "concurrency"), (["--warmup", "5", "--duration", "2"], "warmup"),
     (["--requests", "-3"], "requests"), (["--total-timeout", "0"], "total-timeout"),
     (["--url", "ftp://127.0.0.1/x"], "url"), (["--max-error-rate", "2"], "max-error-rate")],
)  # fmt: skip
def test_impossible_options_are_one_line_and_exit_2(options: list[str], named: str) -> None:
    done = subprocess.run(
        [*CLI, "run", *options], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"sse-harness: error: {named}")


def test_check_judges_a_redirect_to_another_origin_without_following_it(
    hostile: str, tmp_path: Path
) -> None:
    report = tmp_path / "check.json"
    command = [*CLI, "check", f"{hostile}/redirect", "--follow-redirects", "--quiet",
               "--json", str(report)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1
    status = next(c for c in json.loads(report.read_text())["checks"] if c["id"] == "http.status")
    assert status["status"] == "FAIL"
    assert "301" in json.dumps(status)
