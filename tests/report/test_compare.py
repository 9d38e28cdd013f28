"""Baselines: noise-aware comparison of two runs, on a real run and on made-up samples.

The runs compared are one real run and copies of it with a known change (``runs``): two
real runs on a busy machine differ by what else the machine did, which the comparison
would rightly report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.compare import (
    IMPROVEMENT,
    NO_CHANGE,
    REGRESSION,
    TOO_FEW,
    WORSE_WITHIN,
    RunSample,
    compare_runs,
    compare_samples,
    load_sample,
    render_comparison,
)
from harness.cli.compare_command import parse_share
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip


def verdicts(base: Path, current: Path) -> dict[str, str]:
    return {d.metric: d.verdict for d in compare_runs(base, current).deltas}


@pytest.mark.slow
def test_a_20_percent_ttft_regression_of_a_run_is_detected(runs: Callable[[str], Path]) -> None:
    comparison = compare_runs(runs("base"), runs("slow"))
    found = {d.metric: d for d in comparison.deltas}
    assert found["ttft.p50"].verdict == REGRESSION, found["ttft.p50"]
    assert found["ttft.p50"].change == pytest.approx(1.2, abs=0.01)
    assert found["ttft.p50"].low > 1.0  # the whole interval lies above no change
    assert {d.metric for d in comparison.regressions} <= {"ttft.p50", "e2e.p50"}
    assert found["itl.p50"].verdict != REGRESSION
    result = cli("compare", str(runs("base")), str(runs("slow")))
    assert result.returncode == 1, result.stderr
    assert "| ttft.p50 |" in result.stdout
    assert "**regression**" in result.stdout
    assert "REGRESSION beyond the 10%" in result.stdout
    # a tolerance wider than the change lets it through
    lenient = cli("compare", str(runs("base")), str(runs("slow")), "--tolerance", "30%")
    assert lenient.returncode == 0


@pytest.mark.slow
def test_a_run_and_one_with_the_noise_of_a_second_run_stay_quiet(
    runs: Callable[[str], Path],
) -> None:
    comparison = compare_runs(runs("base"), runs("again"))
    assert comparison.regressions == ()
    judged = {d.metric: d for d in comparison.deltas if d.verdict != TOO_FEW}
    assert set(judged) >= {"ttft.p50", "itl.p50", "itl.p90", "tpot.p50", "e2e.p50", "error_rate"}
    assert judged["ttft.p50"].change == pytest.approx(1.0, abs=0.1)
    result = cli("compare", str(runs("base")), str(runs("again")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no significant regression beyond the 10%" in result.stdout


@pytest.mark.slow
def test_values_are_the_runs_own_figures(runs: Callable[[str], Path]) -> None:
    base = runs("base")
    summary = json.loads((base / "summary.json").read_text())
    found = {d.metric: d for d in compare_runs(base, base).deltas}
    assert found["ttft.p50"].base == pytest.approx(summary["ttft_s"]["p50"])
    assert found["itl.p90"].base == pytest.approx(summary["itl_s"]["p90"])
    assert found["e2e.p90"].current == pytest.approx(summary["e2e_s"]["p90"])
    assert found["output_tokens_per_s"].base == pytest.approx(summary["output_tokens_per_s"])
    assert all(d.verdict in (NO_CHANGE, TOO_FEW) for d in found.values())


@pytest.mark.slow
def test_the_bootstrap_is_seeded(runs: Callable[[str], Path]) -> None:
    base, slow = load_sample(runs("base")), load_sample(runs("slow"))
    first = render_comparison(compare_samples(base, slow, seed=3))
    assert render_comparison(compare_samples(base, slow, seed=3)) == first


def sample(
    ttft_s: np.ndarray, *, itl_s: np.ndarray | None = None, per_second: np.ndarray | None = None,
    failed: np.ndarray | None = None,
) -> RunSample:  # fmt: skip
    singles = [np.array([v]) for v in ttft_s]
    gaps = [itl_s] if itl_s is not None else [np.array([0.01, 0.01])] * len(ttft_s)
    seconds = per_second if per_second is not None else np.array([])
    return RunSample(
        latency_s={"ttft": singles, "itl": gaps, "tpot": singles, "e2e": singles},
        per_second={"output_tokens_per_s": seconds, "requests_per_s": seconds},
        throughput={"output_tokens_per_s": float(seconds.mean()) if len(seconds) else 0.0,
                    "requests_per_s": float(seconds.mean()) if len(seconds) else 0.0},
        failed=failed if failed is not None else np.zeros(len(ttft_s), dtype=bool),
    )  # fmt: skip


def test_noise_larger_than_the_change_is_not_a_regression() -> None:
    rng = np.random.default_rng(1)
    base = sample(rng.lognormal(np.log(0.1), 0.8, 40))
    current = sample(rng.lognormal(np.log(0.1), 0.8, 40) * 1.15)
    found = {d.metric: d for d in compare_samples(base, current).deltas}
    assert found["ttft.p50"].verdict != REGRESSION  # 15% slower, but the spread hides it
    assert found["ttft.p50"].low < 1 < found["ttft.p50"].high


def test_tails_with_too_few_values_beyond_them_are_not_judged() -> None:
    values = np.linspace(0.1, 0.2, 120)
    found = {d.metric: d for d in compare_samples(sample(values), sample(values * 3)).deltas}
    assert found["ttft.p50"].verdict == REGRESSION
    assert found["ttft.p90"].verdict == REGRESSION  # 12 values beyond p90
    assert found["ttft.p95"].verdict == TOO_FEW  # 6 values beyond p95
    hundred = np.linspace(0.1, 0.2, 100)  # exactly 10 beyond p90: judged
    at_edge = {d.metric: d for d in compare_samples(sample(hundred), sample(hundred * 3)).deltas}
    assert at_edge["ttft.p90"].verdict == REGRESSION
    assert found["ttft.p99"].verdict == TOO_FEW
    few = {d.metric: d for d in compare_samples(sample(values[:8]), sample(values[:8])).deltas}
    assert few["ttft.p50"].verdict == TOO_FEW


def test_small_significant_changes_stay_within_tolerance() -> None:
    values = np.linspace(0.1, 0.11, 200)
    found = {d.metric: d for d in compare_samples(sample(values), sample(values * 1.05)).deltas}
    assert found["ttft.p50"].verdict == WORSE_WITHIN
    faster = {d.metric: d for d in compare_samples(sample(values), sample(values * 0.5)).deltas}
    assert faster["ttft.p50"].verdict == IMPROVEMENT


def test_throughput_falling_is_the_regression() -> None:
    values = np.linspace(0.1, 0.2, 60)
    steady = np.array([1000.0, 1010, 990, 1005, 995, 1000, 1002, 998, 1001, 999, 1003, 997])
    base = sample(values, per_second=steady)
    found = {
        d.metric: d for d in compare_samples(base, sample(values, per_second=steady * 0.7)).deltas
    }
    assert found["output_tokens_per_s"].verdict == REGRESSION
    assert found["output_tokens_per_s"].change == pytest.approx(0.7)
    rising = {
        d.metric: d for d in compare_samples(base, sample(values, per_second=steady * 1.3)).deltas
    }
    assert rising["output_tokens_per_s"].verdict == IMPROVEMENT


def test_error_rate_rising_beyond_its_tolerance_is_a_regression() -> None:
    values = np.linspace(0.1, 0.2, 200)
    clean = np.zeros(200, dtype=bool)
    failing = np.arange(200) % 10 == 0  # 10% errors
    comparison = compare_samples(sample(values, failed=clean), sample(values, failed=failing))
    found = {d.metric: d for d in comparison.deltas}
    assert found["error_rate"].verdict == REGRESSION
    assert found["error_rate"].change == pytest.approx(0.1)
    lenient = compare_samples(sample(values, failed=clean), sample(values, failed=failing),
                              error_tolerance=0.2)  # fmt: skip
    assert {d.metric: d.verdict for d in lenient.deltas}["error_rate"] == WORSE_WITHIN


def test_options_are_checked() -> None:
    assert parse_share("10%", "tolerance") == pytest.approx(0.1)
    assert parse_share("0.25", "tolerance") == 0.25
    for bad in ("ten", "150%", "2"):
        with pytest.raises(ConfigError):
            parse_share(bad, "tolerance")
    values = np.linspace(0.1, 0.2, 20)
    with pytest.raises(ConfigError):
        compare_samples(sample(values), sample(values), confidence=1.5)


def test_a_folder_without_a_run_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("compare", str(tmp_path), str(tmp_path))
    assert result.returncode == 2
    assert "not a run folder" in result.stderr
