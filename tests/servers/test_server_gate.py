"""Gating on the server's own figures: ``server.kv_cache_usage.max < 0.9`` and the like."""

from __future__ import annotations

import pytest

from harness.analysis.gate import check, parse_objectives, resolve_metric
from harness.errors import ConfigError

SUMMARY = {
    "server": {
        "kv_cache_usage": {"min": 0.1, "max": 0.95, "mean": 0.5, "last": 0.2},
        "server_ttft_s": {"p50": 0.02, "p99": 0.3, "bound_s": {"p50": 0.004, "p99": 0.05}},
        "generation_tokens_per_s": 1200.0,
        "series": {'app_streams{route="a.b"}': {"min": 0, "max": 3, "mean": 1.5, "last": 0}},
    },
    "client_vs_server": {"ttft_p50_ms": 12.0, "bound_ms": {"ttft_p50_ms": 4.0}},
}


def test_server_figures_are_judged_like_the_clients() -> None:
    verdict = check(SUMMARY, {"server.kv_cache_usage.max": "< 0.9",
                              "server.server_ttft_s.p99": "< 500 ms",
                              "server.generation_tokens_per_s": "> 1000",
                              "client_vs_server.ttft_p50_ms": "< 20 ms"})  # fmt: skip
    assert [r.passed for r in verdict.results] == [False, True, True, True]
    assert verdict.results[0].measured == pytest.approx(0.95)
    assert verdict.results[3].measured == pytest.approx(0.012)  # ms in the summary: seconds


def test_a_share_takes_percent_and_a_series_keeps_its_selector_whole() -> None:
    assert check(SUMMARY, {"server.kv_cache_usage.max": "< 96%"}).passed
    assert resolve_metric(SUMMARY, 'server.series.app_streams{route="a.b"}.max') == 3.0


def test_a_figure_the_server_lacks_fails_saying_so() -> None:
    verdict = check(SUMMARY, {"server.waiting.max": "< 5"})
    assert not verdict.passed
    assert "no such figure of the server" in verdict.results[0].detail
    assert resolve_metric({}, "server.kv_cache_usage.max") is None
    assert resolve_metric(SUMMARY, "server.kv_cache_usage") is None  # a block, not a figure


def test_an_slo_file_names_them_in_toml() -> None:
    objectives = parse_objectives('[slo]\n"server.kv_cache_usage.max" = "< 0.9"\n')
    assert str(objectives[0]) == "server.kv_cache_usage.max < 0.9"
    with pytest.raises(ConfigError, match="fits latencies only"):
        parse_objectives('[slo]\n"server.kv_cache_usage.max" = "< 9 ms"\n')
