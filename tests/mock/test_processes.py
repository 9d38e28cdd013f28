"""Real server processes: determinism across processes, and ``--workers 2`` on one port."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.mock.streams import read

pytestmark = pytest.mark.slow  # mock processes and workers

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"mock LLM server on (http://127\.0\.0\.1:\d+) \((\d+) workers?\)")
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "same prompt"}]}


def wait_for_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The first stdout line, waiting on the pipe (never sleeping) up to ``timeout_s``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                return process.stdout.readline()
    raise AssertionError(f"no ready line within {timeout_s} s")


@contextmanager
def server(*args: str) -> Iterator[str]:
    """Start ``python -m mock_server --port 0 ARGS`` and yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = wait_for_line(process, 30)
        match = READY.match(line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    assert process.returncode == 0


def test_two_processes_with_one_seed_send_the_same_text_and_usage() -> None:
    flags = ("--seed", "42", "--ttft-ms", "1", "--itl-ms", "1", "--tokens", "12")
    with server(*flags) as first, server(*flags) as second:
        results = [
            read(url, "/v1/chat/completions", BODY, dialect="openai-chat")
            for url in (first, second)
        ]
        other_seed = read(first, "/v1/chat/completions", {**BODY, "mock": {"seed": 43}})
    texts = [r.reader.result().text for r in results if r.reader is not None]
    assert texts[0] == texts[1]
    assert len(texts[0].split()) == 12
    assert results[0].reader.result().usage == results[1].reader.result().usage  # type: ignore[union-attr]
    assert other_seed.reader is not None
    assert other_seed.reader.result().text != texts[0]


def test_two_workers_share_the_port_and_answer_for_each_other() -> None:
    with server("--workers", "2", "--ttft-ms", "1", "--itl-ms", "1", "--tokens", "3") as url:
        ids: dict[str, str] = {}
        sent = 0
        while len(ids) < 2 and sent < 200:  # new connections land on either worker
            reading = read(url, "/v1/chat/completions", BODY, dialect="openai-chat")
            assert reading.status == 200
            ids.setdefault(reading.request_id.split("-")[0], reading.request_id)
            sent += 1
        assert set(ids) == {"0", "1"}
        for request_id in ids.values():
            for _ in range(6):  # asked on fresh connections, so on both workers
                reply = httpx.get(f"{url}/mock/requests/{request_id}?wait_ms=5000", timeout=10)
                assert reply.status_code == 200
                assert reply.json()["id"] == request_id
                assert reply.json()["tokens_sent"] == 3
        metrics = httpx.get(url + "/metrics", timeout=10).text
        total = re.search(
            r'mock_requests_total\{endpoint="/v1/chat/completions",status="200"\} (\d+)', metrics
        )
        assert total is not None
        assert int(total.group(1)) == sent  # both workers' counters, summed
        assert f"mock_tokens_sent_total {3 * sent}" in metrics
