"""An asyncio event loop on a virtual clock, for tests of pacing that a busy machine must
not move.

Time passes only when every task waits for a timer: the loop then jumps to the next timer
at once instead of sleeping. Sleeps, ``asyncio.timeout`` deadlines and the harness's
schedule all read that clock, and so does ``VirtualClock.ns`` when it is given to a
runner or a transport as its ``clock``, so figures measured on it (lateness, gaps,
durations) come out exact however loaded the machine is, and a long pause costs nothing.

Only in-memory I/O belongs on it: a socket's bytes arrive in real time, which the virtual
clock knows nothing of.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualClock"]

T = TypeVar("T")
#: Virtual time starts here (seconds), well away from zero like a monotonic clock.
START_S = 1_000
#: When no task has a timer to wait for, a real wait this long for a thread's wake-up
#: before the loop is declared stuck: a bound on a hung test, not a measurement.
STUCK_S = 30.0


class VirtualClock:
    """Monotonic nanoseconds that advance only when the loop they drive would sleep.

    ``run`` runs a coroutine on a loop of this clock; ``ns`` is the clock to inject.
    """

    def __init__(self, start_ns: int = START_S * 1_000_000_000) -> None:
        self._ns = start_ns

    def ns(self) -> int:
        """Now, in nanoseconds."""
        return self._ns

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` (rounded up to whole nanoseconds)."""
        self._ns += max(math.ceil(seconds * 1e9), 0)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` to its end on a new event loop that reads this clock."""
        with asyncio.Runner(loop_factory=lambda: _VirtualLoop(self)) as runner:
            return runner.run(coroutine)


class _JumpingSelector(selectors.DefaultSelector):
    """Polls instead of waiting, and moves the clock on by the wait it was asked for."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer: only another thread can wake the loop now
            ready = super().select(STUCK_S)
            if not ready:
                raise RuntimeError(f"every task waits and nothing woke the loop in {STUCK_S} s")
            return ready
        self._clock.advance(timeout)
        return []


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(selector=_JumpingSelector(clock))
        self._virtual = clock

    def time(self) -> float:
        return self._virtual.ns() / 1e9
