"""The locust web UI in headless Chromium: a test started from the page shows one row of
streams and the "LLM streams" tab with its live chart and tokens/s; stopping it writes the
report. Without a browser: locust's requests/s against what the mock counted, and the live
figures of a master with two workers against their merged records.

Screenshots are saved under ``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.results import read_records
from harness.servers.embedded import EmbeddedMock
from tests.browser.conftest import chromium_path
from tests.locust.conftest import LOCUST_TIMEOUT_S, ROOT, SCENARIO, STREAM
from tests.locust.devtools import DevTools

pytestmark = pytest.mark.slow  # locust and a browser

ARTIFACTS = ROOT / "test-artifacts"

ROWS_JS = (
    "[...document.querySelectorAll('tr')].map(tr => [...tr.cells].map(c => c.innerText.trim()))"
)
STREAM_ROW_JS = f"""const rows = {ROWS_JS};
const stream = rows.find(r => r[0] === 'SSE' && r[1] === {json.dumps(STREAM)});
return stream && Number(stream[2]) > 0 ? rows : null;"""
TOKENS_ROW_JS = f"""const rows = {ROWS_JS};
const tokens = rows.find(r => r[0] === 'output tokens/s');
return tokens && Number(tokens[1].replace(/,/g, '')) > 0 ? rows : null;"""
CHART_POINTS_JS = """const chart = document.getElementById('sse-harness-live');
const points = chart ? Number(chart.dataset.points || 0) : 0;
return points >= 5 ? {points, canvases: chart.querySelectorAll('canvas').length} : null;"""


def click_js(selector: str, text: str) -> str:
    found = f".find(e => e.innerText.trim().toUpperCase() === {json.dumps(text)})"
    return f"[...document.querySelectorAll({json.dumps(selector)})]{found}.click()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser(tmp_path: Path) -> DevTools:
    binary = chromium_path()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    devtools = DevTools(binary, tmp_path / "profile")
    yield devtools
    devtools.close()


def test_a_test_started_in_the_web_ui_shows_streams_and_a_live_chart(
    mock: EmbeddedMock, browser: DevTools, tmp_path: Path
) -> None:
    port = free_port()
    out = tmp_path / "run"
    log_path = tmp_path / "locust.log"
    with log_path.open("w") as log:
        locust = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(SCENARIO), "--host", mock.base_url,
             "--web-host", "127.0.0.1", "--web-port", str(port), "-u", "3", "-r", "10",
             "--out", str(out), "--stop-timeout", "5"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        up = f"return await fetch({json.dumps(url)}, {{mode: 'no-cors'}}).then(() => 1, () => 0);"
        assert browser.wait_for(up, timeout_s=30), "the web UI did not come up"
        browser.send("Page.navigate", url=url)
        assert browser.wait_for("return !!document.querySelector('form button[type=submit]');")
        names = browser.evaluate("[...document.querySelectorAll('form [name]')].map(e => e.name)")
        # the scenario's options are in the start form (the web UI camel-cases them)
        assert {"request", "dialect", "model", "maxTokens", "promptFile", "apiKeyEnv"} <= set(names)
        workload = {"dataset", "datasetFormat", "outputTokens", "inputTokens", "prefixGroups",
                    "prefixTokens", "prefixCacheBust", "seed"}  # fmt: skip
        assert workload <= set(names)
        assert "tokenizer" not in names  # the rarely changed ones: command line only

        browser.evaluate("document.querySelector('form button[type=submit]').click()")
        rows = browser.wait_for(STREAM_ROW_JS, timeout_s=15)
        if not rows:  # now and then locust's page misses its own start and stays on the form
            # (the test runs: the log has its requests); a reload shows the running test
            browser.send("Page.navigate", url=url)
            rows = browser.wait_for(STREAM_ROW_JS, timeout_s=30)
        if not rows:
            browser.screenshot(ARTIFACTS / "locust-web-ui-no-stream-row.png")  # what it showed
        assert rows, "no row of streams with requests appeared"
        sse_rows = [r for r in rows if r and r[0] == "SSE"]
        assert [r[1] for r in sse_rows] == [STREAM]  # one row: no TTFT or ITL rows
        assert float(sse_rows[0][4]) >= 65  # median E2E (ms): the mock's 20 + 9 gaps of 5
        browser.screenshot(ARTIFACTS / "locust-web-ui-statistics.png")

        browser.evaluate(click_js("[role=tab]", "LLM STREAMS"))
        rows = browser.wait_for(TOKENS_ROW_JS, timeout_s=20)
        assert rows, "the LLM streams tab showed no tokens/s"
        figures = {r[0]: r for r in rows}
        assert float(figures["TTFT p50 (ms)"][1]) >= 20
        assert float(figures["ITL p50 (ms)"][2]) >= 4  # the whole test's, no longer "-"
        chart = browser.wait_for(CHART_POINTS_JS, timeout_s=30)
        browser.screenshot(ARTIFACTS / "locust-web-ui-llm-streams.png")
        assert chart, "the live chart drew fewer than 5 points"
        assert chart["canvases"] >= 3  # latency, throughput, load

        browser.evaluate(click_js("button", "STOP"))
        assert browser.wait_for("return document.body.innerText.includes('STOPPED');")
        # the chart alone, at /sse-harness/: the stopped test's history stays
        browser.send("Page.navigate", url=f"{url}sse-harness/")
        assert browser.wait_for(CHART_POINTS_JS, timeout_s=20), "the chart page drew nothing"
    finally:
        locust.terminate()
        locust.wait(timeout=30)
    log_text = log_path.read_text()
    assert f"sse-harness: wrote {out}" in log_text, log_text[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] > 0
    assert summary["ttft_s"]["p50"] >= 0.020


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def mock_requests(mock: EmbeddedMock) -> int:
    """Streams the mock has answered on the chat endpoint, from its own counter."""
    with urllib.request.urlopen(f"{mock.base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        int(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mock_requests_total" and sample.labels.get("endpoint") == STREAM
    )


def poll(condition: Callable[[], Any], *, timeout_s: float, every_s: float = 0.25) -> Any:
    """``condition()`` once it is truthy, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with_value = condition()
        if with_value:
            return with_value
        time.sleep(every_s)
    return None


