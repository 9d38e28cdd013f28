"""The HTML report's figures: matplotlib, drawn off-screen, returned as inline SVG text.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, so no GUI backend
and no global figure registry) and saved as SVG with a fixed hash salt and no date, so
the same run gives the same report byte for byte. Text stays text (``svg.fonttype``
``none``); nothing in the SVG refers to anything outside it. Each function returns the
``<svg>`` element without the XML prolog, or None when there is nothing to draw.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec

import matplotlib
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the rc names, for the type checker only

__all__ = [
    "MAX_POINTS",
    "SweepPoint",
    "itl_histogram",
    "latency_over_time",
    "server_panel",
    "sweep_curve",
    "throughput_over_time",
    "ttft_cdf",
]

#: Scatter plots show at most this many points (evenly thinned beyond it).
MAX_POINTS = 4000
_CDF_POINTS = 1000
_SIZE = (7.2, 3.1)
_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.size": 9,
    "font.family": "DejaVu Sans",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    "legend.fontsize": 8,
    "svg.image_inline": True,
}
_COLORS = ("#1f6fb4", "#e0711b", "#2f9e44", "#c2255c", "#6741d9", "#868e96")

P = ParamSpec("P")


def _svg(name: str) -> Callable[[Callable[P, Figure | None]], Callable[P, str | None]]:
    """Draw a figure under the house style and return it as deterministic SVG text."""

    def decorate(draw: Callable[P, Figure | None]) -> Callable[P, str | None]:
        @wraps(draw)
        def render(*args: P.args, **kwargs: P.kwargs) -> str | None:
            with matplotlib.rc_context({**_STYLE, "svg.hashsalt": f"sse-harness-{name}"}):
                figure = draw(*args, **kwargs)
                if figure is None:
                    return None
                buffer = io.StringIO()
                figure.savefig(
                    buffer,
                    format="svg",
                    bbox_inches="tight",
                    metadata={"Date": None, "Creator": "sse-harness"},
                )
            text = buffer.getvalue()
            return text[text.index("<svg") :]

        return render

    return decorate


def _thin(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` items, evenly spread, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


@_svg("ttft-cdf")
def ttft_cdf(series: Mapping[str, np.ndarray]) -> Figure | None:
    """The share of requests with a TTFT at or below each value, one line per group.

    Args:
        series: label (a segment, or ``""`` for the whole run) -> TTFT values in seconds.
    """
    series = {label: np.sort(np.asarray(v, dtype=float)) for label, v in series.items() if len(v)}
    if not series:
        return None
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    for i, (label, values) in enumerate(series.items()):
        share = np.arange(1, len(values) + 1) / len(values)
        keep = _thin(len(values), _CDF_POINTS)
        ax.step(
            values[keep] * 1000,
            share[keep],
            where="post",
            color=_COLORS[i % len(_COLORS)],
            label=label or f"{len(values)} requests",
        )
    for q in (0.5, 0.95, 0.99):
        ax.axhline(q, color="#868e96", linewidth=0.6, linestyle=":")
        ax.annotate(
            f"p{q * 100:g}",
            (1.0, q),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            color="#868e96",
            va="center",
        )
    ax.set(
        title="TTFT distribution",
        xlabel="time to first token (ms)",
        ylabel="share of requests",
        ylim=(0, 1.02),
    )
    ax.legend(loc="lower right")
    return figure


@_svg("itl-histogram")
def itl_histogram(itl_s: np.ndarray) -> Figure | None:
    """Inter-token gaps as a histogram up to their p99.9, with p50 and p99 marked."""
    values = np.asarray(itl_s, dtype=float)
    values = values[np.isfinite(values)] * 1000
    if not len(values):
        return None
    p50, p99, top = np.quantile(values, [0.5, 0.99, 0.999])
    upper = max(top * 1.05, p99 * 1.05, 1e-3)
    lower = min(float(values.min()), upper * 0.95)
    beyond = int((values > upper).sum())
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    ax.hist(values, bins=60, range=(lower, upper), color=_COLORS[0], alpha=0.85)
    ax.axvline(p50, color=_COLORS[1], linewidth=1.2, label=f"p50 {p50:.2f} ms")
    ax.axvline(p99, color=_COLORS[3], linewidth=1.2, label=f"p99 {p99:.2f} ms")
    note = f" ({beyond} gaps above {upper:.1f} ms not shown)" if beyond else ""
    ax.set(
        title=f"Inter-token latency{note}", xlabel="gap between token events (ms)", ylabel="gaps"
    )
    ax.legend(loc="upper right")
    return figure


@_svg("latency-over-time")
def latency_over_time(t_s: np.ndarray, ttft_s: np.ndarray, e2e_s: np.ndarray) -> Figure | None:
    """TTFT and E2E of each request against when it was sent (seconds into the run).

    ``ttft_s`` and ``e2e_s`` line up with ``t_s``; NaN marks a value a request lacks.
    """
    t = np.asarray(t_s, dtype=float)
    measured = np.isfinite(np.asarray(ttft_s, dtype=float)) | np.isfinite(np.asarray(e2e_s, float))
    if not measured.any():
        return None
    keep = _thin(len(t))
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    for values, label, color in ((e2e_s, "E2E", _COLORS[1]), (ttft_s, "TTFT", _COLORS[0])):
        v = np.asarray(values, dtype=float)[keep] * 1000
        ax.scatter(t[keep], v, s=6, color=color, alpha=0.6, linewidths=0, label=label)
    thinned = f" (every {len(t) / len(keep):.0f}th request)" if len(keep) < len(t) else ""
    ax.set(
        title=f"Latency over time{thinned}",
        xlabel="seconds into the run (request sent)",
        ylabel="ms",
    )
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", markerscale=2)
    return figure


@_svg("throughput-over-time")
def throughput_over_time(
    second: np.ndarray, tokens_per_s: np.ndarray, in_flight: np.ndarray
) -> Figure | None:
    """Output token events per second (bars) and requests in flight (a line)."""
    s = np.asarray(second, dtype=float)
    if not len(s):
        return None
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    ax.bar(
        s,
        tokens_per_s,
        width=1.0,
        align="edge",
        color=_COLORS[0],
        alpha=0.7,
        label="token events/s",
    )
    ax.set(
        title="Throughput and concurrency over time",
        xlabel="seconds into the run",
        ylabel="token events per second",
    )
    right = ax.twinx()
    right.step(s, in_flight, where="post", color=_COLORS[1], linewidth=1.4, label="in flight")
    right.set_ylabel("requests in flight")
    right.set_ylim(bottom=0)
    right.grid(False)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left")
    return figure


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One segment of a sweep: its label, throughput and latency (seconds)."""

    label: str
    tokens_per_s: float
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    e2e_p50_s: float | None


