"""The client watching itself: how late its event loop runs and how busy its process is.

Every figure a run reports is stamped by the client's event loop, so a loop that falls
behind moves every figure by as much. While a segment runs, ``ClientWatch`` sleeps for a
short interval over and over and keeps how late each wake-up came, less the timer's own
millisecond of rounding (the *loop lag*: the time a ready callback waited for the loop,
or the process for a core), and once a second the process's CPU time over
that second, as a share of one core. What the samples mean for the run's figures is
judged in ``harness.client_verdict``.

The watch costs one timer wake-up per ``interval_s`` (50 a second by default).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness.load.health import ClientSamples

__all__ = ["ClientWatch"]

#: Seconds between two wake-ups of the watch.
INTERVAL_S = 0.02
#: How late a timer may fire on an idle loop: asyncio and uvloop both round a timer's
#: wait up to the millisecond.
TIMER_SLACK_NS = 1_000_000
#: The last part of a second is kept when it is at least this long.
MIN_PART_NS = 200_000_000


class ClientWatch:
    """Samples this process's loop lag and CPU share while a segment runs.

    Use it as an async context manager inside the event loop it watches; ``samples``
    holds what it saw once it has ended.

    Args:
        interval_s: seconds between two wake-ups.
        clock: the run's clock (``time.perf_counter_ns``), for the seconds' start times.
        process: which client process this is.
    """

    def __init__(
        self, *, interval_s: float = INTERVAL_S, clock: Any = time.perf_counter_ns, process: int = 0
    ) -> None:
        self.interval_s = interval_s
        self.samples = ClientSamples(process=process)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._second_start = self._cpu_start = self._lag_max = 0

    async def __aenter__(self) -> ClientWatch:
        self._task = asyncio.create_task(self._watch(), name="sse-harness-self-watch")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            self._close_second(self._clock(), time.process_time_ns(), last=True)

    async def _watch(self) -> None:
        interval = self.interval_s
        interval_ns = int(interval * 1e9)
        lags = self.samples.lags_ns
        busy = self.samples.busy
        cpu = time.process_time_ns
        clock = self._clock
        self._second_start = clock()
        self._cpu_start = tick_cpu = cpu()
        while True:
            start = clock()
            due = start + interval_ns
            await asyncio.sleep(interval)
            now = clock()
            used = cpu()
            # a timer fires on the loop's millisecond tick: the first millisecond late is
            # the timer's rounding, not the loop's lag
            lag = max(now - due - TIMER_SLACK_NS, 0)
            lags.append(lag)
            busy.append(min(100 * (used - tick_cpu) // max(now - start, 1), 100))
            tick_cpu = used
            self._lag_max = max(self._lag_max, lag)
            if now - self._second_start >= 1_000_000_000 - interval_ns // 2:
                self._close_second(now, used)

    def _close_second(self, now: int, used: int, *, last: bool = False) -> None:
        """Keep the second (or, at the end, the part of one) that ends at ``now``."""
        span = now - self._second_start
        if last and span < MIN_PART_NS:
            return
        share = 100.0 * (used - self._cpu_start) / max(span, 1)
        seconds = self.samples.seconds
        seconds.append((self._second_start, self._lag_max, round(share, 1), self.samples.process))
        self._second_start, self._cpu_start, self._lag_max = now, used, 0
