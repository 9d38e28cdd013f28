"""The server's own figures from scrapes: vocabulary, histogram quantiles with their
bound, gauges and rates over the window, client minus server."""

from __future__ import annotations

import math
from bisect import bisect_left

import pytest
from hypothesis import given

from harness.analysis.server_figures import (
    client_vs_server,
    histogram_quantile,
    server_figures,
    server_series,
)
from harness.analysis.server_vocabulary import recognise, vocabulary
from harness.results import ServerScrape
from harness.servers.gauge import GaugeSelector
from harness.servers.scrape import parse_samples
from tests.apps.metrics_app import vllm_text
from tests.strategies import histogram_edges, observations

S = 1_000_000_000


def cumulative(edges: list[float], values: list[float]) -> list[tuple[float, float]]:
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect_left(edges, v)] += 1  # le: a value on an edge is in its bucket
    out, total = [], 0
    for le, n in zip([*edges, math.inf], counts, strict=True):
        total += n
        out.append((le, float(total)))
    return out


@given(histogram_edges, observations)
def test_a_quantile_is_within_its_bound_of_the_true_order_statistic(
    edges: list[float], values: list[float]
) -> None:
    buckets = cumulative(edges, values)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99):
        value, bound = histogram_quantile(q, buckets)  # type: ignore[misc]
        truth = ordered[max(math.ceil(q * len(ordered)) - 1, 0)]
        if bound is None:  # the +Inf bucket: the truth is above the last edge
            assert truth > edges[-1]
            assert value == edges[-1]
        else:
            assert abs(value - truth) <= bound * (1 + 1e-9) + 1e-12


def test_an_empty_histogram_has_no_quantile() -> None:
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


