"""The live figures of a locust test, on a frozen clock: the tab's table, its chart's
history, the whole-test ITL buckets and what a load shape reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.locust.live import GapHistogram, LiveBoard
from harness.record import ErrorKind, Outcome, RequestRecord


class FakeClock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


def record(
    n: int, *, start_ns: int, ttft_ms: float, itl_ms: float = 10.0, ok: bool = True
) -> RequestRecord:
    first = start_ns + int(ttft_ms * 1e6)
    tokens = [first + int(k * itl_ms * 1e6) for k in range(5)]
    r = RequestRecord(request_id=f"w-0-{n}", t_sent_ns=start_ns, t_first_token_ns=first,
                      t_end_ns=tokens[-1], token_times_ns=tokens, events=6, output_tokens=5,
                      dialect="openai-chat", done_sentinel=True)  # fmt: skip
    if not ok:
        r.outcome, r.error_kind, r.error_message = Outcome.ERROR, ErrorKind.TRUNCATED, "cut off"
    return r


def run_twenty_seconds(board: LiveBoard, clock: FakeClock) -> None:
    """A request a second whose TTFT grows 10 ms a second, 100 tokens a second."""
    for second in range(1, 21):
        clock.now_ns = second * 1_000_000_000
        board.add_tokens(100)
        start = clock.now_ns - 500_000_000
        board.add(record(second, start_ns=start, ttft_ms=second * 10, itl_ms=second))
        board.sample(in_flight=3, users=4)


def test_the_table_shows_the_last_window_and_the_whole_test() -> None:
    clock = FakeClock()
    board = LiveBoard(window_s=10, clock=clock)
    run_twenty_seconds(board, clock)
    rows = {row["name"]: row for row in board.rows()}
    assert board.tokens_per_s() == pytest.approx(100.0)
    assert rows["output tokens/s"]["now"] == "100.0"
    assert rows["requests/s"]["now"] == "1.0"
    # the last ten seconds hold the records of seconds 11..20 (TTFT 110..200 ms)
    assert rows["TTFT p50 (ms)"]["now"] == "155.0"
    assert rows["TTFT p50 (ms)"]["run"] == "105.0"  # the whole test: 10..200 ms
    # ITL: gaps of 1..20 ms, four of each; the whole test's median is the 40th of 80: 10 ms
    assert rows["ITL p50 (ms)"]["run"] == "10.0"
    assert rows["ITL p99 (ms)"]["run"] == "20.0"
    assert (
        rows["E2E p50 (ms)"]["run"]
        == f"{np.percentile([s * 10 + 4 * s for s in range(1, 21)], 50):.1f}"
    )
    assert rows["requests ended"]["run"] == "20"
    assert "-" not in {row["run"] for row in rows.values()}


def test_the_history_has_a_point_a_second_with_the_charts_figures() -> None:
    clock = FakeClock()
    board = LiveBoard(window_s=10, clock=clock)
    run_twenty_seconds(board, clock)
    assert [p["t"] for p in board.history] == [float(s) for s in range(1, 21)]
    last = board.history[-1]
    assert last["tokens_per_s"] == pytest.approx(100.0)
    assert last["ttft_p50_ms"] == pytest.approx(155.0)
    assert last["ttft_p99_ms"] == pytest.approx(np.percentile(range(110, 201, 10), 99))
    assert last["itl_p50_ms"] == pytest.approx(15.5)  # gaps of 11..20 ms
    assert last["requests_per_s"] == pytest.approx(1.0)
    assert (last["in_flight"], last["users"]) == (3, 4)
    assert board.history[0]["requests_per_s"] == pytest.approx(1.0)  # 1 in the first second


def test_a_long_test_keeps_its_whole_history_at_half_the_rate() -> None:
    clock = FakeClock()
    board = LiveBoard(window_s=10, history_points=8, clock=clock)
    for second in range(1, 31):
        clock.now_ns = second * 1_000_000_000
        board.sample()
    times = [p["t"] for p in board.history]
    assert len(times) < 8
    assert times[0] == 1.0
    assert times[-1] >= 26.0  # still from the start to (near) now
    assert times == sorted(times)


def test_a_shape_observes_errors_and_ttft_of_the_last_window() -> None:
    clock = FakeClock()
    board = LiveBoard(window_s=10, clock=clock)
    clock.now_ns = 5_000_000_000
    board.add_tokens(50)
    board.add(record(1, start_ns=4_000_000_000, ttft_ms=100))
    board.add(record(2, start_ns=4_000_000_000, ttft_ms=300, ok=False))
    board.sample()  # tokens/s is measured between samples
    observed = board.recent().observation()
    assert observed.error_rate == pytest.approx(0.5)
    assert observed.ttft_p95_s == pytest.approx(0.100)  # a failed request's TTFT does not count
    assert observed.tokens_per_s == pytest.approx(10.0)  # 50 tokens in 5 s


def test_an_empty_board_shows_dashes_and_no_rate_over_nothing() -> None:
    board = LiveBoard(clock=FakeClock())
    rows = {row["name"]: row for row in board.rows()}
    assert rows["TTFT p50 (ms)"]["run"] == "-"
    assert rows["ITL p99 (ms)"]["now"] == "-"
    assert board.recent().observation().error_rate == 0.0


@given(
    st.lists(st.floats(min_value=1e-5, max_value=100.0), min_size=1, max_size=300),
    st.sampled_from([0.01, 0.5, 0.95, 0.99, 1.0]),
)
def test_gap_buckets_are_within_their_stated_width_of_the_exact_percentile(
    gaps: list[float], q: float
) -> None:
    histogram = GapHistogram()
    for gap in gaps:
        histogram.add(gap)
    (found,) = histogram.percentiles([q])
    exact = sorted(gaps)[max(1, math.ceil(q * len(gaps))) - 1]  # nearest rank
    assert found == pytest.approx(exact, rel=0.0006)


def test_gaps_of_tokens_read_together_count_as_zero() -> None:
    histogram = GapHistogram()
    for gap in (0.0, 0.0, 0.0, 0.020):
        histogram.add(gap)
    assert histogram.percentiles([0.5, 1.0]) == [0.0, pytest.approx(0.020, rel=0.0006)]
    assert GapHistogram().percentiles([0.5]) == [None]
