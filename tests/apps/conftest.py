"""The sample apps, each in a uvicorn subprocess on a free loopback port, in front of
one mock (also a subprocess): started together, stopped after the module."""

from __future__ import annotations

import re
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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
    selector = selectors.DefaultSelector()
    for process in processes:
        assert process.stdout is not None
        selector.register(process.stdout, selectors.EVENT_READ)
    urls: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(urls) < expected and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(deadline - time.monotonic(), 0)):
            line = key.fileobj.readline()  # type: ignore[union-attr]
            match = _READY.search(line)
            if match:
                urls[match.group(1)] = match.group(2)
            elif not line:
                pytest.fail("an app server exited before serving")
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
