"""Every request the schedule offers is sent or booked as not sent, and ``--requests`` holds.

The scheduler runs on an in-memory transport and a virtual clock (``tests.virtual_time``),
so that a busy machine cannot move what was sent when; where time must not pass, on a
frozen clock that starts the segment already late: every request is overdue at once, which
is exactly when a count taken as each task first runs (not as it is launched) overshoots.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load.config import RunConfig
from harness.load.ledger import ScheduleLedger, schedule_summary, send_lateness_ns
from harness.load.payloads import RequestSpec
from harness.load.runner import Runner
from harness.load.schedule import Bounds, ClosedLoop, OpenLoop, Trace, TraceEntry
from harness.record import RequestRecord
from tests.client.scripted import HANG, ScriptedTransport
from tests.virtual_time import VirtualClock

ROOT = Path(__file__).resolve().parents[2]
STREAM = [b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n', b"data: [DONE]\n\n"]
NOW_NS = 1_000_000_000_000  # the frozen clock's reading


def config_for(**changes: object) -> RunConfig:
    base: dict[str, object] = {
        "spec": RequestSpec(url="http://scripted.invalid/v1/chat/completions"),
        "profile": OpenLoop(rate=1000),
        "bounds": Bounds(requests=100, grace_s=5),
        "self_watch": False,
    }
    base.update(changes)
    return RunConfig(**base)  # type: ignore[arg-type]


def run(
    config: RunConfig,
    transport: ScriptedTransport,
    *,
    clock: object = None,
    start_ns: int | None = None,
    during: object = None,
) -> tuple[Runner, list[RequestRecord]]:
    records: list[RequestRecord] = []
    virtual = VirtualClock()
    if clock is None:
        clock = transport.clock = virtual.ns
    runner = Runner(config, records.append, start_ns=start_ns, transport=transport, clock=clock)  # type: ignore[arg-type]

    async def main() -> None:
        task = asyncio.ensure_future(runner.run())
        if during is not None:
            await during(runner)  # type: ignore[operator]
        await task

    virtual.run(main())
    return runner, records


def test_requests_is_never_exceeded_when_every_request_is_overdue() -> None:
    # a bursty schedule started 10 s late: all 100 requests are due before any task runs
    profile = OpenLoop(rate=5000, arrival="gamma", burstiness=0.05, seed=1)
    config = config_for(profile=profile, bounds=Bounds(requests=100, grace_s=5))
    runner, records = run(
        config, ScriptedTransport(body=STREAM), clock=lambda: NOW_NS, start_ns=NOW_NS - 10**10
    )
    assert len(records) == 100
    assert len({r.request_id for r in records}) == 100
    books = runner.ledger.as_dict()
    assert (books["offered"], books["sent"], books["not_sent"]) == (100, 100, 0)


def test_send_lateness_is_the_clock_minus_the_due_time() -> None:
    config = config_for(profile=OpenLoop(rate=10), bounds=Bounds(requests=5, grace_s=5))
    start_ns = NOW_NS - 2 * 10**9
    _, records = run(
        config, ScriptedTransport(body=STREAM), clock=lambda: NOW_NS, start_ns=start_ns
    )
    lateness = sorted(send_lateness_ns(records))
    # due at 0, 0.1, ..., 0.4 s after a start 2 s ago: sent now, so 2.0, 1.9, ... 1.6 s late
    assert lateness == [1_600_000_000, 1_700_000_000, 1_800_000_000, 1_900_000_000, 2 * 10**9]
    block = schedule_summary(ScheduleLedger(offered=5, sent_count=5), lateness)
    assert block["send_lateness_s"] == {"p50": 1.8, "p99": pytest.approx(1.996), "max": 2.0}


def test_requests_the_client_reached_only_after_the_end_are_booked_late() -> None:
    # the whole 2 s duration passed before the scheduler ran: 800 offered, none sent
    config = config_for(profile=OpenLoop(rate=400), bounds=Bounds(duration_s=2, grace_s=0))
    runner, records = run(
        config, ScriptedTransport(body=STREAM), clock=lambda: NOW_NS, start_ns=NOW_NS - 3 * 10**9
    )
    assert records == []
    books = runner.ledger.as_dict()
    assert (books["offered"], books["sent"], books["not_sent_by"]) == (800, 0, {"late": 800})
    (unsent,) = books["unsent"]
    assert (unsent["first"], unsent["last"], unsent["count"]) == (0, 799, 800)
    assert unsent["last_due_s"] == pytest.approx(1.9975)


def test_requests_due_while_the_in_flight_cap_is_full_are_booked_with_that_reason() -> None:
    # two streams that never end hold both slots; the 48 others of 0.5 s at 100/s wait
    config = config_for(
        profile=OpenLoop(rate=100), bounds=Bounds(duration_s=0.5, grace_s=0), max_in_flight=2
    )
    runner, records = run(config, ScriptedTransport(body=[HANG]))
    books = runner.ledger.as_dict()
    assert books["offered"] == 50
    assert books["sent"] == 2
    assert books["not_sent_by"] == {"in_flight_cap": 48}
    assert len(records) == 2  # the two that hung, cancelled after the grace period


def test_a_stop_books_the_rest_of_the_duration_as_stopping() -> None:
    config = config_for(profile=OpenLoop(rate=10), bounds=Bounds(duration_s=10, grace_s=1))

    async def stop_after_two(runner: Runner) -> None:
        while runner.progress.started < 2:
            await asyncio.sleep(0.01)
        runner.stop()

    runner, records = run(config, ScriptedTransport(body=STREAM), during=stop_after_two)
    books = runner.ledger.as_dict()
    assert books["offered"] == 100  # everything the 10 s offered
    assert books["sent"] + books["not_sent"] == 100
    assert books["sent"] == len(records) >= 2
    assert books["not_sent_by"].get("stopping", 0) >= 90


def test_a_trace_offers_its_entries_and_no_more() -> None:
    trace = Trace(tuple(TraceEntry(offset_s=i * 0.001) for i in range(7)))
    config = config_for(profile=trace, bounds=Bounds(duration_s=30, grace_s=5))
    runner, records = run(
        config, ScriptedTransport(body=STREAM), clock=lambda: NOW_NS, start_ns=NOW_NS - 10**9
    )
    assert len(records) == 7
    assert runner.ledger.as_dict()["offered"] == 7


def test_a_closed_loop_offers_what_its_users_start() -> None:
    config = config_for(
        profile=ClosedLoop(concurrency=3, ramp_up_s=0), bounds=Bounds(requests=10, grace_s=5)
    )
    runner, records = run(config, ScriptedTransport(body=STREAM))
    assert len(records) == 10
    books = runner.ledger.as_dict()
    assert (books["offered"], books["sent"], books["not_sent"]) == (10, 10, 0)
    assert send_lateness_ns(records) == []  # a closed loop has no schedule to be late for


def test_shards_books_add_up_to_one_schedule() -> None:
    # each shard takes every other request of one schedule, both started 10 s late
    config = config_for(profile=OpenLoop(rate=400), bounds=Bounds(duration_s=1, grace_s=0))
    total = ScheduleLedger()
    numbers = set()
    for index in (0, 1):
        records: list[RequestRecord] = []
        runner = Runner(
            config,
            records.append,
            shard=(index, 2),
            clock=lambda: NOW_NS,
            start_ns=NOW_NS - 10 * 10**9,
            transport=ScriptedTransport(body=STREAM),
        )
        asyncio.run(runner.run())
        total.add(runner.ledger)
        numbers |= {run["first"] % 2 for run in runner.ledger.as_dict()["unsent"]}
    assert total.as_dict()["offered"] == 400
    assert total.as_dict()["not_sent_by"] == {"late": 400}
    assert numbers == {0, 1}


def test_books_cross_a_process_boundary_unchanged() -> None:
    ledger = ScheduleLedger()
    ledger.sent()
    for number in (3, 4, 5):
        ledger.not_sent(number, number * 10**6, "in_flight_cap")
    ledger.not_sent(9, 9 * 10**6, "stopping")
    again = ScheduleLedger.from_dict(ledger.as_dict())
    assert again.as_dict() == ledger.as_dict()
    assert [run["count"] for run in again.as_dict()["unsent"]] == [3, 1]
    with pytest.raises(ValueError, match="unknown reason"):
        ledger.not_sent(10, 0, "bored")


@pytest.mark.slow
def test_a_run_books_its_whole_schedule_and_judges_its_client(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "harness.cli", "run", "--rate", "400", "--duration", "2",
               "--max-tokens", "16", "--mock-tokens", "16", "--mock-itl-ms", "5",
               "--quiet", "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    schedule = summary["schedule"]
    assert schedule["offered"] == 800  # 2 s at 400/s, however far the client fell behind
    assert schedule["sent"] + schedule["not_sent"] == 800
    assert schedule["sent"] == summary["requests"]
    assert schedule["send_lateness_s"]["max"] >= schedule["send_lateness_s"]["p50"] >= 0
    client = summary["client"]
    assert client["watched"] is True
    assert client["bound"] is bool(client["reasons"])
    assert f"schedule: 800 offered, {schedule['sent']} sent" in done.stderr
    series = (tmp_path / "timeseries.csv").read_text().splitlines()[0].split(",")
    assert {"send_lateness_p99_ms", "loop_lag_max_ms", "cpu_percent"} <= set(series)
