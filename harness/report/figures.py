"""The HTML report's figures of a run's distributions and of a sweep: matplotlib, drawn
off-screen, returned as inline SVG text (see ``harness.report.style``).

Every figure keeps its legend and labels off the data: legends sit right of the axes,
labels that would overprint another are left out and counted, and a histogram shows the
bulk of its values with the ones beyond counted in a note. Each function returns the
``<svg>`` element, or None when there is nothing to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from harness.report.style import (
    COLORS,
    MAX_POINTS,
    NOTE_COLOR,
    QUALITATIVE_MAX,
    SIZE,
    legend_outside,
    new_figure,
    note_below,
    palette,
    svg_figure,
    thin,
)

__all__ = [
    "MAX_POINTS",
    "SweepPoint",
    "bulk_range",
    "itl_histogram",
    "latency_over_time",
    "server_panel",
    "sweep_curve",
    "throughput_over_time",
    "ttft_cdf",
]

_CDF_POINTS = 1000
#: How far past the quartiles (in interquartile ranges) a histogram's range reaches.
_FENCE_IQR = 3.0
#: Colour-bar ticks at most (a sweep's level labels, thinned beyond it).
_BAR_TICKS = 12


@svg_figure("ttft-cdf")
def ttft_cdf(series: Mapping[str, np.ndarray]) -> Figure | None:
    """The share of requests with a TTFT at or below each value, one line per group.

    A few groups get a legend right of the plot; many (a rate search's levels) are
    coloured along one colour map whose bar names the levels.

    Args:
        series: label (a segment, or ``""`` for the whole run) -> TTFT values in seconds.
    """
    series = {label: np.sort(np.asarray(v, dtype=float)) for label, v in series.items() if len(v)}
    if not series:
        return None
    figure = new_figure()
    ax = figure.subplots()
    colors = palette(len(series))
    for color, (label, values) in zip(colors, series.items(), strict=True):
        share = np.arange(1, len(values) + 1) / len(values)
        keep = thin(len(values), _CDF_POINTS)
        ax.step(
            values[keep] * 1000,
            share[keep],
            where="post",
            color=color,
            label=label or f"{len(values)} requests",
        )
    quantiles = (0.5, 0.9, 0.99)
    for q in quantiles:
        ax.axhline(q, color="#868e96", linewidth=0.6, linestyle=":")
    ax.set(
        title="TTFT distribution",
        xlabel="time to first token (ms)",
        ylabel="share of requests",
        ylim=(0, 1.02),
    )
    marks = ax.secondary_yaxis("right")
    marks.set_yticks(quantiles, [f"p{q * 100:g}" for q in quantiles], fontsize=7, color="#868e96")
    marks.tick_params(length=0)
    figure.canvas.draw()
    if len(series) <= QUALITATIVE_MAX:
        legend_outside(ax, beside=marks)  # type: ignore[arg-type]
    else:
        labels = list(series)
        n = len(labels)
        scale = ScalarMappable(BoundaryNorm(np.arange(n + 1) - 0.5, n), ListedColormap(colors))
        ticks = thin(n, _BAR_TICKS)
        bar = figure.colorbar(scale, ax=ax, ticks=ticks, pad=0.06, fraction=0.04, aspect=25)
        bar.ax.set_yticklabels([labels[i] for i in ticks], fontsize=7)
        bar.ax.tick_params(length=2)
        bar.set_label(f"{n} levels, in the order they ran", fontsize=8)
    return figure


def bulk_range(values: np.ndarray) -> tuple[float, float]:
    """The span of the bulk of ``values``: from p1 (or the lower fence) to p99 (or the
    upper fence, 3 interquartile ranges past the quartiles), whichever reaches further,
    never past the values themselves. One stray value does not stretch it."""
    p1, q1, q3, p99 = np.quantile(values, [0.01, 0.25, 0.75, 0.99])
    spread = max(q3 - q1, 0.05 * abs(float(np.median(values))), 1e-6)
    low = min(p1, max(float(values.min()), q1 - _FENCE_IQR * spread))
    high = max(p99, min(float(values.max()), q3 + _FENCE_IQR * spread))
    return float(low), float(high)


@svg_figure("itl-histogram")
def itl_histogram(itl_s: np.ndarray) -> Figure | None:
    """Inter-token gaps as a histogram over their bulk (``bulk_range``), p50 and p99
    marked, the gaps outside it counted in a note under the figure."""
    values = np.asarray(itl_s, dtype=float)
    values = values[np.isfinite(values)] * 1000
    if not len(values):
        return None
    p50, p99 = np.quantile(values, [0.5, 0.99])
    low, high = bulk_range(values)
    pad = max((high - low) * 0.03, 1e-3)
    lower, upper = low - pad, high + pad
    below, above = int((values < lower).sum()), int((values > upper).sum())
    figure = new_figure()
    ax = figure.subplots()
    ax.hist(values, bins=60, range=(lower, upper), color=COLORS[0], alpha=0.85, label="gaps")
    ax.axvline(p50, color=COLORS[1], linewidth=1.2, label=f"p50 {p50:.2f} ms")
    ax.axvline(p99, color=COLORS[4], linewidth=1.2, label=f"p99 {p99:.2f} ms")
    ax.set(title="Inter-token latency", xlabel="gap between token events (ms)", ylabel="gaps")
    ax.set_xlim(lower, upper)
    legend_outside(ax)
    outside = []
    if below:
        outside.append(f"{below:,} below {lower:.3g} ms (min {values.min():.3g} ms)")
    if above:
        outside.append(f"{above:,} above {upper:.3g} ms (max {values.max():.3g} ms)")
    if outside:
        figure.canvas.draw()
        note_below(ax, f"Not shown, of {len(values):,} gaps: " + "; ".join(outside) + ".")
    return figure


@svg_figure("latency-over-time")
def latency_over_time(t_s: np.ndarray, ttft_s: np.ndarray, e2e_s: np.ndarray) -> Figure | None:
    """TTFT and E2E of each request against when it was sent (seconds into the run).

    ``ttft_s`` and ``e2e_s`` line up with ``t_s``; NaN marks a value a request lacks.
    """
    t = np.asarray(t_s, dtype=float)
    measured = np.isfinite(np.asarray(ttft_s, dtype=float)) | np.isfinite(np.asarray(e2e_s, float))
    if not measured.any():
        return None
    keep = thin(len(t))
    figure = new_figure()
    ax = figure.subplots()
    for values, label, color in ((e2e_s, "E2E", COLORS[1]), (ttft_s, "TTFT", COLORS[0])):
        v = np.asarray(values, dtype=float)[keep] * 1000
        ax.scatter(t[keep], v, s=6, color=color, alpha=0.6, linewidths=0, label=label)
    thinned = f" (every {len(t) / len(keep):.0f}th request)" if len(keep) < len(t) else ""
    ax.set(
        title=f"Latency over time{thinned}",
        xlabel="seconds into the run (request sent)",
        ylabel="ms",
    )
    ax.set_ylim(bottom=0)
    legend_outside(ax, markerscale=2)
    return figure


@svg_figure("throughput-over-time")
def throughput_over_time(
    second: np.ndarray, tokens_per_s: np.ndarray, in_flight: np.ndarray
) -> Figure | None:
    """Output token events per second (bars) and requests in flight (a line)."""
    s = np.asarray(second, dtype=float)
    if not len(s):
        return None
    figure = new_figure()
    ax = figure.subplots()
    ax.bar(
        s,
        tokens_per_s,
        width=1.0,
        align="edge",
        color=COLORS[0],
        alpha=0.7,
        label="token events/s",
    )
    ax.set(
        title="Throughput and concurrency over time",
        xlabel="seconds into the run",
        ylabel="token events per second",
    )
    right = ax.twinx()
    right.step(s, in_flight, where="post", color=COLORS[1], linewidth=1.4, label="in flight")
    right.set_ylabel("requests in flight")
    right.set_ylim(bottom=0)
    right.grid(False)
    right.spines["right"].set_visible(True)
    figure.canvas.draw()
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    legend_outside(ax, handles, beside=right)
    return figure


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One segment of a sweep: its label, throughput and latency (seconds)."""

    label: str
    tokens_per_s: float
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    e2e_p50_s: float | None


#: Where a point's label may go, tried in turn: (dx, dy) in points, horizontal alignment.
_LABEL_PLACES = (
    ((4, 5), "left"),
    ((4, -11), "left"),
    ((-4, 5), "right"),
    ((-4, -11), "right"),
    ((0, 14), "center"),
    ((0, -20), "center"),
)


def _place_labels(ax: object, anchors: Sequence[tuple[str, float, float]]) -> int:
    """Label each anchor (text, x, y in data units) inside the axes where the label
    overprints no other label; returns how many found no such place and were left out."""
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    placed: list[Bbox] = []
    inside = ax.get_window_extent(renderer)
    left_out = 0
    for text, x, y in anchors:
        for offset, align in _LABEL_PLACES:
            label = ax.annotate(
                text,
                (x, y),
                xytext=offset,
                textcoords="offset points",
                fontsize=7,
                ha=align,
                color=NOTE_COLOR,
            )
            box = label.get_window_extent(renderer).padded(1.5)
            within = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0
            if within and box.y1 <= inside.y1 and not any(box.overlaps(o) for o in placed):
                placed.append(box)
                break
            label.remove()
        else:
            left_out += 1
    return left_out


@svg_figure("sweep-curve")
def sweep_curve(points: Sequence[SweepPoint], knee: int | None, knee_note: str) -> Figure | None:
    """Latency against throughput, one point per segment, the saturation knee marked.

    Each point is labelled with its segment where the label overprints no other; the
    labels left out are counted under the figure (the table beside it lists every level).

    Args:
        points: the segments in the order they ran.
        knee: the index in ``points`` of the knee, or None when there is none.
        knee_note: what the knee means (printed under the figure).
    """
    if not points:
        return None
    order = sorted(range(len(points)), key=lambda i: points[i].tokens_per_s)
    x = np.array([points[i].tokens_per_s for i in order])
    figure = new_figure((SIZE[0], SIZE[1] + 0.6))
    ax = figure.subplots()
    lines = (
        ("ttft_p50_s", "TTFT p50", COLORS[0]),
        ("ttft_p99_s", "TTFT p99", COLORS[4]),
        ("e2e_p50_s", "E2E p50", COLORS[1]),
    )
    for field, label, color in lines:
        y = np.array([getattr(points[i], field) or np.nan for i in order], dtype=float) * 1000
        ax.plot(x, y, marker="o", markersize=4, color=color, label=label)
    if knee is not None:
        k = points[knee]
        knee_ms = (k.ttft_p99_s or k.ttft_p50_s or 0.0) * 1000
        ax.scatter(
            [k.tokens_per_s],
            [knee_ms],
            s=220,
            facecolors="none",
            edgecolors="#c92a2a",
            linewidths=2,
            zorder=5,
            label=f"knee: {k.label}",
        )
        ax.axvline(k.tokens_per_s, color="#c92a2a", linewidth=0.8, linestyle="--")
    ax.set(xlabel="output tokens per second", ylabel="ms")
    ax.set_title("Latency against throughput")
    ax.margins(x=0.08, y=0.12)
    ax.set_ylim(bottom=0)
    legend_outside(ax)
    figure.canvas.draw()  # the limits are known: labels can be measured where they fall
    first = [knee] if knee is not None else []
    anchors = [
        (points[i].label, points[i].tokens_per_s, (_top(points[i])) * 1000)
        for i in first + [i for i in order if i != knee]
    ]
    left_out = _place_labels(ax, anchors)
    notes = [knee_note] if knee_note else []
    if left_out:
        notes.append(
            f"{left_out} of {len(points)} level labels left out where they would overprint"
            " another; the table lists every level."
        )
    if notes:
        note_below(ax, "\n".join(notes))
    return figure


def _top(point: SweepPoint) -> float:
    return point.e2e_p50_s or point.ttft_p99_s or point.ttft_p50_s or 0.0


@svg_figure("server-panel")
def server_panel(
    client: Mapping[str, np.ndarray], server: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> Figure | None:
    """The server's series over time beside the client's: requests in flight against the
    server's running and running + waiting, and token rates by each side.

    Args:
        client: ``second``, ``in_flight`` and ``tokens_per_s`` (the run's time series).
        server: series name (``running``, ``waiting``, ``generation_tokens_per_s``) ->
            (seconds into the run, values).
    """
    if not any(len(t) for t, _ in server.values()):
        return None
    figure = new_figure((SIZE[0], 2 * SIZE[1]))
    left, right = figure.subplots(2, 1, sharex=True)
    second = np.asarray(client.get("second", ()), dtype=float)
    if len(second):
        left.step(second, client["in_flight"], where="post", color=COLORS[0],
                  label="client: in flight")  # fmt: skip
    if "running" in server:
        t, running = server["running"]
        left.step(t, running, where="post", color=COLORS[1], label="server: running")
        if "waiting" in server and len(server["waiting"][0]) == len(t):
            total = np.asarray(running) + np.asarray(server["waiting"][1])
            left.step(t, total, where="post", color=COLORS[2], linestyle="--",
                      label="server: running + waiting")  # fmt: skip
    left.set(title="Requests", ylabel="requests")
    left.set_ylim(bottom=0)
    legend_outside(left)
    if len(second):
        right.step(second, client["tokens_per_s"], where="post", color=COLORS[0],
                   label="client: token events/s")  # fmt: skip
    if "generation_tokens_per_s" in server:
        t, rate = server["generation_tokens_per_s"]
        right.step(t, rate, where="pre", color=COLORS[1], label="server: tokens/s")
    right.set(title="Tokens per second", xlabel="seconds into the run")
    right.set_ylim(bottom=0)
    legend_outside(right)
    return figure
