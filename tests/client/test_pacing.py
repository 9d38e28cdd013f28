"""The runner's pacing and the figures it measures, on a virtual clock.

An in-memory transport plays the mock's stream (a 40 ms TTFT, then a token every 10 ms)
and the whole run reads one virtual clock (``tests.virtual_time``): schedules, lateness,
TTFT, ITL and the end of a duration bound come out exact, however busy the machine. How
closely a real transport's stamps follow a real server's writes is a measurement, not a
test: ``sse-harness calibrate`` reports it against the mock's ground truth.
"""

from __future__ import annotations

import itertools
import json

import pytest

from harness.analysis.summary import summarize
from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.runner import Runner
from harness.load.schedule import Bounds, ClosedLoop, OpenLoop
from harness.record import Outcome, RequestRecord
from tests.client.scripted import ScriptedTransport
from tests.virtual_time import VirtualClock

MS = 1_000_000
TTFT_S, ITL_S, TOKENS = 0.040, 0.010, 12
#: TTFT plus the gaps between the tokens: how long a whole stream takes.
STREAM_NS = int((TTFT_S + (TOKENS - 1) * ITL_S) * 1e9)


def token(text: str) -> bytes:
    delta = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(delta).encode() + b"\n\n"


def paced_stream() -> list[object]:
    """The mock's stream: the role chunk with the headers, TTFT, then a token every ITL."""
    role = b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
    steps: list[object] = [role, TTFT_S, token("t0")]
    for k in range(1, TOKENS):
        steps += [ITL_S, token(f"t{k}")]
    return [*steps, b"data: [DONE]\n\n"]


def run(**changes: object) -> tuple[list[RequestRecord], VirtualClock, int]:
    """The records of a run on a virtual clock, the clock, and when the run began on it."""
    settings: dict[str, object] = {
        "spec": RequestSpec(url="http://scripted.invalid/v1/chat/completions"),
        "profile": ClosedLoop(concurrency=4, ramp_up_s=0.05),
        "bounds": Bounds(requests=12),
        "self_watch": False,
    }
    settings.update(changes)
    clock = VirtualClock()
    began = clock.ns()
    records: list[RequestRecord] = []
    transport = ScriptedTransport(body=paced_stream(), clock=clock.ns)
    runner = Runner(RunConfig(**settings), records.append, clock=clock.ns, transport=transport)  # type: ignore[arg-type]
    clock.run(runner.run())
    return records, clock, began


def peak_in_flight(records: list[RequestRecord]) -> int:
    """The most requests in flight at once (one that ends as another starts is not)."""
    events = sorted([(r.t_sent_ns, 1) for r in records] + [(r.t_end_ns, -1) for r in records])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def test_ttft_and_itl_are_measured_from_the_arrival_stamps() -> None:
    records, _, _ = run()
    summary = summarize(records)
    assert summary["requests"] == 12
    assert summary["errors"] == 0
    assert summary["ttft_s"]["p50"] == pytest.approx(TTFT_S, abs=1e-6)
    assert summary["ttft_s"]["max"] == pytest.approx(TTFT_S, abs=1e-6)
    assert summary["itl_s"]["p50"] == pytest.approx(ITL_S, abs=1e-6)
    assert summary["itl_s"]["max"] == pytest.approx(ITL_S, abs=1e-6)
    assert all(r.output_tokens == TOKENS and r.done_sentinel for r in records)


def test_open_loop_starts_on_schedule_however_long_the_streams_take() -> None:
    # 20 a second: a new request every 50 ms while each stream takes 150 ms
    records, _, began = run(profile=OpenLoop(rate=20), bounds=Bounds(requests=10))
    assert len(records) == 10
    scheduled = sorted(r.t_scheduled_ns for r in records if r.t_scheduled_ns is not None)
    assert [b - a for a, b in itertools.pairwise(scheduled)] == [50 * MS] * 9
    assert scheduled[0] >= began
    late_ns = [r.t_sent_ns - r.t_scheduled_ns for r in records if r.t_scheduled_ns is not None]
    assert len(late_ns) == 10
    assert max(late_ns) <= 1_000  # sent when due (to the clock's rounding), never early
    assert min(late_ns) >= 0
    # 150 ms streams started every 50 ms: three at once, as a closed loop would never do
    assert peak_in_flight(records) == 3


def test_a_duration_bound_stops_the_run_by_itself() -> None:
    records, clock, began = run(bounds=Bounds(duration_s=0.6))
    end_ns = began + 600 * MS
    assert records
    assert all(r.outcome is Outcome.OK for r in records)  # in-flight ones finished
    assert all(r.t_sent_ns < end_ns for r in records)  # none started after the end
    assert max(r.t_end_ns for r in records) > end_ns  # those in flight at the end ran on
    assert clock.ns() - began < 600 * MS + 2 * STREAM_NS  # and then the run ended
    # four users, each a stream after the other from its ramp-up offset, until 0.6 s
    assert len(records) == 4 * 4


def test_users_still_in_the_ramp_up_end_once_every_request_has_started() -> None:
    # two requests for eight users started over a minute: the six users left do not
    # hold the run open until their place in the ramp-up comes
    records, clock, began = run(
        profile=ClosedLoop(concurrency=8, ramp_up_s=60.0), bounds=Bounds(requests=2)
    )
    assert len(records) == 2
    assert all(r.outcome is Outcome.OK for r in records)
    assert clock.ns() - began < 60e9 / 8 + 2 * STREAM_NS  # the second user's stream, no more
