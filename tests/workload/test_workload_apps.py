"""A dataset replayed against an app that is not the mock: a FastAPI app whose tokens
come from a producer thread and which sends no usage (tokens counted from events)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results import read_records
from tests.apps.test_producer_app import servers

pytestmark = pytest.mark.slow
__all__ = ["servers"]  # the fixture, shared with the app's own tests

ROOT = Path(__file__).resolve().parents[2]


def test_a_dataset_gets_each_answer_length_from_an_app(
    servers: dict[str, str], tmp_path: Path
) -> None:
    rows = [{"prompt": f"question {i} " + "word " * i, "output_tokens": 3 + i} for i in range(12)]
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--url", servers["stops"], "--quiet",
         "--out", str(out), "--dataset", str(dataset), "--output-len", "dataset",
         "--requests", "12", "--concurrency", "3"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = list(read_records(out / "results.jsonl"))
    assert all(r.ok and r.token_source == "events" for r in records)
    assert sorted(r.output_tokens for r in records) == [3 + i for i in range(12)]
