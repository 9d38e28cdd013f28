"""Load shapes for the LLM scenario, chosen with ``--shape step|spike|ramp``.

    sse-harness locust --host URL --shape step -u 100 \\
        --shape-step-users 10 --shape-step-seconds 30

``-u`` is the top level (the spike's height, the ramp's ceiling) and ``-r`` the spawn
rate. **step** adds ``--shape-step-users`` every ``--shape-step-seconds`` up to ``-u``;
**spike** holds ``--shape-step-users``, jumps to ``-u`` for ``--shape-spike-seconds`` and
comes back; **ramp** steps up until the endpoint saturates: output tokens/s grows less than
5% over a step, errors pass 20%, or TTFT p95 passes ``--saturation-ttft-ms``. The shape
ends the test by itself. See ``harness.locust.shapes`` for the schedules.
"""

import logging
from typing import Any

from locust import LoadTestShape, events

from harness.errors import ConfigError
from harness.locust.shapes import SHAPE_NAMES, Observation, Shape
from harness.locust.user import plugin_of

log = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def _options(parser: Any, **_: Any) -> None:
    parser.add_argument("--shape", choices=SHAPE_NAMES, default="step",
                        help="load shape: step, spike or ramp (to saturation)")  # fmt: skip
    parser.add_argument("--shape-step-users", default="10",
                        help="users added per step; the spike's base level")  # fmt: skip
    parser.add_argument("--shape-step-seconds", default="10",
                        help="seconds per step; before and after the spike")  # fmt: skip
    parser.add_argument("--shape-spike-seconds", default="10", help="seconds at the spike")
    parser.add_argument("--saturation-ttft-ms", default="",
                        help="ramp: saturated once TTFT p95 passes this (ms)")  # fmt: skip


def _shape(options: Any) -> Shape:
    def number(name: str, kind: type[int] | type[float]) -> Any:
        value = str(getattr(options, name, "") or "").strip()
        try:
            return kind(value) if value else None
        except ValueError as exc:
            raise ConfigError(name.replace("_", "-"), f"not a number: {value!r}") from exc

    ttft_ms = number("saturation_ttft_ms", float)
    return Shape(
        name=options.shape,
        users=number("num_users", int) or 1,
        spawn_rate=number("spawn_rate", float) or 1.0,
        step_users=number("shape_step_users", int) or 10,
        step_s=number("shape_step_seconds", float) or 10.0,
        spike_s=number("shape_spike_seconds", float) or 10.0,
        ttft_p95_s=ttft_ms / 1000 if ttft_ms else None,
    )


def _observe(runner: Any) -> Observation:
    """What the last 10 s of streams say about the load, from the plugin's live figures
    (the records themselves; on a master, those of every worker)."""
    return plugin_of(runner.environment).board.recent().observation()


class LLMLoadShape(LoadTestShape):
    """The shape ``--shape`` names, with ``-u`` as its top and ``-r`` as its spawn rate."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self.plan: Shape | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self.plan = None

    def tick(self) -> tuple[int, float] | None:
        if self.runner is None:  # locust sets it before the first tick
            raise RuntimeError("locust ticked the shape before handing it its runner")
        try:
            if self.plan is None:
                self.plan = _shape(self.runner.environment.parsed_options)
                log.info("sse-harness: %s shape up to %d users", self.plan.name, self.plan.users)
            tick = self.plan.tick(self.get_run_time(), _observe(self.runner))
        except ConfigError as exc:
            log.error("sse-harness: %s; stopping", exc)
            return None
        if tick is None and self.plan.saturated_at is not None:
            log.info("sse-harness: saturated at %d users (levels: %s)", self.plan.saturated_at,
                     self.plan.levels)  # fmt: skip
        return tick
