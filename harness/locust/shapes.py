"""Load shapes for locust, as pure schedules: users and spawn rate at each moment.

``scenarios/shapes.py`` wraps them in one ``LoadTestShape`` that ``--shape`` selects:

* **step**: ``step_users`` more users every ``step_s`` seconds up to ``users``; the top
  level is held one step too, then the test ends.
* **spike**: ``step_users`` users for ``step_s``, a jump to ``users`` for ``spike_s``,
  back to ``step_users`` for ``step_s``, then the end: how the endpoint takes a burst
  and whether it recovers.
* **ramp** (to saturation): steps as above, but each level is judged when it ends. The
  ramp stops at the first level whose output tokens/s is less than ``min_gain`` above
  the best level before it, whose error rate passes ``max_error_rate``, or whose TTFT
  p95 passes ``ttft_p95_s``: the endpoint is saturated, and ``saturated_at`` says where.

No clock is read here: the locust shape passes the test's run time and what it observes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.errors import ConfigError

__all__ = ["SHAPE_NAMES", "Observation", "Shape"]

SHAPE_NAMES = ("step", "spike", "ramp")


@dataclass(frozen=True, slots=True)
class Observation:
    """What the load achieved lately (locust's current window)."""

    tokens_per_s: float
    error_rate: float = 0.0
    ttft_p95_s: float | None = None


@dataclass(slots=True, kw_only=True)
class Shape:
    """One of ``SHAPE_NAMES``, with its levels; ``tick`` gives users and spawn rate."""

    name: str
    users: int
    step_users: int = 10
    step_s: float = 10.0
    spike_s: float = 10.0
    spawn_rate: float = 10.0
    min_gain: float = 0.05
    max_error_rate: float = 0.2
    ttft_p95_s: float | None = None
    #: ramp: each judged level, in order ({"users", "tokens_per_s", "error_rate", ...})
    levels: list[dict[str, float | None]] = field(default_factory=list)
    #: ramp: the users of the first saturated level, once found
    saturated_at: int | None = None

    def __post_init__(self) -> None:
        if self.name not in SHAPE_NAMES:
            raise ConfigError(
                "shape", f"must be one of {', '.join(SHAPE_NAMES)}, not {self.name!r}"
            )
        for name in ("users", "step_users"):
            if getattr(self, name) < 1:
                raise ConfigError(name.replace("_", "-"), "must be at least 1")
        for name in ("step_s", "spike_s", "spawn_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(name.replace("_", "-"), "must be positive")

    @property
    def steps(self) -> int:
        return math.ceil(self.users / self.step_users)

    def duration_s(self) -> float:
        """How long the shape runs (a ramp may stop sooner)."""
        if self.name == "spike":
            return 2 * self.step_s + self.spike_s
        return self.steps * self.step_s

    def tick(
        self, run_time_s: float, observed: Observation | None = None
    ) -> tuple[int, float] | None:
        """Users and spawn rate now; None ends the test.

        Args:
            run_time_s: seconds since the shape started.
            observed: what the load achieves now (the ramp judges a level with it).
        """
        if self.name == "spike":
            if run_time_s >= self.duration_s():
                return None
            spiking = self.step_s <= run_time_s < self.step_s + self.spike_s
            return (self.users if spiking else self.step_users), self.spawn_rate
        step = int(run_time_s // self.step_s)
        if self.name == "ramp" and observed is not None:
            while len(self.levels) < min(step, self.steps):
                self._judge(len(self.levels), observed)
            if self.saturated_at is not None:
                return None
        if step >= self.steps:
            return None
        return self._users_at(step), self.spawn_rate

    def _users_at(self, step: int) -> int:
        return min(self.users, self.step_users * (step + 1))

    def _judge(self, step: int, observed: Observation) -> None:
        best = max((lv["tokens_per_s"] or 0.0 for lv in self.levels), default=None)
        slow = (
            self.ttft_p95_s is not None
            and observed.ttft_p95_s is not None
            and observed.ttft_p95_s > self.ttft_p95_s
        )
        flat = best is not None and observed.tokens_per_s < best * (1 + self.min_gain)
        saturated = flat or slow or observed.error_rate > self.max_error_rate
        self.levels.append(
            {
                "users": self._users_at(step),
                "tokens_per_s": observed.tokens_per_s,
                "error_rate": observed.error_rate,
                "ttft_p95_s": observed.ttft_p95_s,
            }
        )
        if saturated and self.saturated_at is None:
            self.saturated_at = self._users_at(step)
