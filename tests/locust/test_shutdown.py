"""Stopping ``sse-harness locust`` from outside: SIGTERM as Ctrl-C, and no child outliving it.

Each run is a subprocess against its own embedded mock on loopback, bounded by ``-t``
(``tests.launcher``).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.record import Outcome
from harness.results import read_records
from tests.launcher import DEADLINE_S, Launcher, none_alive, record_count, wait_for

pytestmark = pytest.mark.slow  # locust processes, signalled

#: A headless test longer than any test waits for; its streams take about 2 s.
LONG_TEST = ("locust", "--headless", "-u", "2", "-r", "10", "-t", "120s",
             "--mock-ttft-ms", "20", "--mock-itl-ms", "20", "--mock-tokens", "100")  # fmt: skip


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launched = Launcher(tmp_path / "stderr.log")
    yield launched
    launched.clean_up()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_stops_locust_as_ctrl_c_does_and_leaves_no_child(
    launcher: Launcher, tmp_path: Path, workers: str
) -> None:
    out = tmp_path / "run"
    command = launcher.start(*LONG_TEST, "--workers", workers, "--out", str(out))
    wait_for(lambda: record_count(out / "results.jsonl") >= 1, "a first record", 60)
    children = launcher.children(command)
    assert len(children) >= 2 + int(workers)  # the mock, locust, its workers
    command.send_signal(signal.SIGTERM)
    assert command.wait(timeout=90) == 143, launcher.stderr()[-3000:]
    records = list(read_records(out / "results.jsonl"))
    assert all(r.outcome is Outcome.OK for r in records)  # in flight: finished in the grace
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] == len(records)
    assert summary["locust"]["missing_nodes"] == []
    for name in ("requests.csv", "report.md", "report.html"):
        assert (out / name).exists(), name
    assert f"wrote {out}/" in launcher.stderr()
    assert none_alive(children)


def test_no_locust_process_and_no_mock_outlives_a_killed_command(
    launcher: Launcher, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = launcher.start(*LONG_TEST, "--workers", "1", "--out", str(out))
    wait_for(lambda: record_count(out / "results.jsonl") >= 1, "a first record", 60)
    children = launcher.children(command)
    assert len(children) >= 3
    command.kill()
    command.wait(timeout=DEADLINE_S)
    assert none_alive(children)
