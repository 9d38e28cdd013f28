"""A run's report quotes this machine's calibration for its transport and load, read from
the file ``calibrate`` saved; without a readable one it quotes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.calibration.calibrate import LevelResult, save_calibration
from harness.calibration.stored import calibration_path, load_calibration, measurement_error


def level(transport: str, concurrency: int, p99: float | None) -> LevelResult:
    return LevelResult(
        transport=transport,
        concurrency=concurrency,
        requests=concurrency,
        errors=0,
        events=concurrency * 10,
        lag_p50_ms=None if p99 is None else p99 / 4,
        lag_p99_ms=p99,
        lag_max_ms=p99,
        first_token_lag_p50_ms=None,
        first_token_lag_p99_ms=None,
        first_token_lag_max_ms=None,
        itl_error_p99_ms=None,
        cpu_us_per_event=None,
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_the_line_quotes_the_level_nearest_the_runs_concurrency(cache: Path) -> None:
    levels = [level("kernel", 10, 0.02), level("kernel", 500, 0.4), level("kernel", 2000, 9.0)]
    path = save_calibration([*levels, level("aiohttp", 500, 3.0)])
    assert path == calibration_path()
    assert path.is_relative_to(cache)
    assert measurement_error("kernel", 400) == (
        "kernel transport: p99 arrival lag 0.40 ms at 500 streams"
        " (calibrated; within 2 ms up to 500 streams)"
    )
    assert measurement_error("kernel", None) is not None  # an open loop: the first level
    assert "at 10 streams" in (measurement_error("kernel", None) or "")
    assert "3.00 ms" in (measurement_error("aiohttp", 1) or "")


def test_no_calibration_or_none_for_the_transport_quotes_nothing(cache: Path) -> None:
    assert load_calibration() is None
    assert measurement_error("kernel", 10) is None
    save_calibration([level("aiohttp", 10, 0.5)])
    assert measurement_error("kernel", 10) is None
    calibration_path().write_text("{not json")
    assert load_calibration() is None
    assert measurement_error("aiohttp", 10) is None
