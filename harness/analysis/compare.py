"""Baselines: two runs compared figure by figure, with a verdict that knows about noise.

A percentile of one run against the same percentile of another says little by itself:
two runs of the same server differ by chance. So each figure's change comes with a
bootstrap confidence interval, computed from the per-request values in each run's
``results.jsonl``:

* latency percentiles (TTFT, ITL, TPOT, E2E): the interval of the ratio current / base.
  Requests are resampled whole (a request's inter-token gaps stay together, since they
  share a connection and a server slot), each run on its own, with a seeded generator.
* throughput (output tokens/s, requests/s): the interval of the ratio of the per-second
  rates, applied to the runs' own figures.
* error rate: the interval of the difference of the two rates.

A change is a **regression** only when it is both significant (its interval lies wholly
on the worse side of no change) and larger than the tolerance (the ratio beyond 1 +
tolerance, or below 1 - tolerance for throughput; for the error rate, the difference
beyond ``error_tolerance``). A tail percentile is judged only when each run has at least
``MIN_TAIL`` values beyond it; otherwise the row says so and counts for nothing.

The interval covers the sampling noise inside each run. Drift between runs (a busier
machine during one of them) is not in it: compare runs made on the same quiet machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.frames import requests_frame, time_series, tokens_frame
from harness.analysis.summary import Window
from harness.errors import ConfigError
from harness.record import Outcome, RequestRecord
from harness.results import read_all_records, read_summary

__all__ = [
    "MIN_TAIL",
    "Comparison",
    "MetricDelta",
    "RunSample",
    "compare_runs",
    "compare_samples",
    "load_sample",
    "render_comparison",
]

#: Values a run must have beyond a percentile (and requests in all) for it to be judged.
MIN_TAIL = 10
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
_LATENCIES = ("ttft", "itl", "tpot", "e2e")

REGRESSION = "regression"
IMPROVEMENT = "improvement"
WORSE_WITHIN = "worse, within tolerance"
BETTER_WITHIN = "better, within tolerance"
NO_CHANGE = "no significant change"
TOO_FEW = "too few samples"


@dataclass(frozen=True, slots=True)
class RunSample:
    """The per-request values of one run that a comparison resamples.

    Attributes:
        latency_s: for ``ttft``, ``tpot``, ``e2e``: one array per request of one value;
            for ``itl``: one array of gaps per request.
        per_second: per-second rates over whole seconds of the window, keyed
            ``output_tokens_per_s`` and ``requests_per_s``.
        throughput: the run's own figures under those keys (from its summary).
        failed: one boolean per request that ended (True: an error).
        client_bound: why the run's client was its own bottleneck (``summary.json``'s
            ``client``), or None.
    """

    latency_s: dict[str, list[np.ndarray]]
    per_second: dict[str, np.ndarray]
    throughput: dict[str, float]
    failed: np.ndarray
    #: why the client itself was the run's bottleneck, when its summary says it was
    client_bound: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricDelta:
    """One figure in both runs.

    ``low`` and ``high`` bound the ratio current / base (for ``error_rate``: the
    difference current - base) at the comparison's confidence.
    """

    metric: str
    base: float | None
    current: float | None
    change: float | None
    low: float | None
    high: float | None
    higher_is_better: bool
    verdict: str
    samples: tuple[int, int]

    @property
    def regression(self) -> bool:
        return self.verdict == REGRESSION


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Every figure of both runs. ``refused`` says why no regression is called: a run
    whose client was its own bottleneck measured the client as much as the server."""

    deltas: tuple[MetricDelta, ...]
    tolerance: float
    error_tolerance: float
    confidence: float
    refused: str | None = None

    @property
    def regressions(self) -> tuple[MetricDelta, ...]:
        if self.refused is not None:
            return ()
        return tuple(d for d in self.deltas if d.regression)


