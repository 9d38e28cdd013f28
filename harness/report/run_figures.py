"""Which figures a run's page shows, drawn from its records, summary and per-second rows,
each with the caption a reader needs beside it (the machine's timing error under the
figures it affects)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.frames import meets_slo, requests_frame, time_series, tokens_frame
from harness.load.health import LOOP_LAG_P99_MS
from harness.record import Outcome, RequestRecord
from harness.report import figures, timelines
from harness.report.labels import client_line, measurement_note

__all__ = ["figures_html", "lifelines", "outcomes_by_second"]

_LATENCY_OUTCOMES = (Outcome.OK.value, Outcome.CUT.value)


def _figure(svg: str | None, caption: str | None = None, *, wide: bool = False) -> str:
    if not svg:
        return ""
    said = f'<figcaption class="note">{html.escape(caption)}</figcaption>' if caption else ""
    opening = '<figure class="wide">' if wide else "<figure>"
    return f"{opening}{svg}{said}</figure>"


def outcomes_by_second(
    frame: pd.DataFrame, origin_ns: int
) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """Requests that ended in each second, by how they ended: the seconds, label ->
    counts (``ok`` first, then error kinds, cut, abandoned), and which labels are errors.
    A request that never ended counts at its send."""
    end_ns = frame["t_end_ns"].astype("Int64").fillna(frame["t_sent_ns"].astype("Int64"))
    second = ((end_ns - origin_ns) // 1_000_000_000).astype(int)
    label = frame["outcome"].where(frame["outcome"] != Outcome.ERROR.value, frame["error_kind"])
    label = label.fillna("error")
    index = pd.RangeIndex(0, max(int(second.max()), 0) + 1)
    counts = pd.crosstab(second, label).reindex(index, fill_value=0)
    errors = sorted(
        set(frame.loc[frame["outcome"] == Outcome.ERROR.value, "error_kind"].fillna("error"))
    )
    order = [c for c in ("ok",) if c in counts] + errors
    order += [c for c in (Outcome.CUT.value, Outcome.ABANDONED.value) if c in counts]
    ended = {c: counts[c].to_numpy(dtype=float) for c in order}
    return index.to_numpy(dtype=float), ended, errors


def lifelines(
    records: Sequence[RequestRecord], origin_ns: int, slo: Mapping[str, float] | None
) -> list[timelines.Lifeline]:
    """Each request's timeline, in seconds into the run, judged against ``slo``."""
    frame = requests_frame(records)
    met = meets_slo(frame, slo).to_numpy() if slo else None
    lines = []
    for i, r in enumerate(records):
        if r.outcome is Outcome.OK:
            verdict = "ok" if met is None else "met" if met[i] else "missed"
        else:
            verdict = r.outcome.value
        s = lambda ns: None if ns is None else (ns - origin_ns) / 1e9  # noqa: E731
        lines.append(
            timelines.Lifeline(
                due_s=s(r.t_scheduled_ns),
                sent_s=(r.t_sent_ns - origin_ns) / 1e9,
                first_token_s=s(r.t_first_token_ns),
                end_s=s(r.t_end_ns),
                verdict=verdict,
                token_s=tuple((t - origin_ns) / 1e9 for t in r.token_times_ns),
            )
        )
    return lines


def _slo(summary: Mapping[str, Any]) -> dict[str, float] | None:
    goodput = summary.get("goodput") or {}
    slo = goodput.get("slo") or (summary.get("config") or {}).get("slo")
    return dict(slo) if isinstance(slo, Mapping) and slo else None


def figures_html(
    summary: Mapping[str, Any],
    records: Sequence[RequestRecord],
    series: pd.DataFrame | None = None,
) -> str:
    """The run's figures as a grid of captioned ``<figure>`` blocks.

    Args:
        summary: the run's summary (for segments, SLOs and the measurement error).
        records: every record of the run.
        series: the run's per-second rows (``timeseries.csv``); None computes them from
            the records (without the client's health, which only the run itself saw).
    """
    frame = requests_frame(records)
    if frame.empty:
        return "<p>No requests were made.</p>"
    latency = frame[frame["outcome"].isin(_LATENCY_OUTCOMES)]
    ids = set(latency["request_id"])
    groups: dict[str, np.ndarray] = {}
    if summary.get("segments"):
        by_segment = dict(iter(latency.groupby("segment")))
        groups = {
            str(s["segment"]): by_segment[s["segment"]]["ttft_s"].dropna().to_numpy()
            for s in summary["segments"]
            if s["segment"] in by_segment
        }
    if not groups:
        groups = {"": latency["ttft_s"].dropna().to_numpy()}
    tokens = tokens_frame(records)
    itl = tokens[tokens["request_id"].isin(ids)]["itl_s"].dropna().to_numpy()
    origin = int(frame["t_sent_ns"].min())
    ok = frame["outcome"] == Outcome.OK.value
    ttft = frame["ttft_s"].where(frame["outcome"].isin(_LATENCY_OUTCOMES))
    if series is None:
        series = time_series(records, origin_ns=origin)
    timing = measurement_note(summary)
    second, ended, errors = outcomes_by_second(frame, origin)
    drawn = [
        _figure(figures.ttft_cdf(groups), timing),
        _figure(figures.itl_histogram(itl), timing),
        _figure(
            figures.latency_over_time(
                ((frame["t_sent_ns"] - origin) / 1e9).to_numpy(dtype=float),
                ttft.to_numpy(dtype=float, na_value=np.nan),
                frame["e2e_s"].where(ok).to_numpy(dtype=float, na_value=np.nan),
            ),
            timing,
        ),
        _figure(
            figures.throughput_over_time(
                series["second"].to_numpy(dtype=float),
                series["tokens_per_s"].to_numpy(dtype=float),
                series["in_flight"].to_numpy(dtype=float),
            )
        ),
        _figure(timelines.outcomes_over_time(second, ended, errors=errors)),
        _figure(_client_health(series), _client_caption(summary)),
    ]
    slo = _slo(summary)
    judged = (
        f"streams coloured by whether they met the SLOs ({_slo_text(slo)})"
        if slo
        else ("no SLO given (--slo): streams coloured by outcome")
    )
    timeline = _figure(
        timelines.request_timeline(lifelines(records, origin, slo)),
        f"Each line is one request, in the order it was due; {judged}. {timing}",
        wide=True,
    )
    return f'<div class="figs">{"".join(drawn)}</div>{timeline}'


def _slo_text(slo: Mapping[str, float]) -> str:
    return ", ".join(f"{name} ≤ {limit * 1000:g} ms" for name, limit in slo.items())


def _client_health(series: pd.DataFrame) -> str | None:
    if "loop_lag_max_ms" not in series or "cpu_percent" not in series:
        return None
    return timelines.client_health(
        series["second"].to_numpy(dtype=float),
        pd.to_numeric(series["loop_lag_max_ms"], errors="coerce").to_numpy(dtype=float),
        pd.to_numeric(series["cpu_percent"], errors="coerce").to_numpy(dtype=float),
        bound_ms=LOOP_LAG_P99_MS,
    )


def _client_caption(summary: Mapping[str, Any]) -> str:
    line = client_line(summary)
    return f"The client watched itself: {line}." if line else "The client did not watch itself."
