"""A run's levels: a sweep (one segment per level) or a search for the highest rate that
meets the SLO, and what they came to.

A sweep stops early once the target is saturated: a level whose output tokens/s is
less than 5% above the best level before it, or whose error rate passes 20%.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from harness.load.config import RunConfig
from harness.load.schedule import ClosedLoop, OpenLoop
from harness.run.result import RunResult

__all__ = [
    "RateSearch",
    "Sweep",
    "abandons",
    "levels_figures",
    "saturated",
    "search_rates",
    "segments_of",
]

SATURATION_GAIN = 0.05
SATURATION_ERROR_RATE = 0.2


@dataclass(frozen=True, slots=True)
class Sweep:
    """One segment per level of ``name`` (concurrency, rate or disconnect-rate)."""

    name: str
    levels: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class RateSearch:
    """Find the highest open-loop rate whose segment still meets every SLO.

    A rate passes when at least ``share`` of its requests met every ``--slo`` target and
    its error rate is at most ``max_error_rate``. The search doubles (or halves) from the
    starting rate until it has a passing and a failing rate, then bisects between them,
    for at most ``probes`` segments or until they are within 5% of each other.
    """

    start_rate: float
    probes: int = 12
    share: float = 0.95
    max_error_rate: float = 0.01

    def passes(self, summary: dict[str, Any]) -> bool:
        goodput = summary.get("goodput") or {}
        return (
            summary["requests"] > 0
            and summary["error_rate"] <= self.max_error_rate
            and goodput.get("share", 0.0) >= self.share
        )


def search_rates(
    config: RunConfig, search: RateSearch, segments: list[dict[str, Any]]
) -> Iterator[tuple[str, RunConfig]]:
    """The segments of a rate search; each probe's verdict is read from ``segments``,
    where the caller appends the summary of the segment it just ran."""
    good: float | None = None
    bad: float | None = None
    rate = search.start_rate
    for _ in range(search.probes):
        yield f"rate={rate:.4g}", _at_rate(config, rate)
        segment = segments[-1]
        segment["rate"] = rate  # the label is rounded; the probe's own rate is kept here
        segment["passed"] = search.passes(segment["summary"])
        if segment["passed"]:
            good = rate
        else:
            bad = rate
        if good is not None and bad is not None:
            if (bad - good) / bad < 0.05:
                return
            rate = (good + bad) / 2
        else:
            rate = rate * 2 if bad is None else rate / 2


def _at_rate(config: RunConfig, rate: float) -> RunConfig:
    """``config`` as an open loop at ``rate`` (keeping its arrival process, if it has one)."""
    base = config.profile if isinstance(config.profile, OpenLoop) else OpenLoop(rate=rate)
    return replace(config, profile=replace(base, rate=rate))


def segments_of(config: RunConfig, sweep: Sweep | None) -> Iterator[tuple[str, RunConfig]]:
    """The run's segments, labelled: ``config`` alone, or one per level of ``sweep``."""
    if sweep is None:
        yield "", config
        return
    for level in sweep.levels:
        if sweep.name == "concurrency":
            ramp = config.profile.ramp_up_s if isinstance(config.profile, ClosedLoop) else 1.0
            segment = replace(config, profile=ClosedLoop(concurrency=int(level), ramp_up_s=ramp))
            label = f"concurrency={int(level)}"
        elif sweep.name == "rate":
            segment = _at_rate(config, level)
            label = f"rate={level:g}"
        else:
            segment = replace(config, disconnect_rate=level)
            label = f"disconnect-rate={level:g}"
        yield label, segment


def saturated(segments: list[dict[str, Any]], sweep: Sweep | None) -> bool:
    """Whether a sweep's last level shows the target saturated (it stops there)."""
    if sweep is None or sweep.name == "disconnect-rate" or len(segments) < 2:
        return False
    last = segments[-1]["summary"]
    best_before = max(s["summary"]["output_tokens_per_s"] for s in segments[:-1])
    return last["error_rate"] > SATURATION_ERROR_RATE or last[
        "output_tokens_per_s"
    ] < best_before * (1 + SATURATION_GAIN)


def abandons(config: RunConfig, sweep: Sweep | None) -> bool:
    """Whether the run abandons streams (``--disconnect-rate``, or a sweep of it)."""
    if sweep is not None and sweep.name == "disconnect-rate":
        return any(level > 0 for level in sweep.levels)
    return config.disconnect_rate > 0


def levels_figures(
    result: RunResult, *, sweep: Sweep | None, search: RateSearch | None
) -> dict[str, Any]:
    """A sweep's or a rate search's levels, and what they came to."""
    levels: dict[str, Any] = {"segments": result.segments or None}
    if sweep is not None:
        levels["sweep"] = {
            "name": sweep.name,
            "levels": list(sweep.levels),
            "ran": [segment["segment"] for segment in result.segments],
            "stopped": _stop_reason(result),
        }
    if search is not None:
        passed = [s for s in result.segments if s.get("passed")]
        best = max(passed, key=lambda s: s["rate"]) if passed else None
        levels["max_rate"] = {
            "rate": best["rate"] if best else None,
            "requests_per_s": best["summary"]["requests_per_s"] if best else None,
            "probes": len(result.segments),
            "start_rate": search.start_rate,
            "rates": [segment["rate"] for segment in result.segments],
            "stopped": _stop_reason(result),
            "rule": f">= {search.share:.0%} of requests meet every SLO, errors <= "
            f"{search.max_error_rate:.0%}",
        }
    return levels


def _stop_reason(result: RunResult) -> str:
    """Why a sweep or search ran the levels it did."""
    if result.interrupted:
        return "interrupted"
    if result.gave_up is not None:
        return result.gave_up
    if result.segments and result.segments[-1].get("saturated"):
        return "saturated: throughput gained under 5%, or errors passed 20%"
    return "every level ran"
