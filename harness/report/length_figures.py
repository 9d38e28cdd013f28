"""The report's workload figures: the input and output lengths the server counted, and
TTFT against input length, where prefill shows (split by prompt-cache hit and miss when
the server reports cached tokens).

Lengths are the server's usage (``prompt_tokens``, ``output_tokens``) of the requests that
ended ``ok`` or ``cut``. A run gets the section when its input lengths vary or its server
reported cached tokens: one prompt sent over and over has nothing to show there.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.record import Outcome, RequestRecord
from harness.report.style import COLORS, SIZE, legend_outside, new_figure, svg_figure, thin

__all__ = ["length_histograms", "ttft_by_input_length", "workload_section"]

_MEASURED = (Outcome.OK, Outcome.CUT)


@svg_figure("length-histograms")
def length_histograms(prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> Figure | None:
    """Histograms of input (prompt) and output lengths in tokens, one above the other."""
    inputs = np.asarray(prompt_tokens, dtype=float)
    outputs = np.asarray(output_tokens, dtype=float)
    inputs, outputs = inputs[np.isfinite(inputs)], outputs[np.isfinite(outputs)]
    if not len(inputs) and not len(outputs):
        return None
    figure = new_figure((SIZE[0], 2 * SIZE[1]))
    left, right = figure.subplots(2, 1)
    for ax, values, label, color in (
        (left, inputs, "input (prompt) tokens", COLORS[0]),
        (right, outputs, "output tokens", COLORS[2]),
    ):
        if len(values):
            ax.hist(values, bins=min(40, max(len(np.unique(values)), 1)), color=color, alpha=0.85)
            median = float(np.median(values))
            ax.axvline(median, color=COLORS[1], linewidth=1.2, label=f"p50 {median:g}")
            legend_outside(ax)
        ax.set(title=f"{label} ({len(values)} requests)", xlabel="tokens", ylabel="requests")
    figure.subplots_adjust(hspace=0.5)
    return figure


@svg_figure("ttft-by-input")
def ttft_by_input_length(
    prompt_tokens: np.ndarray, ttft_s: np.ndarray, cached_tokens: np.ndarray | None = None
) -> Figure | None:
    """TTFT of each request against its input length; cache hits and misses apart when
    ``cached_tokens`` (NaN where unknown) says which."""
    x = np.asarray(prompt_tokens, dtype=float)
    y = np.asarray(ttft_s, dtype=float) * 1000
    known = np.isfinite(x) & np.isfinite(y)
    if not known.any():
        return None
    figure = new_figure()
    ax = figure.subplots()
    cached = None if cached_tokens is None else np.asarray(cached_tokens, dtype=float)
    if cached is not None and np.isfinite(cached[known]).any():
        groups = [
            ("cache hit", known & (cached > 0), COLORS[2]),
            ("cache miss", known & (cached == 0), COLORS[3]),
        ]
    else:
        groups = [("requests", known, COLORS[0])]
    for label, mask, color in groups:
        index = np.flatnonzero(mask)
        if not len(index):
            continue
        keep = index[thin(len(index))]
        ax.scatter(x[keep], y[keep], s=6, alpha=0.6, color=color, label=f"{label} ({len(index)})")
    ax.set(title="TTFT against input length", xlabel="input (prompt) tokens", ylabel="TTFT (ms)")
    legend_outside(ax, markerscale=2)
    return figure


def workload_section(records: Sequence[RequestRecord]) -> str:
    """The report's "Workload" section: the two figures, or "" when the input lengths
    the server reported do not vary and it reported no cached tokens."""
    measured = [r for r in records if r.outcome in _MEASURED and r.prompt_tokens is not None]
    lengths = {r.prompt_tokens for r in measured}
    if len(lengths) < 2 and not any(r.cached_tokens for r in measured):
        return ""

    def column(values: Sequence[float | int | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    prompt = column([r.prompt_tokens for r in measured])
    ttft = column([r.ttft_s for r in measured])
    cached = column([r.cached_tokens for r in measured])
    drawn = [
        length_histograms(prompt, column([r.output_tokens for r in measured])),
        ttft_by_input_length(prompt, ttft, cached),
    ]
    figures = "".join(f"<figure>{svg}</figure>" for svg in drawn if svg)
    note = html.escape("Lengths as the server's usage counted them.")
    return f'<h2>Workload</h2><p>{note}</p><div class="figs">{figures}</div>'
