"""The kernel transport end to end: records, summary, report, ``run`` and ``calibrate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.summary import clock_stamps
from harness.record import FORMAT_VERSION, RequestRecord
from harness.report.markdown import render_markdown
from harness.results import read_records
from harness.transports import TRANSPORTS, Timeouts, make_transport
from harness.transports.kernel import KernelTransport

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "harness.cli"]


def test_the_kernel_transport_is_one_of_the_choices() -> None:
    assert "kernel" in TRANSPORTS
    transport = make_transport("kernel", timeouts=Timeouts(), connections=3)
    assert isinstance(transport, KernelTransport)
    assert transport.name == "kernel"


def test_records_keep_both_stamps_and_older_records_still_load() -> None:
    record = RequestRecord(
        request_id="a",
        t_first_token_ns=100,
        token_times_ns=[100, 200],
        clock_source="kernel",
        t_first_token_user_ns=150,
        token_times_user_ns=[150, 260],
    )
    data = json.loads(record.to_json())
    assert data["v"] == FORMAT_VERSION == 2
    assert RequestRecord.from_mapping(data) == record
    older = {"v": 1, "request_id": "b", "t_first_token_ns": 5, "token_times_ns": [5]}
    loaded = RequestRecord.from_mapping(older)
    assert loaded.clock_source == "user"
    assert loaded.t_first_token_user_ns is None
    assert loaded.token_times_user_ns is None
    with pytest.raises(ValueError, match="version"):
        RequestRecord.from_mapping({"v": 3, "request_id": "c"})


def test_the_summary_says_how_far_user_space_stamps_trailed() -> None:
    kernel = [
        RequestRecord(
            request_id=str(n),
            t_first_token_ns=1_000,
            token_times_ns=[1_000, 2_000],
            clock_source="kernel",
            t_first_token_user_ns=1_000 + 1_000_000 * (n + 1),
            token_times_user_ns=[1_000 + 1_000_000 * (n + 1), 2_500],
        )
        for n in range(4)
    ]
    assert clock_stamps([RequestRecord(request_id="x", token_times_ns=[1])]) is None
    clock = clock_stamps([*kernel, RequestRecord(request_id="u")])
    assert clock is not None
    assert clock["sources"] == {"kernel": 4, "user": 1}
    assert clock["first_token_user_lag_s"]["max"] == pytest.approx(0.004)
    assert clock["first_token_user_lag_s"]["count"] == 4
    assert clock["token_user_lag_s"]["count"] == 8


def test_the_report_shows_the_user_space_offset() -> None:
    summary = {
        "requests": 2, "ok": 2, "errors": 0, "abandoned": 0, "cut": 0, "error_rate": 0.0,
        "output_tokens_per_s": 1.0, "requests_per_s": 1.0, "window_s": 1.0,
        "clock": {
            "sources": {"kernel": 2},
            "first_token_user_lag_s": {"p50": 0.0002, "p99": 0.0031, "max": 0.0045},
        },
    }  # fmt: skip
    text = render_markdown(summary)
    assert "the kernel's receive times (2 of 2 requests)" in text
    assert "0.2 ms (p50) / 3.1 ms (p99) / 4.5 ms (max) later" in text


@pytest.fixture
def quiet_cache(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI run whose calibration file lands in a temporary place."""
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


@pytest.mark.slow  # the command in a subprocess
def test_run_with_the_kernel_transport_marks_its_records(
    tmp_path: Path, quiet_cache: dict[str, str]
) -> None:
    out = tmp_path / "run"
    command = [*CLI, "run", "--transport", "kernel", "--requests", "6", "--concurrency", "2",
               "--ramp-up", "0", "--out", str(out), "--quiet"]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, env=quiet_cache, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    records = list(read_records(out / "results.jsonl"))
    assert len(records) == 6
    for record in records:
        assert record.ok
        assert record.clock_source == "kernel"
        assert record.t_first_token_user_ns is not None
        assert record.t_first_token_ns is not None
        assert record.t_first_token_ns <= record.t_first_token_user_ns
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clock"]["sources"] == {"kernel": 6}
    assert "the kernel's receive times (6 of 6 requests)" in (out / "report.md").read_text()


@pytest.mark.slow  # the command in a subprocess
def test_calibrate_measures_the_user_space_lag_beside_the_kernel_one(
    tmp_path: Path, quiet_cache: dict[str, str]
) -> None:
    levels = tmp_path / "levels.jsonl"
    command = [*CLI, "calibrate", "--transport", "kernel", "--levels", "2", "--seconds", "0.5",
               "--json", str(levels)]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, env=quiet_cache, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    (level,) = [json.loads(line) for line in levels.read_text().splitlines()]
    assert level["transport"] == "kernel"
    assert level["clock_source"] == "kernel"
    assert level["errors"] == 0
    assert level["events"] > 0
    # every user-space stamp comes after the kernel's stamp of the same read
    assert level["user_lag_p50_ms"] >= level["lag_p50_ms"] >= 0
    assert level["user_lag_p99_ms"] >= level["lag_p99_ms"]
    assert level["user_first_token_lag_p99_ms"] >= level["first_token_lag_p99_ms"]
    assert "(user-space stamps: " in done.stderr
