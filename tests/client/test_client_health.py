"""The client judging itself: the self-watch's samples, their verdict, and where it shows."""

from __future__ import annotations

import asyncio
import time
from array import array
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.compare import compare_samples, render_comparison
from harness.analysis.frames import time_series
from harness.analysis.gate import check
from harness.analysis.summary import merged_reads_share, summarize
from harness.cli.run_display import health_lines
from harness.load.health import ClientSamples, client_verdict, remedy
from harness.load.selfwatch import ClientWatch
from harness.record import RequestRecord
from harness.report.html import render_html
from harness.report.markdown import render_markdown

MS = 1_000_000


def samples(lags_ms: list[float], busy: list[int], cpu: list[float]) -> ClientSamples:
    seconds = [(i * 10**9, int(max(lags_ms, default=0) * MS), c, 0) for i, c in enumerate(cpu)]
    return ClientSamples(
        array("q", [int(v * MS) for v in lags_ms]), array("b", busy), seconds, process=0
    )


def test_a_busy_lagging_client_is_bound_and_says_why_and_what_to_do() -> None:
    verdict = client_verdict(
        samples([30.0] * 50, [100] * 50, [97.0, 99.0]), transport="httpx", http2=True
    )
    assert verdict["bound"] is True
    assert verdict["loop_lag_ms"]["p99"] == 30.0
    assert verdict["cpu_percent"] == {"p50": 98.0, "max": 99.0}
    assert any("event-loop lag p99 30 ms" in r for r in verdict["reasons"])
    assert any("CPU 98% of a core" in r for r in verdict["reasons"])
    assert "--transport aiohttp" in verdict["remedy"]


def test_an_idle_client_late_to_wake_is_not_bound() -> None:
    # a parked vCPU wakes late: the lag is the machine's, not the client's load
    verdict = client_verdict(samples([6.0] * 50, [2] * 50, [3.0, 4.0]), transport="aiohttp")
    assert verdict["bound"] is False
    assert verdict["loop_lag_ms"]["p99"] is None
    assert verdict["loop_lag_ms"]["p99_all"] == 6.0
    assert verdict["remedy"] is None


def test_send_lateness_alone_binds_the_client() -> None:
    verdict = client_verdict(
        samples([0.0] * 10, [60] * 10, [70.0]), send_lateness_ns=[12 * MS] * 100
    )
    assert verdict["bound"] is True
    assert verdict["reasons"] == ["send lateness p99 12 ms (bound 5 ms)"]


def test_without_the_watch_only_the_schedule_is_judged() -> None:
    verdict = client_verdict(None, send_lateness_ns=[MS])
    assert verdict == {
        "watched": False,
        "send_lateness_ms": {"p99": 1.0, "max": 1.0},
        "merged_reads_share": None,
        "bound": False,
        "reasons": [],
        "remedy": None,
    }


@pytest.mark.parametrize(
    ("transport", "http2", "processes", "cores", "expected"),
    [("httpx", True, 1, 2, "--transport aiohttp"), ("httpx", False, 1, 2, "--processes 2"),
     ("aiohttp", False, 1, 4, "--processes 4"), ("kernel", False, 4, 4, "fewer streams")],
)  # fmt: skip
def test_the_remedy_is_the_first_that_applies(
    transport: str, http2: bool, processes: int, cores: int, expected: str
) -> None:
    assert expected in remedy(transport, processes, cores, http2=http2)


@pytest.mark.parametrize(
    ("transport", "lagging", "kernel_stamps", "expected"),
    [("aiohttp", True, True, "--transport kernel"), ("httpx", True, True, "--transport kernel"),
     ("kernel", True, True, "fewer streams"), ("aiohttp", False, True, "fewer streams"),
     ("aiohttp", True, False, "fewer streams")],
)  # fmt: skip
def test_a_late_loop_with_no_core_to_spare_is_sent_to_the_kernel_s_stamps(
    transport: str, lagging: bool, kernel_stamps: bool, expected: str
) -> None:
    said = remedy(transport, 1, 1, lagging=lagging, kernel_stamps=kernel_stamps)
    assert expected in said


def test_a_bound_verdict_names_the_kernel_transport_for_its_loop_lag() -> None:
    lagging = samples([30.0] * 50, [100] * 50, [60.0])
    verdict = client_verdict(lagging, transport="aiohttp", cores=1, kernel_stamps=True)
    assert verdict["bound"] is True
    assert "--transport kernel" in verdict["remedy"]
    busy = samples([0.0] * 50, [100] * 50, [99.0, 99.0])  # CPU alone: the stamps are not late
    verdict = client_verdict(busy, transport="aiohttp", cores=1, kernel_stamps=True)
    assert verdict["bound"] is True
    assert "fewer streams" in verdict["remedy"]


