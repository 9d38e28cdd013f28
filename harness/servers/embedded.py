"""The embedded default target: the mock LLM server, started in a process of its own.

This is the one module of ``harness`` that reaches ``mock_server``. The mock runs in a
separate process (pinned to another core where the machine has one), so that its work
does not share the client's interpreter and distort what the client measures.

The mock never outlives the process that started it (``harness.lifeline``): it holds the
read end of a pipe whose write end only this process has, and stops as on SIGTERM at end
of file, which comes however this process ends, even by SIGKILL; on Linux the kernel also
sends it SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG), so start it from
a thread that outlives it, as the ``with`` block of ``embedded_mock`` does. It runs in a
session of its own, so a signal to the command's process group (Ctrl-C, ``timeout``) does
not reach it: the command stops it once its own in-flight streams have ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from harness.errors import HarnessError
from harness.lifeline import end_process

__all__ = ["EmbeddedMock", "embedded_mock", "fetch_truth", "fetch_truths", "mock_arguments"]

_READY = re.compile(r"mock LLM server on (http://\S+)")
START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class EmbeddedMock:
    """A running embedded mock: where it listens and how to ask for its ground truth."""

    base_url: str
    pid: int

    def truth(self, mock_request_id: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
        return fetch_truth(self.base_url, mock_request_id, timeout_s=timeout_s)


def mock_arguments(
    *, ttft_ms: float, itl_ms: float, tokens: int, seed: int = 0, extra: Sequence[str] = ()
) -> list[str]:
    """The mock's command-line options for a timing profile."""
    return [
        "--ttft-ms",
        str(ttft_ms),
        "--itl-ms",
        str(itl_ms),
        "--tokens",
        str(tokens),
        "--seed",
        str(seed),
        *extra,
    ]


@contextmanager
def embedded_mock(
    arguments: Sequence[str] = (), *, cpu: int | None = None, module: str = "mock_server"
) -> Iterator[EmbeddedMock]:
    """Start the mock on a free loopback port in a child process; stop it on exit.

    The mock stops by itself when this process ends, and on Linux when the calling thread
    ends: enter and leave the context in a thread that lives as long as the mock should.

    Args:
        arguments: extra ``python -m mock_server`` options (timing, faults, workers).
        cpu: pin the mock to this CPU (Linux), keeping the client's core free.
        module: the server to run, ``python -m module``: the mock, or a server that takes
            the same listening and parent options and prints the same line when ready
            (``bench mock``'s plain yardstick).

    Raises:
        HarnessError: the mock did not start (its error output is in the message).
    """
    # the mock reads the pipe until end of file: this process's end, or its closing below
    watched, held = os.pipe()
    command = [
        sys.executable,
        "-m",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--parent-pid",
        str(os.getpid()),
        "--parent-pipe",
        str(watched),
        *arguments,
    ]
    with tempfile.TemporaryFile("w+") as errors, contextlib.ExitStack() as pipe:
        pipe.callback(os.close, held)
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                start_new_session=True,
                pass_fds=(watched,),
            )
        finally:
            os.close(watched)
        try:
            if cpu is not None and hasattr(os, "sched_setaffinity"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(process.pid, {cpu})
            base_url = _wait_ready(process, errors)
            # keep reading its output, so that a chatty mock never blocks on a full pipe
            threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
            yield EmbeddedMock(base_url, process.pid)
        finally:
            end_process(process)


def _drain(stream: IO[str] | None) -> None:
    if stream is not None:
        for _ in stream:
            pass


def _wait_ready(process: subprocess.Popen[str], errors: IO[str]) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(deadline - time.monotonic(), 0)):
            break
        line = process.stdout.readline()
        if not line:  # the process ended
            break
        match = _READY.search(line)
        if match:
            return match.group(1)
    process.kill()
    process.wait(timeout=10)
    errors.seek(0)
    error = errors.read()[-2000:]
    raise HarnessError(f"the embedded mock did not start: {error.strip() or 'no output'}")


def fetch_truth(
    base_url: str, mock_request_id: str, *, timeout_s: float = 5.0
) -> dict[str, Any] | None:
    """The mock's ground-truth record of one request, or None when it has none."""
    url = f"{base_url.rstrip('/')}/mock/requests/{mock_request_id}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # a loopback URL
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def fetch_truths(
    base_url: str, mock_request_ids: Sequence[str], *, timeout_s: float = 5.0, workers: int = 16
) -> dict[str, dict[str, Any] | None]:
    """The mock's ground truth of many requests, fetched ``workers`` at a time."""

    def one(rid: str) -> dict[str, Any] | None:
        return fetch_truth(base_url, rid, timeout_s=timeout_s)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(mock_request_ids, pool.map(one, mock_request_ids), strict=True))


def serve_mock(argv: Sequence[str]) -> int:
    """``sse-harness mock ...``: serve the mock in this process until stopped."""
    from mock_server.cli import main

    return main(list(argv))
