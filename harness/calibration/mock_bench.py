"""``sse-harness bench mock``: how many concurrent streams the mock holds on time.

For each concurrency level the mock is started afresh (pinned to core 0 where there
are two or more) and a lean client (``lean_client``, pinned to another core) holds that
many chat streams open for a while. The figure that matters comes from the mock's own
ground truth: the send lateness of every token written inside the steady window (write
time minus scheduled time). A level passes when its p99 lateness stays within the
target; the result is the highest level that passes, and its tokens/s.

Each level first measures the yardstick the same way, on the same core, with the same
client: the plainest aiohttp mock (``plain_mock``), so the mock's figures stand beside
what a plain server does on this machine at this moment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.summary import distribution
from harness.servers.embedded import embedded_mock, fetch_truths

__all__ = ["MOCK", "PLAIN", "Level", "run_mock_bench"]


@dataclass(frozen=True, slots=True)
class Level:
    """One concurrency level's outcome."""

    workers: int
    streams: int
    held: int
    ended_early: int
    tokens: int
    tokens_per_s: float
    lateness_p50_ms: float | None
    lateness_p99_ms: float | None
    lateness_max_ms: float | None
    mock_cpu_percent: float | None
    client_cpu_percent: float
    #: ``mock``, or ``plain`` for the yardstick (see ``plain_mock``)
    server: str = "mock"

    def passes(self, target_p99_ms: float) -> bool:
        return (
            self.lateness_p99_ms is not None
            and self.lateness_p99_ms <= target_p99_ms
            and self.held == self.streams
            and self.ended_early == 0
        )


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process and its live child processes (Linux).

    The workers of ``--workers N`` are children that run until the mock stops, so
    their time is read from their own records, not from the parent's.
    """
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = sum(int(v) for v in fields[11:13]) / ticks  # utime stime
    for child in _children(pid):
        total += _cpu_seconds(child) or 0.0
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as file:
                out.extend(int(child) for child in file.read().split())
    except OSError:
        pass
    return out


def _pin(cpus: set[int]) -> Callable[[], None] | None:
    if len(os.sched_getaffinity(0)) < 2:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


#: The servers a level can measure: the mock, and the yardstick.
MOCK, PLAIN = "mock", "plain"


def measure_level(
    streams: int,
    *,
    workers: int,
    itl_ms: float,
    seconds: float,
    ramp_s: float,
    server: str = MOCK,
) -> Level:
    """Hold ``streams`` streams against a fresh mock (or the yardstick, ``server``
    ``plain``, which has one worker) and read its lateness."""
    tokens = int((ramp_s + seconds + 6) * 1000 / itl_ms)
    arguments = ["--ttft-ms", "0", "--itl-ms", str(itl_ms), "--tokens", str(tokens)]
    if server == MOCK:
        capacity = str(max(streams * 2, 1000))
        arguments += ["--workers", str(workers), "--truth-capacity", capacity]
        arguments += ["--log-level", "warning"]
    else:
        workers = 1
    module = "mock_server" if server == MOCK else "harness.calibration.plain_mock"
    cores = sorted(os.sched_getaffinity(0))
    mock_cpu = 0 if len(cores) > 1 and workers == 1 else None
    settle_s = 1.0
    with embedded_mock(arguments, cpu=mock_cpu, module=module) as mock:
        port = int(mock.base_url.rsplit(":", 1)[1])
        command = [
            sys.executable,
            "-m",
            "harness.calibration.lean_client",
            "--port",
            str(port),
            "-c",
            str(streams),
            "-d",
            str(seconds),
            "--ramp",
            str(ramp_s),
            "--settle",
            str(settle_s),
            "--tokens",
            str(tokens),
        ]
        client_cpus = {cores[-1]} if len(cores) > 1 else set(cores)
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_pin(client_cpus),
        )
        # the mock's CPU over the steady window only (ramp and settling left out)
        time.sleep(ramp_s + settle_s + 0.2)
        cpu_before = _cpu_seconds(mock.pid)
        time.sleep(max(seconds - 0.4, 0.1))
        cpu_after = _cpu_seconds(mock.pid)
        try:
            stdout, stderr = process.communicate(timeout=ramp_s + seconds + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            raise RuntimeError("the lean client did not finish") from None
        if process.returncode != 0:
            raise RuntimeError(f"the lean client failed: {stderr[-2000:]}")
        client = json.loads(stdout)
        time.sleep(0.2)  # let the mock notice the closes before asking it
        truths = list(fetch_truths(mock.base_url, client["request_ids"]).values())
    window_s = (client["window_end_ns"] - client["window_start_ns"]) / 1e9
    lateness = _lateness(truths, client["window_start_ns"], client["window_end_ns"])
    spread = distribution(pd.Series(lateness / 1e6, dtype=float))
    mock_cpu_pct = None
    if cpu_before is not None and cpu_after is not None:
        mock_cpu_pct = 100 * (cpu_after - cpu_before) / max(seconds - 0.4, 0.1)
    return Level(
        workers=workers,
        streams=streams,
        held=client["streams"],
        ended_early=client["ended_early"],
        tokens=lateness.size,
        tokens_per_s=lateness.size / window_s,
        lateness_p50_ms=spread["p50"],
        lateness_p99_ms=spread["p99"],
        lateness_max_ms=spread["max"],
        mock_cpu_percent=mock_cpu_pct,
        client_cpu_percent=100 * client["client_cpu_s"] / window_s,
        server=server,
    )


def _lateness(truths: Sequence[dict | None], start_ns: int, end_ns: int) -> np.ndarray:
    """Write time minus scheduled time (ns) of every token scheduled in the window."""
    values: list[int] = []
    for truth in truths:
        if not truth:
            continue
        for scheduled, written in zip(truth["scheduled_ns"], truth["token_write_ns"], strict=False):
            if start_ns <= scheduled < end_ns:
                values.append(written - scheduled)
    return np.asarray(values, dtype=np.int64)


def run_mock_bench(
    levels: Sequence[int],
    *,
    workers: int = 1,
    itl_ms: float = 20.0,
    seconds: float = 6.0,
    ramp_s: float = 2.0,
    target_p99_ms: float = 2.0,
    stop_after_failures: int = 2,
    yardstick: bool = True,
) -> Iterator[Level]:
    """Measure each level in turn, the yardstick first unless ``yardstick`` is off; stop
    after ``stop_after_failures`` levels the mock failed in a row."""
    failures = 0
    for streams in levels:
        for server in (PLAIN, MOCK) if yardstick else (MOCK,):
            level = measure_level(
                streams,
                workers=workers,
                itl_ms=itl_ms,
                seconds=seconds,
                ramp_s=ramp_s,
                server=server,
            )
            yield level
        failures = 0 if level.passes(target_p99_ms) else failures + 1
        if failures >= stop_after_failures:
            return
