"""``sse-harness calibrate``: how far this machine's client measurements can be trusted.

The client runs against the embedded mock, which records when it wrote every token. For
each transport and concurrency level, every token's *arrival lag* is the client's arrival
time minus the mock's write time (the same monotonic clock), and the *ITL error* is each
measured gap minus the true gap. A level's figures: lag p50/p99/max (all tokens and first
tokens), ITL error p99, and the client's CPU per event. The result names, per transport,
the highest concurrency whose p99 arrival lag stays within the bound; it is saved for
this machine, and every later run report quotes it as its measurement error.

Where the kernel stamped the arrivals (the kernel transport), the records also carry the
user-space stamps of the same reads; their lag (``user_lag_*``) is reported beside the
kernel's, so the gain of kernel stamps is measured in the same run.

With ``baseline``, every level first runs the leanest client this Python can be (see
``harness.calibration.baseline``) on the same mock, core and event loop, and each
transport's CPU per event is also given as a multiple of the baseline's: the harness's own
cost, apart from how fast the machine is at the time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.calibration.baseline import read_streams
from harness.calibration.stored import LAG_BOUND_MS, calibration_path
from harness.load.config import RunConfig
from harness.load.health import client_verdict
from harness.load.payloads import RequestSpec
from harness.load.runner import Runner
from harness.load.schedule import Bounds, ClosedLoop
from harness.record import RequestRecord
from harness.servers.embedded import embedded_mock, fetch_truths, mock_arguments
from harness.transports import Timeouts, make_transport, run_event_loop

__all__ = [
    "LevelResult",
    "run_calibration",
    "spread_over_rounds",
]

DEFAULT_LEVELS = (1, 10, 100, 500, 1000, 2000)
#: The ``transport`` of the baseline's levels.
BASELINE = "baseline"


@dataclass(frozen=True, slots=True)
class LevelResult:
    transport: str
    concurrency: int
    requests: int
    errors: int
    events: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    first_token_lag_p50_ms: float | None
    first_token_lag_p99_ms: float | None
    first_token_lag_max_ms: float | None
    itl_error_p99_ms: float | None
    cpu_us_per_event: float | None
    clock_source: str = "user"  # "kernel", "user" or "mixed" over the level's records
    user_lag_p50_ms: float | None = None  # the user-space stamps' lag, where kept
    user_lag_p99_ms: float | None = None
    user_lag_max_ms: float | None = None
    user_first_token_lag_p99_ms: float | None = None
    #: CPU per event as a multiple of the baseline's at the same level, where it ran
    cpu_vs_baseline: float | None = None
    #: the run's own verdict on its client (``summary.json``'s ``client.bound``), and the
    #: figures it rests on, where the self-watch ran
    self_watch_bound: bool | None = None
    loop_lag_p99_ms: float | None = None
    cpu_p50_percent: float | None = None


def _clock_source(records: Sequence[RequestRecord]) -> str:
    sources = {r.clock_source for r in records if r.token_times_ns}
    return sources.pop() if len(sources) == 1 else "mixed" if sources else "user"


def _ramp_s(concurrency: int) -> float:
    return min(2.0, concurrency / 500)


def _tokens(seconds: float, itl_ms: float) -> int:
    return max(int(seconds * 1000 / itl_ms), 2)


def _total_s(seconds: float) -> float:
    return seconds * 3 + 30


def measure(
    base_url: str,
    transport: str,
    concurrency: int,
    *,
    seconds: float,
    itl_ms: float,
    self_watch: bool = True,
) -> LevelResult:
    """One level: ``concurrency`` users stream for about ``seconds`` from the mock, the
    client watching itself as a run's does (unless ``self_watch`` is off)."""
    spec = RequestSpec(url=base_url, headers=(("X-Mock-Tokens", str(_tokens(seconds, itl_ms))),))
    config = RunConfig(
        spec=spec,
        profile=ClosedLoop(concurrency=concurrency, ramp_up_s=_ramp_s(concurrency)),
        bounds=Bounds(requests=concurrency, grace_s=10),
        transport=transport,
        timeouts=Timeouts(connect_s=10, ttft_s=30, idle_s=30, total_s=_total_s(seconds)),
        self_watch=self_watch,
    )
    records: list[RequestRecord] = []
    runner = Runner(config, records.append)
    cpu_start = time.process_time()
    run_event_loop(runner.run())
    cpu_s = time.process_time() - cpu_start
    result = _level(base_url, transport, concurrency, records, cpu_s)
    if runner.client is None:
        return result
    verdict = client_verdict(runner.client, transport=transport)
    return replace(
        result,
        self_watch_bound=verdict["bound"],
        loop_lag_p99_ms=verdict["loop_lag_ms"]["p99"],
        cpu_p50_percent=verdict["cpu_percent"]["p50"],
    )


def measure_baseline(
    base_url: str, concurrency: int, *, seconds: float, itl_ms: float
) -> LevelResult:
    """One level of the baseline client, loaded as ``measure`` loads a transport."""
    port = urlsplit(base_url).port
    assert port is not None, "the embedded mock's URL names its port"
    reading = read_streams(
        port,
        concurrency,
        tokens=_tokens(seconds, itl_ms),
        ramp_s=_ramp_s(concurrency),
        timeout_s=_total_s(seconds),
    )
    cpu_start = time.process_time()
    records = run_event_loop(reading)
    cpu_s = time.process_time() - cpu_start
    return _level(base_url, BASELINE, concurrency, records, cpu_s)


