"""Commands a test starts as subprocesses and stops from outside, and what it waits for.

Every wait polls for a condition with a generous deadline (no fixed sleeps, no tight
bounds on a loaded machine); at the end of a test, whatever it started that is left is
killed, children it was seen with included.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "harness.cli"]
#: How long a test waits for anything: far beyond what it takes on a loaded machine.
DEADLINE_S = 30.0


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.1)


def record_count(path: Path) -> int:
    """Lines in a results file so far (0 before it exists)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def none_alive(processes: list[psutil.Process]) -> bool:
    """True once every one of ``processes`` has ended (waits up to ``DEADLINE_S``)."""
    _, alive = psutil.wait_procs(processes, timeout=DEADLINE_S)
    return not alive


class Launcher:
    """Starts ``sse-harness ...`` with its error output in ``log``; ``clean_up`` kills what
    is left of what it started and of the children they were seen with."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._started: list[psutil.Process] = []

    def start(self, *arguments: str, **popen: object) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as log:
            process = subprocess.Popen(
                [*CLI, *arguments], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, **popen
            )
        self._started.append(psutil.Process(process.pid))
        return process

    def children(self, process: subprocess.Popen[bytes]) -> list[psutil.Process]:
        """Its children and theirs, now (remembered for the clean-up)."""
        children = psutil.Process(process.pid).children(recursive=True)
        self._started += children
        return children

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def clean_up(self) -> None:
        for process in reversed(self._started):
            with contextlib.suppress(psutil.Error):
                process.kill()  # psutil checks that the pid is still that process
        psutil.wait_procs(self._started, timeout=DEADLINE_S)