def test_samples_cross_a_process_boundary_unchanged() -> None:
    taken = samples([1.5, 2.5], [80, 10], [55.5])
    again = ClientSamples.from_dict(taken.as_dict())
    assert (again.lags_ns, again.busy, again.seconds) == (taken.lags_ns, taken.busy, taken.seconds)


def test_the_watch_sees_a_loop_held_up_by_busy_work() -> None:
    async def main() -> ClientWatch:
        async with ClientWatch(interval_s=0.01) as watch:
            await asyncio.sleep(0.05)
            spin_until = time.perf_counter() + 0.08  # the loop is held up, the CPU busy
            while time.perf_counter() < spin_until:
                pass
            await asyncio.sleep(0.2)
        return watch

    watch = asyncio.run(main())
    held = max(watch.samples.lags_ns)
    assert held >= 50 * MS  # at least the spin less one interval and the timer's rounding
    assert len(watch.samples.busy) == len(watch.samples.lags_ns)
    assert watch.samples.seconds  # the part of a second at the end is kept


def record(request_id: str, sent_ms: int, token_ms: list[int]) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        t_scheduled_ns=0,
        t_sent_ns=sent_ms * MS,
        t_first_token_ns=token_ms[0] * MS,
        t_end_ns=token_ms[-1] * MS,
        token_times_ns=[t * MS for t in token_ms],
    )


def test_merged_reads_and_the_client_columns_of_the_time_series() -> None:
    # the second request's two last tokens came in one read
    records = [record("a", 0, [100, 200, 300]), record("b", 8, [150, 250, 250])]
    assert merged_reads_share(records) == pytest.approx(1 / 5)
    watch = ClientSamples(seconds=[(0, 3 * MS, 40.0, 0), (0, 7 * MS, 95.0, 1)])
    series = time_series(records, client=watch)
    row = series.iloc[0]
    assert row["loop_lag_max_ms"] == 7.0  # the busiest process's
    assert row["cpu_percent"] == 95.0
    assert row["send_lateness_p99_ms"] == pytest.approx(7.92)
    assert row["merged_reads_share"] == pytest.approx(1 / 5)
    assert not pd.isna(row["tokens_per_s"])


def bound_summary() -> dict:
    records = [record(f"r{i}", i * 10, [i * 10 + 100, i * 10 + 120]) for i in range(5)]
    summary = summarize(records)
    summary["config"] = {"url": "http://127.0.0.1:8000/v1/chat/completions", "transport": "httpx"}
    summary["client"] = client_verdict(
        samples([20.0] * 20, [100] * 20, [99.0]), transport="httpx", http2=True
    )
    summary["schedule"] = {"offered": 10, "sent": 8, "not_sent": 2,
                           "not_sent_by": {"late": 2}, "unsent": [],
                           "send_lateness_s": {"p50": 0.001, "p99": 0.02, "max": 0.03}}  # fmt: skip
    return summary


def test_a_bound_run_opens_its_reports_with_a_warning() -> None:
    summary = bound_summary()
    markdown = render_markdown(summary)
    assert markdown.splitlines()[2].startswith("> **Warning:** The client was the bottleneck")
    assert "10 offered, 8 sent, 2 not sent (2 late)" in markdown
    page = render_html(summary, [], env={})
    assert 'class="banner" role="alert"' in page
    assert page.index('class="banner"') < page.index("<h2>Latency</h2>")
    lines = health_lines(summary)
    assert any(line.strip().startswith("remedy: use a faster transport") for line in lines)
    summary["client"]["bound"] = False
    assert "Warning" not in render_markdown(summary)
    assert 'class="banner"' not in render_html(summary, [], env={})


def test_the_gate_can_require_an_unbound_client() -> None:
    summary = bound_summary()
    assert not check(summary, {"client.bound": "== false"}).passed
    summary["client"]["bound"] = False
    assert check(summary, {"client.bound": "== false"}).passed
    assert not check({}, {"client.bound": "== false"}).passed  # not measured: not met


def test_compare_calls_no_regression_when_a_client_was_bound(tmp_path: Path) -> None:
    from harness.analysis.compare import sample_records

    fast = [record(f"r{i}", i * 10, [i * 10 + 100, i * 10 + 120]) for i in range(60)]
    slow = [record(f"r{i}", i * 10, [i * 10 + 900, i * 10 + 920]) for i in range(60)]
    base = sample_records(fast, summary={})
    current = sample_records(slow, summary={"client": {"bound": True, "reasons": ["CPU 99%"]}})
    comparison = compare_samples(base, current, resamples=200)
    assert any(d.regression for d in comparison.deltas)  # the figures did get worse
    assert comparison.regressions == ()
    assert "current run's client was its own bottleneck (CPU 99%)" in (comparison.refused or "")
    assert "NO VERDICT" in render_comparison(comparison)
