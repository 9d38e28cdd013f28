"""A child's life tied to its parent's (``harness.lifeline``), through the mock's options.

Subprocesses on loopback; each wait polls with a generous deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow  # processes that outlive, or not, their parents

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 30.0
MOCK = [sys.executable, "-m", "mock_server", "--host", "127.0.0.1", "--port", "0"]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any left at the end is killed."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=DEADLINE_S)


def wait_ready(mock: subprocess.Popen[str]) -> str:
    assert mock.stdout is not None
    line = mock.stdout.readline()  # the mock prints its address once it listens
    match = re.search(r"on (http://\S+)", line)
    assert match, line
    return match.group(1)


def test_the_mock_stops_when_its_parents_pipe_closes(
    started: list[subprocess.Popen[str]],
) -> None:
    watched, held = os.pipe()
    mock = subprocess.Popen([*MOCK, "--parent-pipe", str(watched)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, pass_fds=(watched,))  # fmt: skip
    started.append(mock)
    os.close(watched)
    wait_ready(mock)
    assert mock.poll() is None
    os.close(held)  # what the kernel does when the parent ends, however it ends
    assert mock.wait(timeout=DEADLINE_S) == 0  # stopped as on SIGTERM: a clean stop


def test_a_bad_parent_pipe_is_a_usage_error() -> None:
    run = subprocess.run([*MOCK, "--parent-pipe", "987"], cwd=ROOT, capture_output=True,
                         text=True, timeout=DEADLINE_S)  # fmt: skip
    assert run.returncode == 2
    assert "parent-pipe" in run.stderr


@linux
def test_a_mock_whose_parent_is_already_gone_stops_at_once() -> None:
    # the parent it names is not its parent: the one that started it has ended
    run = subprocess.run([*MOCK, "--parent-pid", str(os.getppid())], cwd=ROOT,
                         capture_output=True, text=True, timeout=DEADLINE_S)  # fmt: skip
    assert run.returncode == -signal.SIGTERM
    assert "mock LLM server on" not in run.stdout


@linux
def test_a_program_run_through_the_lifeline_ends_with_its_parent(
    started: list[subprocess.Popen[str]],
) -> None:
    # a parent that starts an HTTP server through the lifeline, says its pid, and waits
    parent_code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-m', 'harness.lifeline', str(os.getpid()),"
        " 'http.server', '0', '--bind', '127.0.0.1'], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    started.append(parent)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not any(c.status == psutil.CONN_LISTEN for c in child.net_connections()):
            assert time.monotonic() < deadline, "the server did not listen"
            time.sleep(0.1)
        parent.kill()
        parent.wait(timeout=DEADLINE_S)
        child.wait(timeout=DEADLINE_S)  # raises TimeoutExpired if it lives on
    finally:
        if child.is_running():
            child.kill()
