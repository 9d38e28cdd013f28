"""Locust runs in subprocesses only: importing it patches the standard library with
gevent, which the pytest process must not get. A fast mock serves each test module."""

from __future__ import annotations

import json
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


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=20, itl_ms=5, tokens=10)) as running:
        yield running


@dataclass
class LocustRun:
    returncode: int
    stats: list[dict[str, Any]]
    log: str

    def count(self, name: str) -> int:
        return sum(e["num_requests"] for e in self.stats if e["name"] == name)

    def failures(self) -> dict[str, int]:
        return {e["name"]: e["num_failures"] for e in self.stats if e["num_failures"]}


def run_locust(args: Sequence[str], *, command: Sequence[str] | None = None) -> LocustRun:
    """Run locust headless with ``--json`` (its final statistics on stdout)."""
    base = command or [sys.executable, "-m", "locust", "-f", str(SCENARIO)]
    result = subprocess.run(
        [*base, "--headless", "--json", "--loglevel", "INFO", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=LOCUST_TIMEOUT_S, check=False,
    )  # fmt: skip
    try:
        stats = json.loads(result.stdout[result.stdout.index("[") :])
    except ValueError:
        stats = []
    return LocustRun(result.returncode, stats, result.stderr)
