"""``--processes N``: one schedule dealt out over N client processes, records merged."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.processes import ProcessRunner, shard_requests
from harness.load.schedule import Bounds, ClosedLoop, OpenLoop
from harness.record import Outcome, RequestRecord
from harness.results import read_records
from harness.servers.embedded import EmbeddedMock
from harness.transports import Timeouts
from tests.launcher import DEADLINE_S, wait_for

ROOT = Path(__file__).resolve().parents[2]


def run_in_processes(config: RunConfig) -> tuple[list[RequestRecord], ProcessRunner]:
    records: list[RequestRecord] = []
    runner = ProcessRunner(config, records.append)
    asyncio.run(runner.run())
    return records, runner


def config_for(mock: EmbeddedMock, **changes: object) -> RunConfig:
    base = {
        "spec": RequestSpec(url=mock.base_url),
        "profile": ClosedLoop(concurrency=6, ramp_up_s=0),
        "bounds": Bounds(requests=30),
        "timeouts": Timeouts(ttft_s=10, idle_s=10, total_s=30),
        "transport": "aiohttp",
        "processes": 2,
    }
    base.update(changes)
    return RunConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("requests", "count"), [(30, 2), (31, 2), (7, 3), (1, 4), (100, 7)])
def test_requests_are_dealt_out_without_loss(requests: int, count: int) -> None:
    shares = [shard_requests(requests, index, count) for index in range(count)]
    assert sum(shares) == requests  # type: ignore[arg-type]
    assert max(shares) - min(shares) <= 1  # type: ignore[operator]
    assert shard_requests(None, 0, count) is None


def test_processes_must_be_positive() -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        RunConfig(
            spec=RequestSpec(url="http://127.0.0.1:9/v1/chat/completions"),
            profile=ClosedLoop(concurrency=1),
            bounds=Bounds(requests=1),
            processes=0,
        )
    assert caught.value.field == "processes"


@pytest.mark.slow  # client processes against a mock process
def test_closed_loop_over_two_processes_holds_the_whole_load(mock: EmbeddedMock) -> None:
    records, runner = run_in_processes(config_for(mock))
    assert len(records) == 30
    assert runner.failed == []
    assert all(r.outcome is Outcome.OK for r in records)
    assert len({r.request_id for r in records}) == 30
    # both processes ran: the ids carry the process, and the users are dealt round-robin
    assert {r.request_id.split("-")[1] for r in records} == {"p0", "p1"}
    assert {r.user for r in records} == set(range(6))
    assert {r.user % 2 for r in records if "-p1-" in r.request_id} == {1}
    events = sorted([(r.t_sent_ns, 1) for r in records] + [(r.t_end_ns, -1) for r in records])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 6  # one clock across processes: the merged load is the asked concurrency
    assert runner.progress.completed == 30
    assert runner.progress.started == 30
    placement = runner.config.placement()
    if len(placement.allowed) >= 2:  # each child found itself on its own CPU
        assert [runner.placed[k] for k in (0, 1)] == list(placement.cpus)
        assert runner.placed[0] != runner.placed[1]


@pytest.mark.slow  # client processes against a mock process
def test_open_loop_over_two_processes_keeps_one_schedule(mock: EmbeddedMock) -> None:
    records, runner = run_in_processes(
        config_for(mock, profile=OpenLoop(rate=40), bounds=Bounds(requests=12))
    )
    assert len(records) == 12  # however late a busy machine starts the processes
    scheduled = sorted(r.t_scheduled_ns for r in records)
    gaps_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(scheduled)]
    assert gaps_ms == pytest.approx([25.0] * 11, abs=0.01)  # as one process would have
    books = runner.ledger.as_dict()
    assert (books["offered"], books["sent"], books["not_sent"]) == (12, 12, 0)
    assert runner.client is not None
    assert {second[3] for second in runner.client.seconds} <= {0, 1}  # each process watched


@pytest.mark.slow  # client processes against a mock process
def test_sigint_stops_every_process_and_keeps_their_records(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "harness.cli", "run", "--url", mock.base_url,
               "--duration", "30", "--concurrency", "4", "--processes", "2",
               "--transport", "aiohttp", "--out", str(out), "--quiet", "--grace", "5"]  # fmt: skip
    # a new session, so that the signal reaches the parent alone, as `kill -INT` does
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    results = out / "results.jsonl"
    wait_for(lambda: results.exists() and results.stat().st_size >= 4000, "records")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    records = list(read_records(results))
    assert len(records) >= 4
    assert {r.request_id.split("-")[1] for r in records} == {"p0", "p1"}
    assert all(r.outcome in (Outcome.OK, Outcome.ERROR) for r in records)
    assert (out / "summary.json").exists()
