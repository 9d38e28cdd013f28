"""Reading a server's gauge of running requests from Prometheus text."""

from __future__ import annotations

from harness.gauge import parse_gauge

TEXT = """# HELP vllm:num_requests_running Number of requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="a"} 3.0
vllm:num_requests_running{model_name="b"} 2.0
vllm:num_requests_running_total 99
mock_active_streams 7
"""


def test_samples_of_every_label_set_are_summed() -> None:
    assert parse_gauge(TEXT, "vllm:num_requests_running") == 5.0


def test_a_metric_is_matched_by_its_whole_name() -> None:
    assert parse_gauge(TEXT, "mock_active_streams") == 7.0
    assert parse_gauge(TEXT, "vllm:num_requests") is None