def _level(
    base_url: str,
    transport: str,
    concurrency: int,
    records: Sequence[RequestRecord],
    cpu_s: float,
) -> LevelResult:
    # pandas, beneath the lags, only where they are measured: ``run`` imports this module
    # for ``measurement_error`` before its first request
    from harness.analysis.accuracy import arrival_lags

    ids = [r.mock_request_id for r in records if r.mock_request_id]
    truths = fetch_truths(base_url, ids)
    events = sum(r.events for r in records)
    return LevelResult(
        transport=transport,
        concurrency=concurrency,
        requests=len(records),
        errors=sum(1 for r in records if not r.ok),
        events=events,
        cpu_us_per_event=cpu_s * 1e6 / events if events else None,
        clock_source=_clock_source(records),
        **arrival_lags(records, truths),
    )


def run_calibration(
    transports: Sequence[str],
    levels: Sequence[int] = DEFAULT_LEVELS,
    *,
    seconds: float = 4.0,
    itl_ms: float = 20.0,
    baseline: bool = False,
    self_watch: bool = True,
    on_level: Callable[[LevelResult], None] | None = None,
) -> Iterator[LevelResult]:
    """Measure every level of every transport (level by level, so that the transports of a
    level run close together), each level opened by the baseline when asked for; a
    transport stops once it has errors."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    capacity = str(max(max(levels) * 2, 1000))
    arguments = mock_arguments(
        ttft_ms=50,
        itl_ms=itl_ms,
        tokens=10,
        extra=("--truth-capacity", capacity, "--log-level", "warning"),
    )
    for transport in transports:  # import each library now: its import is no CPU per event
        make_transport(transport, timeouts=Timeouts(), connections=1)
    active = [BASELINE, *transports] if baseline else list(transports)
    with embedded_mock(arguments, cpu=cores[0] if len(cores) > 1 else None) as mock:
        if len(cores) > 1:
            os.sched_setaffinity(0, set(cores[1:]))
        try:
            for level in levels:
                floor: LevelResult | None = None
                for transport in list(active):
                    if transport == BASELINE:
                        result = floor = measure_baseline(
                            mock.base_url, level, seconds=seconds, itl_ms=itl_ms
                        )
                    else:
                        result = measure(
                            mock.base_url,
                            transport,
                            level,
                            seconds=seconds,
                            itl_ms=itl_ms,
                            self_watch=self_watch,
                        )
                        result = replace(result, cpu_vs_baseline=_ratio(result, floor))
                    if on_level is not None:
                        on_level(result)
                    yield result
                    if result.errors:
                        active.remove(transport)
                if not any(t != BASELINE for t in active):
                    break
        finally:
            if len(cores) > 1:
                os.sched_setaffinity(0, set(cores))


def _ratio(result: LevelResult, floor: LevelResult | None) -> float | None:
    if floor is None or floor.errors or not floor.cpu_us_per_event:
        return None
    if result.cpu_us_per_event is None:
        return None
    return result.cpu_us_per_event / floor.cpu_us_per_event


#: The figures of a level whose median and range ``spread_over_rounds`` gives.
SPREAD_FIGURES = ("lag_p99_ms", "cpu_us_per_event", "cpu_vs_baseline")


def spread_over_rounds(rounds: Sequence[Sequence[LevelResult]]) -> list[dict[str, Any]]:
    """Each transport's level over repeated rounds: the median, lowest and highest of its
    p99 lag, CPU per event and CPU against the baseline measured in the same round, and
    its errors summed; in the order the levels first ran.

    A shared machine's speed changes from one minute to the next: a figure is quoted
    with its spread over rounds, and the multiple of the baseline (measured beside it,
    on the same mock and core) moves much less than the raw CPU per event.
    """
    grouped: dict[tuple[str, int], list[LevelResult]] = {}
    for results in rounds:
        for r in results:
            grouped.setdefault((r.transport, r.concurrency), []).append(r)
    rows = []
    for (transport, concurrency), levels in grouped.items():
        row: dict[str, Any] = {
            "transport": transport,
            "concurrency": concurrency,
            "rounds": len(levels),
            "errors": sum(r.errors for r in levels),
        }
        for name in SPREAD_FIGURES:
            values = sorted(v for r in levels if (v := getattr(r, name)) is not None)
            row[name] = (
                {"median": statistics.median(values), "min": values[0], "max": values[-1]}
                if values
                else None
            )
        rows.append(row)
    return rows


def best_levels(
    results: Sequence[LevelResult], bound_ms: float = LAG_BOUND_MS
) -> dict[str, int | None]:
    """Per transport, the highest error-free concurrency whose p99 lag is within the bound."""
    best: dict[str, int | None] = {}
    for r in results:
        best.setdefault(r.transport, None)
        if not r.errors and r.lag_p99_ms is not None and r.lag_p99_ms <= bound_ms:
            best[r.transport] = max(best[r.transport] or 0, r.concurrency)
    return best


def save_calibration(results: Sequence[LevelResult], path: Path | None = None) -> Path:
    path = path or calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "time": time.time(),
        "bound_ms": LAG_BOUND_MS,
        "best": best_levels(results),
        "levels": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