@_svg("sweep-curve")
def sweep_curve(points: Sequence[SweepPoint], knee: int | None, knee_note: str) -> Figure | None:
    """Latency against throughput, one point per segment, the saturation knee marked.

    Args:
        points: the segments in the order they ran.
        knee: the index in ``points`` of the knee, or None when there is none.
        knee_note: what the knee means (printed under the figure's title).
    """
    if not points:
        return None
    order = sorted(range(len(points)), key=lambda i: points[i].tokens_per_s)
    x = np.array([points[i].tokens_per_s for i in order])
    figure = Figure(figsize=(_SIZE[0], _SIZE[1] + 0.6))
    ax = figure.subplots()
    lines = (
        ("ttft_p50_s", "TTFT p50", _COLORS[0]),
        ("ttft_p99_s", "TTFT p99", _COLORS[3]),
        ("e2e_p50_s", "E2E p50", _COLORS[1]),
    )
    for field, label, color in lines:
        y = np.array([getattr(points[i], field) or np.nan for i in order], dtype=float) * 1000
        ax.plot(x, y, marker="o", markersize=4, color=color, label=label)
    for rank, i in enumerate(order):  # labels alternate above and below, to keep apart
        top = points[i].e2e_p50_s or points[i].ttft_p99_s or 0.0
        ax.annotate(
            points[i].label,
            (points[i].tokens_per_s, top * 1000),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, 6 if rank % 2 == 0 else -12),
            color="#495057",
        )
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
    figure.text(0.5, -0.02, knee_note, ha="center", va="top", fontsize=8, color="#495057")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


@_svg("server-panel")
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
    figure = Figure(figsize=(7.2, 3.1))
    left, right = figure.subplots(1, 2)
    second = np.asarray(client.get("second", ()), dtype=float)
    if len(second):
        left.step(second, client["in_flight"], where="post", color=_COLORS[0],
                  label="client: in flight")  # fmt: skip
    if "running" in server:
        t, running = server["running"]
        left.step(t, running, where="post", color=_COLORS[1], label="server: running")
        if "waiting" in server and len(server["waiting"][0]) == len(t):
            total = np.asarray(running) + np.asarray(server["waiting"][1])
            left.step(t, total, where="post", color=_COLORS[2], linestyle="--",
                      label="server: running + waiting")  # fmt: skip
    left.set(title="Requests", xlabel="seconds into the run", ylabel="requests")
    left.set_ylim(bottom=0)
    left.legend(loc="lower center")
    if len(second):
        right.step(second, client["tokens_per_s"], where="post", color=_COLORS[0],
                   label="client: token events/s")  # fmt: skip
    if "generation_tokens_per_s" in server:
        t, rate = server["generation_tokens_per_s"]
        right.step(t, rate, where="pre", color=_COLORS[1], label="server: tokens/s")
    right.set(title="Tokens per second", xlabel="seconds into the run")
    right.set_ylim(bottom=0)
    right.legend(loc="lower center")
    return figure
