"""Stopping ``run`` from outside: SIGTERM as Ctrl-C, and no child outliving the run.

Every run is a subprocess on loopback, bounded by its own options (``tests.launcher``).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli.stop_signals import SAME_SIGTERM_S, StopSignals
from harness.record import ErrorKind, Outcome
from harness.results import read_records
from harness.servers.embedded import EmbeddedMock
from tests.launcher import DEADLINE_S, Launcher, none_alive, record_count, wait_for

pytestmark = pytest.mark.slow  # each test starts and signals `sse-harness run` processes

#: A long run: more requests and time than any test waits for.
LONG_RUN = ("run", "--duration", "30", "--requests", "100000", "--concurrency", "2")


def shards(path: Path) -> set[str]:
    """The client processes (``p0``, ``p1``, ...) with records in the results file."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return set()
    return {json.loads(line)["request_id"].split("-")[1] for line in lines[:-1]}


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launched = Launcher(tmp_path / "stderr.log")
    yield launched
    launched.clean_up()


def test_sigterm_stops_a_run_as_ctrl_c_does_and_leaves_no_child(
    launcher: Launcher, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = launcher.start(*LONG_RUN, "--out", str(out))  # against the embedded mock
    wait_for(lambda: record_count(out / "results.jsonl") >= 1, "a first record")
    children = launcher.children(run)
    assert any("mock_server" in " ".join(c.cmdline()) for c in children)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 143, launcher.stderr()[-3000:]
    assert "stopping on SIGTERM" in launcher.stderr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    for name in ("requests.csv", "report.md", "report.html"):
        assert (out / name).exists(), name
    records = list(read_records(out / "results.jsonl"))
    assert summary["requests"] == len(records) >= 1
    assert all(r.outcome is Outcome.OK for r in records)  # in flight: finished in the grace
    assert none_alive(children)


def test_the_embedded_mock_ends_when_run_is_killed(launcher: Launcher, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = launcher.start(*LONG_RUN, "--out", str(out))
    wait_for(lambda: record_count(out / "results.jsonl") >= 1, "a first record")
    children = launcher.children(run)
    assert children
    run.kill()
    run.wait(timeout=DEADLINE_S)
    assert none_alive(children)


def test_a_second_signal_cancels_the_requests_in_flight(launcher: Launcher, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = launcher.start(*LONG_RUN, "--mock-tokens", "3000", "--grace", "120", "--out", str(out))
    wait_for(lambda: "in flight 2" in launcher.stderr(), "two streams in flight")  # 60 s long
    run.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping on SIGTERM" in launcher.stderr(), "the first stop")
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=60) == 143, launcher.stderr()[-3000:]  # the first signal's code
    records = list(read_records(out / "results.jsonl"))
    assert len(records) == 2
    assert all(r.error_kind is ErrorKind.CANCELLED for r in records)
    assert (out / "report.html").exists()


def test_sigterm_to_the_process_group_lets_every_client_process_finish(
    launcher: Launcher, mock: EmbeddedMock, tmp_path: Path
) -> None:
    # timeout(1) signals the command, then its whole process group: the client processes too
    out = tmp_path / "run"
    run = launcher.start(*LONG_RUN, "--url", mock.base_url, "--processes", "2",
                         "--out", str(out), start_new_session=True)  # fmt: skip
    wait_for(lambda: shards(out / "results.jsonl") == {"p0", "p1"}, "both processes' records")
    children = launcher.children(run)
    os.kill(run.pid, signal.SIGTERM)
    os.killpg(run.pid, signal.SIGTERM)
    assert run.wait(timeout=60) == 143, launcher.stderr()[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert "lost_processes" not in summary
    records = list(read_records(out / "results.jsonl"))
    assert all(r.outcome is Outcome.OK for r in records)
    assert none_alive(children)


def test_client_processes_end_when_run_is_killed(
    launcher: Launcher, mock: EmbeddedMock, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = launcher.start(*LONG_RUN, "--url", mock.base_url, "--processes", "2",
                         "--out", str(out))  # fmt: skip
    wait_for(lambda: record_count(out / "results.jsonl") >= 2, "records")
    children = launcher.children(run)
    assert len(children) >= 2
    run.kill()
    run.wait(timeout=DEADLINE_S)
    assert none_alive(children)


def test_a_sigterm_repeated_at_once_is_one_stop_and_a_later_one_a_second() -> None:
    now_s = [100.0]
    stops = StopSignals(clock=lambda: now_s[0])
    assert stops.exit_code == 0
    assert stops.add(signal.SIGTERM) == 1
    assert stops.add(signal.SIGTERM) == 0  # timeout's second copy
    now_s[0] += SAME_SIGTERM_S
    assert stops.add(signal.SIGTERM) == 2
    assert stops.received == [signal.SIGTERM, signal.SIGTERM]
    assert stops.exit_code == 143


def test_ctrl_c_counts_every_time_and_the_first_signal_decides_the_exit_code() -> None:
    stops = StopSignals(clock=lambda: 0.0)
    assert stops.add(signal.SIGINT) == 1
    assert stops.add(signal.SIGTERM) == 2
    assert stops.add(signal.SIGINT) == 3
    assert stops.exit_code == 130
