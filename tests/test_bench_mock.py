"""The mock's capacity benchmark holds its streams and reads lateness from the mock's truth."""

from __future__ import annotations

import pytest

from harness.calibration.mock_bench import run_mock_bench

pytestmark = pytest.mark.slow  # a benchmark level against a mock process


def test_a_small_level_holds_every_stream_and_measures_its_tokens() -> None:
    plain, level = run_mock_bench([20], seconds=1.0, ramp_s=0.2, stop_after_failures=1)
    assert (plain.server, level.server) == ("plain", "mock")  # the yardstick first
    assert plain.streams == plain.held == 20
    assert 600 < plain.tokens_per_s < 1_400
    assert plain.lateness_p99_ms is not None
    assert level.streams == level.held == 20
    assert level.ended_early == 0
    # 20 streams at ITL 20 ms write about 1,000 tokens a second in the window
    assert 600 < level.tokens_per_s < 1_400
    assert level.lateness_p50_ms is not None
    assert level.lateness_p99_ms is not None
    assert level.lateness_p50_ms <= level.lateness_p99_ms
    assert level.mock_cpu_percent is not None
    assert level.mock_cpu_percent > 0
