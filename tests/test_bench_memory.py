"""``sse-harness bench memory``: the growth figure from RSS samples, and one short run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.calibration.memory_bench import MemoryTrace

ROOT = Path(__file__).resolve().parents[1]


def trace(*mb: float) -> MemoryTrace:
    return MemoryTrace(tuple((float(t), m) for t, m in enumerate(mb)), settle_s=2, exit_code=0)


def test_growth_is_the_peak_under_load_over_the_settled_rss() -> None:
    # settling, then the load (peak 110 at t=4), then five samples of report writing
    samples = trace(50, 90, 100, 104, 110, 105, 300, 300, 300, 300, 300)
    assert samples.settled_mb == 100
    assert samples.peak_load_mb == 110
    assert abs((samples.growth or 0) - 0.10) < 1e-9


def test_a_run_too_short_to_settle_has_no_growth() -> None:
    assert trace(50, 60).growth is None


@pytest.mark.slow  # an 8 s run in a subprocess
def test_a_short_run_against_the_embedded_mock_prints_its_verdict() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "memory", "--settle", "1",
         "--max-growth", "10", "--", "--concurrency", "2", "--duration", "8",
         "--requests", "100000", "--mock-tokens", "5"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "RSS at 1 s" in done.stdout
    assert "verdict         flat" in done.stdout
