"""The locust web UI in headless Chromium: a test started from the page shows the TTFT row
with requests and the "LLM streams" tab with live tokens/s; stopping it writes the report.

Screenshots are saved under ``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.servers.embedded import EmbeddedMock
from tests.browser.conftest import chromium_path
from tests.locust.conftest import ROOT, SCENARIO
from tests.locust.devtools import DevTools

pytestmark = pytest.mark.slow  # locust and a browser

ARTIFACTS = ROOT / "test-artifacts"

ROWS_JS = (
    "[...document.querySelectorAll('tr')].map(tr => [...tr.cells].map(c => c.innerText.trim()))"
)
TTFT_ROW_JS = f"""const rows = {ROWS_JS};
const ttft = rows.find(r => r[0] === 'SSE' && r[1] === 'TTFT');
return ttft && Number(ttft[2]) > 0 ? rows : null;"""
TOKENS_ROW_JS = f"""const rows = {ROWS_JS};
const tokens = rows.find(r => r[0] === 'output tokens/s');
return tokens && Number(tokens[1].replace(/,/g, '')) > 0 ? rows : null;"""


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


def test_a_test_started_in_the_web_ui_shows_ttft_and_tokens_per_second(
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

        browser.evaluate("document.querySelector('form button[type=submit]').click()")
        rows = browser.wait_for(TTFT_ROW_JS, timeout_s=15)
        if not rows:  # now and then locust's page misses its own start and stays on the form
            # (the test runs: the log has its requests); a reload shows the running test
            browser.send("Page.navigate", url=url)
            rows = browser.wait_for(TTFT_ROW_JS, timeout_s=30)
        if not rows:
            browser.screenshot(ARTIFACTS / "locust-web-ui-no-ttft-row.png")  # what it showed
        assert rows, "no TTFT row with requests appeared"
        by_name = {r[1]: r for r in rows if len(r) > 2}
        assert int(by_name["TTFT"][2]) > 0
        assert float(by_name["TTFT"][4]) >= 20  # median TTFT (ms) at least the mock's 20 ms
        assert "ITL" in by_name
        browser.screenshot(ARTIFACTS / "locust-web-ui-statistics.png")

        browser.evaluate(click_js("[role=tab]", "LLM STREAMS"))
        rows = browser.wait_for(TOKENS_ROW_JS, timeout_s=20)
        assert rows, "the LLM streams tab showed no tokens/s"
        figures = {r[0]: r for r in rows}
        assert float(figures["TTFT p50 (ms)"][1]) >= 20
        browser.screenshot(ARTIFACTS / "locust-web-ui-llm-streams.png")

        browser.evaluate(click_js("button", "STOP"))
        assert browser.wait_for("return document.body.innerText.includes('STOPPED');")
    finally:
        locust.terminate()
        locust.wait(timeout=30)
    log_text = log_path.read_text()
    assert f"sse-harness: wrote {out}" in log_text, log_text[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] > 0
    assert summary["ttft_s"]["p50"] >= 0.020
