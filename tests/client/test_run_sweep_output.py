"""A sweep reads well: a row per level in the terminal, and summary.json and report.md
record the sweep as it ran and the command that ran it (secrets redacted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a sweep through `sse-harness run`

ROOT = Path(__file__).resolve().parents[2]


def test_a_sweep_prints_each_level_and_records_itself(tmp_path: Path) -> None:
    # streams of 100 ms or more: three at once clearly beat one, and the sweep goes on
    command = [sys.executable, "-m", "harness.cli", "run", "--sweep", "concurrency=1,3",
               "--requests", "6", "--mock-tokens", "4", "--mock-ttft-ms", "40",
               "--mock-itl-ms", "20", "--ramp-up", "0", "--header", "x-team-token: hush-0123456789",
               "--quiet", "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "per level" in done.stdout
    assert "concurrency=1" in done.stdout
    assert "concurrency=3" in done.stdout
    assert "all levels pooled" in done.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sweep"] == {
        "name": "concurrency",
        "levels": [1.0, 3.0],
        "ran": ["concurrency=1", "concurrency=3"],
        "stopped": "every level ran",
    }
    assert summary["command"][:4] == ["sse-harness", "run", "--sweep", "concurrency=1,3"]
    assert "x-team-token: [redacted]" in summary["command"]
    report = (tmp_path / "report.md").read_text()
    assert "sweep of concurrency over 1, 3" in report
    for path in tmp_path.iterdir():
        assert "hush-0123456789" not in path.read_text(errors="replace"), path.name
