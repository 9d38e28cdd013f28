"""``run --disconnect-rate 1 --metrics-gauge`` against an app whose tokens come from a
producer thread: one that generates on for clients that left, one that stops."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.lifeline import end_process

pytestmark = pytest.mark.slow  # runs against app servers in subprocesses

ROOT = Path(__file__).resolve().parents[2]
SELECTOR = 'app_streams{route="chat"}'
START_TIMEOUT_S = 60.0
_READY = re.compile(r"serving (\w+) on (http://\S+)")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """The base URL of each mode of ``tests.apps.producer_app``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.producer_app"], stdout=subprocess.PIPE, text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # read on, so that the pipe never fills
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    urls: dict[str, str] = {}
    try:
        while len(urls) < 2:
            if match := _READY.search(lines.get(timeout=START_TIMEOUT_S)):
                urls[match.group(1)] = match.group(2)
        yield urls
    finally:
        end_process(process)


def run(base: str, out: Path, *extra: str, selector: str = SELECTOR) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "harness.cli", "run", "--url", base + "/v1/chat/completions",
        "--disconnect-rate", "1", "--disconnect-after", "2", "--requests", "4",
        "--concurrency", "4", "--ramp-up", "0.2", "--metrics-url", base + "/metrics",
        "--metrics-gauge", selector, "--quiet", "--out", str(out), *extra,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False)  # fmt: skip


def disconnect_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())["disconnect"]


def test_a_server_that_generates_on_is_not_credited_with_stopping(
    servers: dict[str, str], tmp_path: Path
) -> None:
    result = run(servers["keeps_generating"], tmp_path, "--max-tokens", "40")
    assert result.returncode == 0, result.stderr
    disconnect = disconnect_of(tmp_path)
    assert disconnect["abandoned"] == 4
    assert disconnect["source"] == "gauge"
    assert disconnect["stopped_by_server"] == 0
    assert disconnect["gauge"]["kept_generating"] == 4
    assert disconnect["verdict"].startswith("the server kept generating for 4 of the 4")
    # the evidence: it fell back only about when the streams would have ended anyway
    gauge = disconnect["gauge"]
    back = gauge["back_to_baseline_after_last_close_s"]
    assert back is None or back > gauge["would_have_ended_after_last_close_s"] / 2
    assert disconnect["verdict"] in (tmp_path / "report.md").read_text()


def test_a_server_that_stops_on_disconnect_is_credited_with_all(
    servers: dict[str, str], tmp_path: Path
) -> None:
    # 20 s streams: a fall within half the rest is a stop, and a busy machine needs far less
    result = run(servers["stops"], tmp_path, "--max-tokens", "400")
    assert result.returncode == 0, result.stderr
    disconnect = disconnect_of(tmp_path)
    assert disconnect["stopped_by_server"] == 4
    assert disconnect["verifiable"] is True
    assert disconnect["verdict"].startswith("the server stopped all 4")
    assert disconnect["gauge"]["returned"] is True


def test_without_max_tokens_a_gauge_still_up_after_the_closes_is_not_a_stop(
    servers: dict[str, str], tmp_path: Path
) -> None:
    # no stream read to its end and no --max-tokens: when the streams would have ended is
    # unknown, but one still counted a second after its close was not stopped
    result = run(servers["keeps_generating"], tmp_path)
    assert result.returncode == 0, result.stderr
    disconnect = disconnect_of(tmp_path)
    assert disconnect["stopped_by_server"] == 0
    assert disconnect["gauge"]["kept_generating"] == 4
    assert "still counted them 1 s after their close" in disconnect["verdict"]


def test_without_max_tokens_a_quick_fall_is_not_claimed_as_a_stop(
    servers: dict[str, str], tmp_path: Path
) -> None:
    # the gauge fell soon after the closes: a stop, or the streams' natural end? unknown
    result = run(servers["stops"], tmp_path)
    assert result.returncode == 0, result.stderr
    disconnect = disconnect_of(tmp_path)
    assert disconnect["stopped_by_server"] is None
    assert disconnect["verifiable"] is False
    assert "when it would have ended is unknown" in disconnect["verdict"]


@pytest.mark.parametrize(
    ("metrics", "selector", "option"),
    [
        ("{base}/metrics", 'app_streams{route="nope"}', "metrics-gauge"),
        ("{base}/metrics", "app_running", "metrics-gauge"),
        ("{base}/nothing", SELECTOR, "metrics-url"),
    ],
)
def test_a_gauge_that_cannot_be_read_at_the_start_is_a_usage_error(
    servers: dict[str, str], tmp_path: Path, metrics: str, selector: str, option: str
) -> None:
    base = servers["stops"]
    command = [
        sys.executable, "-m", "harness.cli", "run", "--url", base + "/v1/chat/completions",
        "--requests", "1", "--metrics-url", metrics.format(base=base),
        "--metrics-gauge", selector, "--quiet", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60,
                            check=False)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"sse-harness: error: {option}: ")
    assert not (tmp_path / "run").exists()