def test_interpolation_places_the_rank_linearly_inside_its_bucket() -> None:
    buckets = [(0.1, 0.0), (0.2, 10.0), (math.inf, 10.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx((0.15, 0.1))


def scrape(t_s: float, text: str, url: str = "http://127.0.0.1:1/metrics") -> ServerScrape:
    return ServerScrape(t_ns=int(t_s * S), url=url, samples=parse_samples(text))


def test_the_known_servers_are_recognised_by_their_names() -> None:
    assert recognise(["vllm:num_requests_running"]) == "vllm"
    assert recognise(["vllm:num_requests_running", "mock_tokens_sent_total"]) == "mock"
    assert recognise(["sglang:num_running_reqs"]) == "sglang"
    assert recognise(["tgi_queue_size"]) == "tgi"
    assert recognise(["app_streams"]) is None


def test_the_first_name_an_exposition_has_is_used() -> None:
    names = {n for n, _, _ in parse_samples(vllm_text(1))}
    found = vocabulary("vllm", names)
    assert found["kv_cache_usage"] == ("gauge_max", "vllm:gpu_cache_usage_perc")
    assert found["server_ttft_s"] == ("histogram", "vllm:time_to_first_token_seconds")
    assert "server_e2e_s" not in found  # the exposition has no such histogram


def test_a_vllm_exposition_gives_every_figure_over_the_window() -> None:
    scrapes = [scrape(t, vllm_text(n)) for n, t in ((1, 0.0), (2, 1.0), (3, 2.0), (5, 4.0))]
    block = server_figures(scrapes, start_ns=int(0.5 * S), end_ns=int(1.5 * S))
    assert block["recognised"] == "vllm"
    assert block["window_s"] == [-0.5, 1.5]  # the scrapes at 0 s and 2 s frame it
    assert block["running"] == {"min": 2.0, "max": 2.0, "mean": 2.0, "last": 2.0}
    assert block["kv_cache_usage"]["max"] == pytest.approx(0.03)
    assert block["generation_tokens_per_s"] == pytest.approx(400.0)  # 800 tokens in 2 s
    assert block["prefix_cache_hit_rate"] == pytest.approx(0.5)
    ttft = block["server_ttft_s"]
    assert ttft["count"] == 20  # reads 1 -> 3: 20 requests, not the 30 since the start
    assert ttft["mean"] == pytest.approx(0.05)
    assert 0.04 < ttft["p50"] <= 0.06
    assert ttft["bound_s"]["p50"] == pytest.approx(0.02)
    assert "bucket" in block["quantiles"]


def test_replicas_are_summed_and_their_histograms_merged() -> None:
    a, b = "http://127.0.0.1:1/metrics", "http://127.0.0.1:2/metrics"
    scrapes = [scrape(0, vllm_text(1), a), scrape(0.1, vllm_text(1), b),
               scrape(2, vllm_text(3), a), scrape(2.1, vllm_text(2), b)]  # fmt: skip
    block = server_figures(scrapes, start_ns=0, end_ns=2 * S)
    assert block["urls"] == [a, b]
    assert block["running"]["max"] == 4.0
    assert block["server_ttft_s"]["count"] == 30


def test_failed_scrapes_are_counted_and_the_first_one_told() -> None:
    scrapes = [ServerScrape(t_ns=0, url="http://127.0.0.1:1/metrics", error="timed out"),
               scrape(1, vllm_text(1)), scrape(2, vllm_text(2))]  # fmt: skip
    block = server_figures(scrapes, start_ns=S, end_ns=2 * S)
    assert (block["scrapes"], block["scrape_errors"]) == (2, 1)
    assert block["first_error"].endswith("timed out")
    assert block["server_ttft_s"]["count"] == 10


def test_a_counter_that_starts_again_is_read_from_zero() -> None:
    block = server_figures([scrape(0, vllm_text(5)), scrape(1, vllm_text(2))],
                           start_ns=0, end_ns=S)  # fmt: skip
    assert block["server_ttft_s"]["count"] == 20  # restarted: the end's own counts


def test_an_unknown_server_keeps_its_named_series() -> None:
    text = 'app_streams{route="chat"} 3\napp_streams{route="embed"} 1\n'
    later = 'app_streams{route="chat"} 5\napp_streams{route="embed"} 1\n'
    block = server_figures(
        [scrape(0, text), scrape(1, later)],
        start_ns=0,
        end_ns=S,
        series=[GaugeSelector.parse('app_streams{route="chat"}'), GaugeSelector("app_streams")],
    )
    assert block["recognised"] is None
    assert "running" not in block
    assert block["series"]['app_streams{route="chat"}'] == {
        "min": 3.0, "max": 5.0, "mean": 4.0, "last": 5.0}  # fmt: skip
    assert block["series"]["app_streams"]["max"] == 6.0


def test_the_series_over_time_has_a_row_per_scrape() -> None:
    rows = server_series([scrape(1, vllm_text(1)), scrape(2, vllm_text(2))], origin_ns=S)
    assert [r["t_s"] for r in rows] == [0.0, 1.0]
    assert rows[0]["running"] == 2.0
    assert "generation_tokens_per_s" not in rows[0]
    assert rows[1]["generation_tokens_per_s"] == pytest.approx(400.0)


def test_client_minus_server_in_ms_with_the_servers_bound() -> None:
    summary = {"ttft_s": {"p50": 0.105, "p99": 0.2}, "e2e_s": {"p50": 1.0}}
    server = {"server_ttft_s": {"p50": 0.1, "p99": 0.19, "bound_s": {"p50": 0.002, "p99": None}}}
    gaps = client_vs_server(summary, server)
    assert gaps is not None
    assert gaps["ttft_p50_ms"] == pytest.approx(5.0)
    assert gaps["ttft_p99_ms"] == pytest.approx(10.0)
    assert gaps["bound_ms"] == {"ttft_p50_ms": pytest.approx(2.0), "ttft_p99_ms": None}
    assert "e2e_p50_ms" not in gaps
    assert client_vs_server(summary, {}) is None
