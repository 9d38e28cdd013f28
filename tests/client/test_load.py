"""Load profiles: bounded, evenly ramped, seeded arrivals that follow their distribution."""

from __future__ import annotations

import itertools
import math

import pytest

from harness.errors import ConfigError
from harness.load.schedule import Bounds, ClosedLoop, OpenLoop, Trace, parse_sweep


def test_a_profile_without_bounds_is_refused() -> None:
    with pytest.raises(ConfigError, match="bounded"):
        Bounds()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"requests": 0}, "requests"), ({"duration_s": 0}, "duration"),
     ({"requests": 5, "warmup_s": -1}, "warmup")],
)  # fmt: skip
def test_bad_bounds_name_their_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Bounds(**kwargs)
    assert caught.value.field == field


def test_closed_loop_users_start_evenly_over_the_ramp_up() -> None:
    assert ClosedLoop(concurrency=4, ramp_up_s=1.0).user_start_offsets_ns() == [
        0, 250_000_000, 500_000_000, 750_000_000,
    ]  # fmt: skip
    assert ClosedLoop(concurrency=3, ramp_up_s=0).user_start_offsets_ns() == [0, 0, 0]


def test_constant_arrivals_are_evenly_spaced() -> None:
    offsets = list(itertools.islice(OpenLoop(rate=4).offsets_ns(), 5))
    assert offsets == [0, 250_000_000, 500_000_000, 750_000_000, 1_000_000_000]


def test_poisson_arrivals_are_seeded() -> None:
    a = list(itertools.islice(OpenLoop(rate=10, arrival="poisson", seed=3).offsets_ns(), 50))
    b = list(itertools.islice(OpenLoop(rate=10, arrival="poisson", seed=3).offsets_ns(), 50))
    c = list(itertools.islice(OpenLoop(rate=10, arrival="poisson", seed=4).offsets_ns(), 50))
    assert a == b
    assert a != c


def _gaps_s(profile: OpenLoop, n: int) -> list[float]:
    offsets = list(itertools.islice(profile.offsets_ns(), n + 1))
    return [(b - a) / 1e9 for a, b in itertools.pairwise(offsets)]


def test_poisson_gaps_pass_a_kolmogorov_smirnov_test_for_the_exponential() -> None:
    rate = 20.0
    gaps = sorted(_gaps_s(OpenLoop(rate=rate, arrival="poisson", seed=11), 4000))
    n = len(gaps)
    statistic = max(
        max((i + 1) / n - (1 - math.exp(-rate * g)), (1 - math.exp(-rate * g)) - i / n)
        for i, g in enumerate(gaps)
    )
    assert statistic < 1.36 / math.sqrt(n)  # the 5% critical value


def test_gamma_burstiness_changes_the_spread_not_the_rate() -> None:
    bursty = _gaps_s(OpenLoop(rate=10, arrival="gamma", burstiness=0.25, seed=1), 20000)
    regular = _gaps_s(OpenLoop(rate=10, arrival="gamma", burstiness=4, seed=1), 20000)
    for gaps in (bursty, regular):
        assert sum(gaps) / len(gaps) == pytest.approx(0.1, rel=0.05)

    def cv(gaps: list[float]) -> float:
        mean = sum(gaps) / len(gaps)
        return math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) / mean

    assert cv(bursty) == pytest.approx(2.0, rel=0.1)  # 1 / sqrt(shape)
    assert cv(regular) == pytest.approx(0.5, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"rate": 0}, "rate"), ({"rate": 1, "arrival": "uniform"}, "arrival"),
     ({"rate": 1, "burstiness": 0}, "burstiness"), ({"concurrency": 0}, "concurrency")],
)  # fmt: skip
def test_bad_profiles_name_their_field(kwargs: dict, field: str) -> None:
    cls = ClosedLoop if "concurrency" in kwargs else OpenLoop
    with pytest.raises(ConfigError) as caught:
        cls(**kwargs)
    assert caught.value.field == field


def test_trace_replays_offsets_from_the_first_entry_in_order() -> None:
    trace = Trace.from_lines([
        '{"offset_s": 2.5, "prompt": "b", "output_tokens": 5}',
        '{"timestamp": 1.5, "input_length": 100, "output_length": 20}',
        "",
        '{"offset_ms": 4000}',
    ])  # fmt: skip
    assert list(trace.offsets_ns()) == [0, 1_000_000_000, 2_500_000_000]
    assert trace.entries[0].prompt_tokens == 100
    assert trace.entries[1].prompt == "b"


def test_a_bad_trace_line_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        Trace.from_lines(['{"offset_s": 1}', "not json"], source="t.jsonl")
    assert caught.value.field == "t.jsonl:2"


def test_sweeps_parse_and_refuse_nonsense() -> None:
    assert parse_sweep("concurrency=1,8,32") == ("concurrency", [1.0, 8.0, 32.0])
    assert parse_sweep("rate=0.5, 2") == ("rate", [0.5, 2.0])
    for bad in ("concurrency=0,2", "speed=1", "rate=", "rate=a", "concurrency=1.5"):
        with pytest.raises(ConfigError):
            parse_sweep(bad)
