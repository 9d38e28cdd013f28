"""The sample apps, each in a uvicorn subprocess on a free loopback port, in front of
one mock (also a subprocess): started together, stopped after the module."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments

ROOT = Path(__file__).resolve().parents[2]
#: Apps sharing one process (and event loop); the one that blocks its loop runs alone.
SHARED = (
    "content_app",
    "events_app",
    "text_app",
    "sse_starlette_app",
    "buffering_proxy",
    "mislabelled_app",
    "buggy_openai_app",
)
ALONE = ("sync_client_app",)
START_TIMEOUT_S = 60.0
_READY = re.compile(r"serving (\w+) on (http://\S+)")


@pytest.fixture(scope="module")
def upstream() -> Iterator[EmbeddedMock]:
    """The mock the apps relay: TTFT and ITL long enough to see queueing and buffering."""
    with embedded_mock(mock_arguments(ttft_ms=80, itl_ms=8, tokens=16)) as running:
        yield running


def _wait_ready(processes: list[subprocess.Popen[str]], expected: int) -> dict[str, str]:
    """The URL of every app, from the ready lines its process prints.

    A thread per process reads its output line by line (and reads on, so the pipe never
    fills): a process that prints several ready lines at once, as a busy machine makes it
    do, has every one of them read, not only the first of a buffered block.
    """
    lines: queue.Queue[str | None] = queue.Queue()

    def drain(output: TextIO) -> None:
        for line in output:
            lines.put(line)
        lines.put(None)  # the process ended

    for process in processes:
        assert process.stdout is not None
        threading.Thread(target=drain, args=(process.stdout,), daemon=True).start()
    urls: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(urls) < expected:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            break
        if line is None:
            pytest.fail("an app server exited before serving")
        if match := _READY.search(line):
            urls[match.group(1)] = match.group(2)
    assert len(urls) == expected, f"serving after {START_TIMEOUT_S} s: {sorted(urls)}"
    return urls


@pytest.fixture(scope="module")
def apps(upstream: EmbeddedMock) -> Iterator[dict[str, str]]:
    """The base URL of every sample app, all relaying ``upstream``."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.apps.serve", upstream.base_url, *names],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for names in (SHARED, ALONE)
    ]
    try:
        yield _wait_ready(processes, len(SHARED) + len(ALONE))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
