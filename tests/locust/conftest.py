"""Locust runs in subprocesses only: importing it patches the standard library with
gevent, which the pytest process must not get. A fast mock serves each test module."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "harness" / "locust" / "scenarios" / "llm_stream.py"
SHAPES = ROOT / "harness" / "locust" / "scenarios" / "shapes.py"
#: Every locust process is bounded: a test waits at most this long for it.
LOCUST_TIMEOUT_S = 60
#: The name of the scenario's statistics row: the path of the URL it streams from.
STREAM = "/v1/chat/completions"


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=20, itl_ms=5, tokens=10)) as running:
        yield running


@dataclass
class LocustRun:
    returncode: int
    stats: list[dict[str, Any]]  # locust's --json: one entry per statistics row
    errors: dict[str, int]  # locust's error report: error -> occurrences
    log: str

    def count(self, name: str = STREAM) -> int:
        return sum(e["num_requests"] for e in self.stats if e["name"] == name)

    def failures(self) -> dict[str, int]:
        return {e["name"]: e["num_failures"] for e in self.stats if e["num_failures"]}


def run_locust(args: Sequence[str], *, command: Sequence[str] | None = None) -> LocustRun:
    """Run locust headless with ``--json`` (its final statistics on stdout); its error
    report (the failures table, by error) is read from the log's last one."""
    base = command or [sys.executable, "-m", "locust", "-f", str(SCENARIO)]
    result = subprocess.run(
        [*base, "--headless", "--json", "--loglevel", "INFO", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=LOCUST_TIMEOUT_S, check=False,
    )  # fmt: skip
    try:
        stats = json.loads(result.stdout[result.stdout.index("[") :])
    except ValueError:
        stats = []
    return LocustRun(result.returncode, stats, error_report(result.stderr), result.stderr)


def error_report(log: str) -> dict[str, int]:
    """The last "Error report" table of a locust log: error -> occurrences."""
    _, found, report = log.rpartition("Error report\n")
    if not found:
        return {}
    row = re.compile(r"^(\d+)\s+SSE \S+: (.+?)\s*$", re.MULTILINE)
    return {error: int(n) for n, error in row.findall(report.split("\n\n", 1)[0])}
