"""Load shapes as pure schedules: step, spike and ramp to saturation."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.locust.shapes import Observation, Shape


def test_step_adds_users_each_step_and_holds_the_top_one_step() -> None:
    shape = Shape(name="step", users=25, step_users=10, step_s=5, spawn_rate=7)
    assert [shape.tick(t) for t in (0, 4.9, 5, 10, 14.9)] == [
        (10, 7), (10, 7), (20, 7), (25, 7), (25, 7),
    ]  # fmt: skip
    assert shape.tick(15) is None
    assert shape.duration_s() == 15


def test_spike_jumps_and_comes_back() -> None:
    shape = Shape(name="spike", users=100, step_users=5, step_s=10, spike_s=3)
    assert [shape.tick(t)[0] for t in (0, 9.9, 10, 12.9, 13, 22.9)] == [5, 5, 100, 100, 5, 5]
    assert shape.tick(23) is None


def test_ramp_stops_at_the_first_level_that_adds_no_throughput() -> None:
    shape = Shape(name="ramp", users=100, step_users=10, step_s=10)
    by_step = [500.0, 1000.0, 1400.0, 1420.0, 2000.0]  # tokens/s each level reached
    ticks = []
    for t in range(100):
        finished = t // 10 - 1  # the observation reflects the level that just ended
        observed = Observation(by_step[finished] if finished >= 0 else 0.0)
        if (tick := shape.tick(t, observed)) is None:
            break
        ticks.append(tick[0])
    assert shape.saturated_at == 40  # 1420 is less than 5% above 1400
    assert [lv["users"] for lv in shape.levels] == [10, 20, 30, 40]
    assert ticks == [10] * 10 + [20] * 10 + [30] * 10 + [40] * 10  # stopped once 40 was judged


def test_ramp_stops_when_errors_or_ttft_pass_their_bounds() -> None:
    errors = Shape(name="ramp", users=50, step_users=10, step_s=1)
    assert errors.tick(0.5, Observation(100)) == (10, 10.0)
    assert errors.tick(1.0, Observation(200, error_rate=0.5)) is None
    assert errors.saturated_at == 10
    slow = Shape(name="ramp", users=50, step_users=10, step_s=1, ttft_p95_s=0.5)
    assert slow.tick(1.0, Observation(200, ttft_p95_s=0.4)) == (20, 10.0)
    assert slow.tick(2.0, Observation(400, ttft_p95_s=0.9)) is None
    assert slow.saturated_at == 20


def test_ramp_without_observations_ends_at_its_ceiling() -> None:
    shape = Shape(name="ramp", users=20, step_users=10, step_s=1)
    assert shape.tick(1.5) == (20, 10.0)
    assert shape.tick(2.0) is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"name": "zigzag"}, "shape"), ({"users": 0}, "users"), ({"step_s": 0}, "step-s")],
)
def test_invalid_shapes_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        Shape(**{"name": "step", "users": 10, **changes})
    assert error.value.field == field