def load_sample(run_dir: Path) -> RunSample:
    """The values of the run in ``run_dir`` (its ``results.jsonl`` and ``summary.json``).

    Raises:
        ConfigError: the folder holds no run.
    """
    try:
        summary = read_summary(run_dir).as_dict()
        records = read_all_records(run_dir / "results.jsonl")
    except (OSError, ValueError) as exc:
        raise ConfigError(str(run_dir), f"not a run folder: {exc}") from exc
    warmup_s = float((summary.get("config") or {}).get("warmup_s") or 0.0)
    return sample_records(records, warmup_s=warmup_s, summary=summary)


def sample_records(
    records: Sequence[RequestRecord], *, warmup_s: float = 0.0, summary: dict[str, Any]
) -> RunSample:
    """The values of ``records``, counted as the run's summary counts them (``metrics``)."""
    window = Window.around(records, warmup_s=warmup_s)
    frame = requests_frame(records)
    started = frame["t_scheduled_ns"].fillna(frame["t_sent_ns"])
    frame = frame[(started >= window.start_ns) & (started < window.end_ns)]
    latency = frame[frame["outcome"].isin((Outcome.OK.value, Outcome.CUT.value))]
    ok = frame[frame["outcome"] == Outcome.OK.value]
    ended = frame[frame["outcome"] != Outcome.ABANDONED.value]
    tokens = tokens_frame(records).dropna(subset=["itl_s"])
    tokens = tokens[tokens["request_id"].isin(set(latency["request_id"]))]
    gaps = [g.to_numpy(dtype=float) for _, g in tokens.groupby("request_id")["itl_s"]]

    def singles(column: pd.Series) -> list[np.ndarray]:
        return [np.array([v]) for v in column.dropna().astype(float)]

    series = time_series(records, origin_ns=int(frame["t_sent_ns"].min())) if len(frame) else None
    per_second: dict[str, np.ndarray] = {
        "output_tokens_per_s": np.array([]),
        "requests_per_s": np.array([]),
    }
    if series is not None and len(series) > 2:
        whole = series.iloc[int(np.ceil(warmup_s)) : -1]  # the last second is partial
        per_second = {
            "output_tokens_per_s": whole["tokens_per_s"].to_numpy(dtype=float),
            "requests_per_s": whole["completed"].to_numpy(dtype=float),
        }
    return RunSample(
        latency_s={
            "ttft": singles(latency["ttft_s"]),
            "itl": gaps,
            "tpot": singles(ok["tpot_s"]),
            "e2e": singles(ok["e2e_s"]),
        },
        per_second=per_second,
        throughput={k: float(summary.get(k) or 0.0) for k in per_second},
        failed=(ended["outcome"] == Outcome.ERROR.value).to_numpy(),
        client_bound=_bound(summary),
    )


def _bound(summary: dict[str, Any]) -> str | None:
    client = summary.get("client") or {}
    if not client.get("bound"):
        return None
    return "; ".join(client.get("reasons") or []) or "bound"


