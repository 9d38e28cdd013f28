"""The live figures of a locust test: what the web UI's "LLM streams" tab shows as it runs.

``LiveBoard`` takes each finished record (on the master, the records merged from every
worker) and the token count as tokens arrive. It keeps:

* the last window (10 s) of records, whose TTFT, ITL and E2E percentiles are exact;
* every TTFT and E2E of the test (8 bytes each), exact too;
* every inter-token gap of the test in buckets 0.1% wide, so a long test's millions of
  gaps cost a few thousand counters: a whole-test ITL percentile is the bucket's middle,
  within 0.05% of the exact figure (0.01 ms at 20 ms, below the table's 0.1 ms);
* a history, one point a second over the whole test (when it is full, every other point
  goes and the points come half as often), which the tab's chart draws.

Nothing here imports locust or gevent, and no clock is read but the one given.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.locust.shapes import Observation
from harness.record import Outcome, RequestRecord
from harness.transports.base import Clock

__all__ = ["HISTORY_POINTS", "LIVE_WINDOW_S", "GapHistogram", "LiveBoard", "Recent"]

#: Recent records and token counts older than this leave the "last window" figures.
LIVE_WINDOW_S = 10.0
#: Points of the history kept for the chart; at this many, the history halves its rate.
HISTORY_POINTS = 1200

Percentiles = tuple[float | None, float | None, float | None]
_NONE: Percentiles = (None, None, None)
QS = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Recent:
    """Figures of the last window: p50, p95 and p99 in ms, counts and rates."""

    ttft_ms: Percentiles
    itl_ms: Percentiles
    e2e_ms: Percentiles
    requests: int  # requests that ended in the window
    errors: int
    window_s: float  # the window, or the time since the test started if that is shorter
    tokens_per_s: float

    def observation(self) -> Observation:
        """What a load shape judges a level by."""
        p95_ms = self.ttft_ms[1]
        return Observation(
            tokens_per_s=self.tokens_per_s,
            error_rate=self.errors / self.requests if self.requests else 0.0,
            ttft_p95_s=p95_ms / 1000 if p95_ms is not None else None,
        )


class GapHistogram:
    """Durations in buckets whose width is ``ratio - 1`` of their value; no upper bound.

    A duration under ``floor_s`` (tokens that came in the same read) counts as zero.
    """

    def __init__(self, *, ratio: float = 1.001, floor_s: float = 1e-7) -> None:
        self._log_ratio = math.log(ratio)
        self._ratio = ratio
        self._floor_s = floor_s
        self._counts: Counter[int] = Counter()
        self.zeros = 0
        self.count = 0

    def add(self, seconds: float) -> None:
        self.count += 1
        if seconds < self._floor_s:
            self.zeros += 1
        else:
            self._counts[math.floor(math.log(seconds) / self._log_ratio)] += 1

    def percentiles(self, qs: Sequence[float]) -> list[float | None]:
        """The values at quantiles ``qs`` (0..1, ascending) by nearest rank, in seconds."""
        if not self.count:
            return [None] * len(qs)
        ranks = [max(1, math.ceil(q * self.count)) for q in qs]
        found: list[float | None] = []
        seen = self.zeros
        buckets = iter(sorted(self._counts.items()))
        index = None
        for rank in ranks:
            while seen < rank:
                index, n = next(buckets)
                seen += n
            found.append(0.0 if index is None else self._ratio ** (index + 0.5))
        return found


class LiveBoard:
    """Live figures for the web UI.

    ``add`` takes finished records; ``add_tokens`` counts tokens as they arrive (a
    stream's tokens show before it ends); ``sample`` is called about once a second with
    the streams in flight and the users running, and adds a point to the history.
    """

    def __init__(
        self,
        *,
        window_s: float = LIVE_WINDOW_S,
        history_points: int = HISTORY_POINTS,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        self._window_ns = int(window_s * 1e9)
        self._clock = clock
        self.started_ns = clock()
        self.requests = 0
        self.errors = 0
        self.tokens = 0
        self._ttft_s = array("d")  # every counted TTFT
        self._e2e_s = array("d")  # every ok request's E2E
        self._itl = GapHistogram()
        self._recent: deque[tuple[int, RequestRecord]] = deque()
        self._token_samples: deque[tuple[int, int]] = deque([(self.started_ns, 0)])
        self._history_points = history_points
        self._stride = 1  # history: one point every this many samples
        self._samples = 0
        self.history: list[dict[str, float | int | None]] = []

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        if record.outcome is Outcome.ERROR:
            self.errors += 1
        ttft_s = _counted_ttft_s(record)
        if ttft_s is not None:
            self._ttft_s.append(ttft_s)
            for gap_ns in record.itl_ns():
                self._itl.add(gap_ns / 1e9)
        if record.outcome is Outcome.OK and record.e2e_s is not None:
            self._e2e_s.append(record.e2e_s)
        self._recent.append((record.t_end_ns or self._clock(), record))

    def add_tokens(self, count: int) -> None:
        self.tokens += count

    def sample(self, *, in_flight: int = 0, users: int = 0) -> None:
        """Note the token count now; every ``stride`` samples, add a point to the history."""
        now = self._clock()
        self._token_samples.append((now, self.tokens))
        self._samples += 1
        if self._samples % self._stride:
            return
        recent = self.recent()
        self.history.append(
            {
                "t": round((now - self.started_ns) / 1e9, 1),
                "ttft_p50_ms": _round(recent.ttft_ms[0]),
                "ttft_p99_ms": _round(recent.ttft_ms[2]),
                "itl_p50_ms": _round(recent.itl_ms[0]),
                "itl_p99_ms": _round(recent.itl_ms[2]),
                "e2e_p50_ms": _round(recent.e2e_ms[0]),
                "tokens_per_s": _round(recent.tokens_per_s),
                "requests_per_s": _round(recent.requests / recent.window_s),
                "errors_per_s": _round(recent.errors / recent.window_s),
                "in_flight": in_flight,
                "users": users,
            }
        )
        if len(self.history) >= self._history_points:
            del self.history[1::2]  # half the points, each twice as far apart
            self._stride *= 2

    def tokens_per_s(self) -> float:
        self._trim(self._clock())
        (t0, n0), (t1, n1) = self._token_samples[0], self._token_samples[-1]
        return (n1 - n0) / ((t1 - t0) / 1e9) if t1 > t0 else 0.0

    def recent(self) -> Recent:
        """The figures of the last window."""
        now = self._clock()
        self._trim(now)
        ttft: list[float] = []
        e2e: list[float] = []
        itl: list[float] = []
        errors = 0
        for _, r in self._recent:
            if r.outcome is Outcome.ERROR:
                errors += 1
            ttft_s = _counted_ttft_s(r)
            if ttft_s is not None:
                ttft.append(ttft_s)
                itl.extend(gap / 1e9 for gap in r.itl_ns())
            if r.outcome is Outcome.OK and r.e2e_s is not None:
                e2e.append(r.e2e_s)
        return Recent(
            ttft_ms=_percentiles(ttft),
            itl_ms=_percentiles(itl),
            e2e_ms=_percentiles(e2e),
            requests=len(self._recent),
            errors=errors,
            window_s=max(min(self._window_ns, now - self.started_ns) / 1e9, 1e-9),
            tokens_per_s=self.tokens_per_s(),
        )

    def whole_test(self) -> dict[str, Percentiles]:
        """TTFT, ITL and E2E percentiles (ms) over the whole test."""
        p50, p95, p99 = (None if s is None else s * 1000 for s in self._itl.percentiles(QS))
        return {
            "ttft": _percentiles(self._ttft_s),
            "itl": (p50, p95, p99),
            "e2e": _percentiles(self._e2e_s),
        }

    def rows(self) -> list[dict[str, str]]:
        """The tab's table: each figure over the last window and the whole test."""
        recent = self.recent()
        run = self.whole_test()
        elapsed_s = max((self._clock() - self.started_ns) / 1e9, 1e-9)
        rows = [
            ("output tokens/s", _fmt(recent.tokens_per_s), _fmt(self.tokens / elapsed_s)),
            (
                "requests/s",
                _fmt(recent.requests / recent.window_s),
                _fmt(self.requests / elapsed_s),
            ),
        ]
        for figure, name in (("ttft", "TTFT"), ("itl", "ITL"), ("e2e", "E2E")):
            now: Percentiles = getattr(recent, f"{figure}_ms")
            for i, q in enumerate(("p50", "p95", "p99")):
                if q == "p95" and figure != "ttft":
                    continue
                rows.append((f"{name} {q} (ms)", _fmt(now[i]), _fmt(run[figure][i])))
        rows += [
            ("requests ended", str(recent.requests), str(self.requests)),
            ("errors", str(recent.errors), str(self.errors)),
        ]
        window = f"{self._window_ns / 1e9:g}"
        return [
            {"name": name, "now": now, "run": whole, "window": window} for name, now, whole in rows
        ]

    def as_json(self) -> dict[str, Any]:
        """The body of ``/sse-harness/live``."""
        return {
            "rows": self.rows(),
            "tokens_per_s": self.tokens_per_s(),
            "requests": self.requests,
            "errors": self.errors,
            "tokens": self.tokens,
            "window_s": self._window_ns / 1e9,
            "history": self.history,
        }

    def _trim(self, now_ns: int) -> None:
        horizon = now_ns - self._window_ns
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        while len(self._token_samples) > 1 and self._token_samples[1][0] <= horizon:
            self._token_samples.popleft()


def _counted_ttft_s(record: RequestRecord) -> float | None:
    """A record's TTFT when its TTFT and ITL count (``ok`` or ``cut``, as in the report)."""
    return record.ttft_s if record.outcome in (Outcome.OK, Outcome.CUT) else None


def _percentiles(values_s: Iterable[float]) -> Percentiles:
    """p50, p95 and p99 in milliseconds (None without values)."""
    values = np.asarray(values_s, dtype=float)
    if not values.size:
        return _NONE
    p50, p95, p99 = np.percentile(values * 1000, [q * 100 for q in QS])
    return float(p50), float(p95), float(p99)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