def start_autostarted(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("w") as log:
        return subprocess.Popen(
            [*args, "--web-host", "127.0.0.1", "--autostart", "--loglevel", "INFO"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


def web_ui_state(base: str) -> str | None:
    try:
        return get_json(f"{base}/stats/requests")["state"]
    except OSError:
        return None


def test_locusts_requests_per_second_are_the_streams_the_mock_answered(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    locust = start_autostarted(
        [sys.executable, "-m", "locust", "-f", str(SCENARIO), "--host", mock.base_url,
         "--web-port", str(port), "-u", "10", "-r", "10", "-t", "15s", "--autoquit", "5",
         "--out", str(tmp_path / "run"), "--stop-timeout", "5"],
        tmp_path / "locust.log",
    )  # fmt: skip
    try:
        assert poll(lambda: web_ui_state(base) == "running", timeout_s=30), "no test started"
        time.sleep(3)  # the users are spawned (10 a second) and streaming
        first, first_at = mock_requests(mock), time.monotonic()
        time.sleep(10)
        mock_rps = (mock_requests(mock) - first) / (time.monotonic() - first_at)
        stats = get_json(f"{base}/stats/requests")
        live = get_json(f"{base}/sse-harness/live")
        reset = urllib.request.Request(f"{base}/stats/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=10) as response:  # the UI's "reset stats"
            assert response.read() == b"ok"
        after_reset = get_json(f"{base}/sse-harness/live")
    finally:
        locust.wait(timeout=LOCUST_TIMEOUT_S)
    log_text = (tmp_path / "locust.log").read_text()
    assert stats["state"] == "running", log_text[-3000:]
    # locust's requests/s is the last 10 s of streams: what the mock answered, no tokens
    assert stats["total_rps"] == pytest.approx(mock_rps, rel=0.25), (stats["total_rps"], mock_rps)
    assert [(s["method"], s["name"]) for s in stats["stats"]] == [
        ("SSE", STREAM),
        ("", "Aggregated"),
    ]
    points = [p for p in live["history"] if p["ttft_p50_ms"] and p["tokens_per_s"]]
    assert len(points) >= 5
    assert all(p["ttft_p50_ms"] >= 20 for p in points)  # the mock's TTFT is 20 ms
    assert max(p["users"] for p in live["history"]) == 10
    assert max(p["in_flight"] for p in live["history"]) > 0
    assert after_reset["requests"] < live["requests"] / 2  # our figures start afresh too
    assert len(after_reset["history"]) < len(live["history"])


def test_a_masters_live_figures_are_its_workers_merged_records(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "run"
    locust = start_autostarted(
        [sys.executable, "-m", "harness.cli", "locust", "--workers", "2",
         "--mock-ttft-ms", "20", "--mock-itl-ms", "5", "--mock-tokens", "10",
         "--web-port", str(port), "-u", "6", "-r", "20", "-t", "8s", "--autoquit", "10",
         "--out", str(out)],
        tmp_path / "locust.log",
    )  # fmt: skip
    try:
        assert poll(lambda: web_ui_state(base) == "running", timeout_s=45), "no test started"
        assert poll(lambda: web_ui_state(base) == "stopped", timeout_s=45), "the test ran on"
        # the master asks the workers for their last records when the test stops
        live = poll(
            lambda: (
                (v := get_json(f"{base}/sse-harness/live"))["requests"] == v["records_written"]
                and (out / "summary.json").exists()
                and v
            ),
            timeout_s=45,
        )
    finally:
        locust.wait(timeout=LOCUST_TIMEOUT_S)
    log_text = (tmp_path / "locust.log").read_text()
    assert live, log_text[-3000:]
    records = list(read_records(out / "results.jsonl"))
    assert live["requests"] == len(records)  # every record of both workers, once
    assert len({r.request_id.split("-")[0] for r in records}) == 2
    assert len(live["nodes"]) == 2
    assert any(p["ttft_p50_ms"] and p["tokens_per_s"] for p in live["history"])
    assert max(p["users"] for p in live["history"]) == 6