def _bootstrap(
    groups: Sequence[np.ndarray], qs: Sequence[float], rng: np.random.Generator, resamples: int
) -> np.ndarray:
    """``resamples`` x ``len(qs)`` percentiles of ``groups`` resampled whole."""
    lengths = np.array([len(g) for g in groups])
    flat = np.concatenate(groups)
    n = len(groups)
    out = np.empty((resamples, len(qs)))
    if (lengths == 1).all():
        chunk = max(1, 4_000_000 // n)
        for first in range(0, resamples, chunk):
            k = min(chunk, resamples - first)
            picked = flat[rng.integers(0, n, (k, n))]
            out[first : first + k] = np.quantile(picked, qs, axis=1).T
        return out
    starts = np.cumsum(lengths) - lengths
    for b in range(resamples):
        pick = rng.integers(0, n, n)
        sizes = lengths[pick]
        offsets = np.cumsum(sizes) - sizes
        index = np.repeat(starts[pick] - offsets, sizes) + np.arange(sizes.sum())
        out[b] = np.quantile(flat[index], qs)
    return out


def _judge(ratio: float, low: float, high: float, tolerance: float, higher_is_better: bool) -> str:
    """The verdict on a ratio current / base from its interval [low, high]."""
    if higher_is_better:  # mirror it, so that worse is above 1 as for latencies
        ratio, low, high = 2 - ratio, 2 - high, 2 - low
    return _verdict(ratio - 1, low - 1, high - 1, tolerance)


def _verdict(change: float, low: float, high: float, tolerance: float) -> str:
    """The verdict on a change (worse is positive) whose interval is [low, high]."""
    if low > 0:
        return REGRESSION if change > tolerance else WORSE_WITHIN
    if high < 0:
        return IMPROVEMENT if change < -tolerance else BETTER_WITHIN
    return NO_CHANGE


def compare_samples(
    base: RunSample,
    current: RunSample,
    *,
    tolerance: float = 0.10,
    error_tolerance: float = 0.01,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Every figure of ``current`` against ``base``, with its interval and verdict."""
    if not 0 < confidence < 1 or tolerance < 0 or error_tolerance < 0 or resamples < 100:
        raise ConfigError("compare", "confidence in (0, 1), tolerances >= 0, resamples >= 100")
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    deltas: list[MetricDelta] = []
    for family in _LATENCIES:
        groups = (base.latency_s[family], current.latency_s[family])
        values = [np.concatenate(g) if g else np.array([]) for g in groups]
        counts = (len(values[0]), len(values[1]))
        replicates = None
        if min(len(groups[0]), len(groups[1])) >= 2 * MIN_TAIL:
            total = max(counts)
            draws = min(resamples, max(200, 20_000_000 // max(total, 1)))
            qs = list(_QUANTILES.values())
            replicates = [_bootstrap(g, qs, rng, draws) for g in groups]
        for i, (name, q) in enumerate(_QUANTILES.items()):
            metric = f"{family}.{name}"
            b, c = (float(np.quantile(v, q)) if len(v) else None for v in values)
            tail = round(min(counts) * (1 - q), 6)  # samples beyond the quantile
            if replicates is None or tail < MIN_TAIL or not b or c is None:
                deltas.append(_unjudged(metric, b, c, counts, higher_is_better=False))
                continue
            ratios = replicates[1][:, i] / np.maximum(replicates[0][:, i], 1e-12)
            low, high = np.quantile(ratios, [alpha, 1 - alpha])
            deltas.append(
                MetricDelta(
                    metric=metric,
                    base=b,
                    current=c,
                    change=c / b,
                    low=float(low),
                    high=float(high),
                    higher_is_better=False,
                    verdict=_judge(c / b, low, high, tolerance, False),
                    samples=counts,
                )
            )
    for key in ("output_tokens_per_s", "requests_per_s"):
        deltas.append(_throughput(key, base, current, rng, resamples, alpha, tolerance))
    deltas.append(_error_rate(base.failed, current.failed, rng, resamples, alpha, error_tolerance))
    bound = [
        f"the {name} run's client was its own bottleneck ({why})"
        for name, why in (("base", base.client_bound), ("current", current.client_bound))
        if why
    ]
    return Comparison(
        deltas=tuple(deltas),
        tolerance=tolerance,
        error_tolerance=error_tolerance,
        confidence=confidence,
        refused="; ".join(bound) or None,
    )


def _unjudged(
    metric: str,
    b: float | None,
    c: float | None,
    counts: tuple[int, int],
    *,
    higher_is_better: bool,
) -> MetricDelta:
    return MetricDelta(
        metric=metric,
        base=b,
        current=c,
        change=c / b if b and c is not None else None,
        low=None,
        high=None,
        higher_is_better=higher_is_better,
        verdict=TOO_FEW,
        samples=counts,
    )


def _throughput(
    key: str,
    base: RunSample,
    current: RunSample,
    rng: np.random.Generator,
    resamples: int,
    alpha: float,
    tolerance: float,
) -> MetricDelta:
    b, c = base.throughput[key], current.throughput[key]
    seconds = (base.per_second[key], current.per_second[key])
    counts = (len(seconds[0]), len(seconds[1]))
    if min(counts) < MIN_TAIL or not b or not seconds[0].mean():
        return _unjudged(key, b, c, counts, higher_is_better=True)
    means = [s[rng.integers(0, len(s), (resamples, len(s)))].mean(axis=1) for s in seconds]
    point = seconds[1].mean() / seconds[0].mean()
    ratios = means[1] / np.maximum(means[0], 1e-12) * (c / b) / point  # centred on the runs' own
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    verdict = _judge(c / b, low, high, tolerance, True)
    return MetricDelta(
        metric=key,
        base=b,
        current=c,
        change=c / b,
        low=float(low),
        high=float(high),
        higher_is_better=True,
        verdict=verdict,
        samples=counts,
    )


def _error_rate(
    base: np.ndarray,
    current: np.ndarray,
    rng: np.random.Generator,
    resamples: int,
    alpha: float,
    tolerance: float,
) -> MetricDelta:
    counts = (len(base), len(current))
    if min(counts) < 2 * MIN_TAIL:
        rates = (base.mean() if len(base) else None, current.mean() if len(current) else None)
        return _unjudged("error_rate", *rates, counts, higher_is_better=False)
    b, c = float(base.mean()), float(current.mean())
    draws = [rng.binomial(n, p, resamples) / n for n, p in ((counts[0], b), (counts[1], c))]
    low, high = np.quantile(draws[1] - draws[0], [alpha, 1 - alpha])
    verdict = _verdict(c - b, low, high, tolerance)
    return MetricDelta(
        metric="error_rate",
        base=b,
        current=c,
        change=c - b,
        low=float(low),
        high=float(high),
        higher_is_better=False,
        verdict=verdict,
        samples=counts,
    )


def compare_runs(base_dir: Path, current_dir: Path, **options: Any) -> Comparison:
    """``compare_samples`` of two run folders.

    Raises:
        ConfigError: a folder holds no run.
    """
    return compare_samples(load_sample(base_dir), load_sample(current_dir), **options)


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "error_rate":
        return f"{value:.2%}"
    if metric.endswith("_per_s"):
        return f"{value:,.2f}"
    return f"{value * 1000:,.2f} ms"


def render_comparison(
    comparison: Comparison, *, base: str = "base", current: str = "current"
) -> str:
    """The comparison as a Markdown table with a closing verdict line."""
    level = f"{comparison.confidence:.0%}"
    base, current = (name.replace("|", "\\|") for name in (base, current))
    lines = [
        f"| metric | {base} | {current} | change | {level} interval | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for d in comparison.deltas:
        if d.metric == "error_rate":
            change = "-" if d.change is None else f"{d.change * 100:+.2f} pts"
            interval = (
                "-"
                if d.low is None or d.high is None
                else f"{d.low * 100:+.2f} .. {d.high * 100:+.2f} pts"
            )
        else:
            change = "-" if d.change is None else f"{(d.change - 1) * 100:+.1f}%"
            interval = (
                "-"
                if d.low is None or d.high is None
                else f"{(d.low - 1) * 100:+.1f}% .. {(d.high - 1) * 100:+.1f}%"
            )
        verdict = f"**{d.verdict}**" if d.regression else d.verdict
        lines.append(
            f"| {d.metric} | {_value(d.metric, d.base)} | {_value(d.metric, d.current)}"
            f" | {change} | {interval} | {verdict} |"
        )
    found = comparison.regressions
    tolerance = f"{comparison.tolerance:.0%} (error rate: {comparison.error_tolerance:.1%} points)"
    lines.append("")
    if comparison.refused is not None:
        lines.append(
            f"NO VERDICT: {comparison.refused}, so a change may be the client's, not the "
            "server's; rerun as its remedy says (summary.json's client.remedy)"
        )
    elif found:
        names = ", ".join(d.metric for d in found)
        lines.append(f"REGRESSION beyond the {tolerance} tolerance: {names}")
    else:
        lines.append(f"no significant regression beyond the {tolerance} tolerance")
    return "\n".join(lines) + "\n"
