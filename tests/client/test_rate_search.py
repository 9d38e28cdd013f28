"""The rate search of --find-max-rate: doubling, then bisection, bounded in probes."""

from __future__ import annotations

from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.schedule import Bounds, OpenLoop
from harness.run import RateSearch, search_rates


def probe_rates(capacity: float, search: RateSearch) -> list[float]:
    """Drive the search against a target that meets the SLO up to ``capacity``."""
    config = RunConfig(spec=RequestSpec(url="http://127.0.0.1:9"), profile=OpenLoop(rate=1),
                       bounds=Bounds(duration_s=1), slo={"ttft": 1.0})  # fmt: skip
    segments: list[dict] = []
    rates = []
    for _, segment in search_rates(config, search, segments):
        rate = segment.profile.rate
        rates.append(rate)
        good = rate <= capacity
        summary = {"requests": 10, "error_rate": 0.0, "goodput": {"share": 1.0 if good else 0.5}}
        segments.append({"segment": f"rate={rate}", "summary": summary})
    return rates


def test_doubles_until_it_fails_then_bisects_to_within_five_percent() -> None:
    rates = probe_rates(capacity=50, search=RateSearch(start_rate=4))
    assert rates[:5] == [4, 8, 16, 32, 64]
    assert 48 <= max(r for r in rates if r <= 50) <= 50
    assert len(rates) <= 12


def test_halves_when_the_start_rate_already_fails() -> None:
    rates = probe_rates(capacity=3, search=RateSearch(start_rate=20))
    assert rates[:3] == [20, 10, 5]
    assert max(r for r in rates if r <= 3) > 2.8


def test_the_number_of_probes_is_bounded() -> None:
    assert len(probe_rates(capacity=1e9, search=RateSearch(start_rate=1, probes=5))) == 5


def test_a_rate_passes_only_with_enough_good_requests_and_few_errors() -> None:
    search = RateSearch(start_rate=1)
    assert search.passes({"requests": 5, "error_rate": 0.0, "goodput": {"share": 0.96}})
    assert not search.passes({"requests": 5, "error_rate": 0.0, "goodput": {"share": 0.9}})
    assert not search.passes({"requests": 5, "error_rate": 0.05, "goodput": {"share": 1.0}})
    assert not search.passes({"requests": 0, "error_rate": 0.0, "goodput": {"share": 1.0}})
