"""The HTML report's figures of a run over time: what ended each second (errors by kind),
each request's own timeline, and the client's health (see ``harness.report.style``).

Each function returns the ``<svg>`` element, or None when there is nothing to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.report.style import (
    COLORS,
    legend_outside,
    new_figure,
    note_below,
    palette,
    svg_figure,
    thin,
)

__all__ = [
    "TIMELINE_REQUESTS",
    "Lifeline",
    "client_health",
    "outcomes_over_time",
    "request_timeline",
]

#: The request timeline shows at most this many requests (evenly sampled beyond it).
TIMELINE_REQUESTS = 200
#: Token marks drawn on the timeline at most (every request's tokens thinned alike).
_TOKEN_MARKS = 4000
#: Token arrivals are marked on timelines of at most this many requests, when their
#: typical gap spans this many pixels at least (closer, the marks would merge).
_MARKED_REQUESTS = 50
_MARK_GAP_PX = 3.0
_OK = "#2b8a3e"
_MISSED = "#e69f00"
_FAILED = "#c92a2a"
_OTHER = "#868e96"
_WAITING = "#ced4da"
_FIRST_TOKEN = "#74c0fc"


@svg_figure("outcomes-over-time")
def outcomes_over_time(
    second: np.ndarray, ended: Mapping[str, np.ndarray], *, errors: Sequence[str]
) -> Figure | None:
    """Requests that ended in each second of the run, stacked by how they ended: each
    error kind at the bottom (in warm colours, read from the axis), then ok, cut,
    abandoned.

    Args:
        second: the seconds of the run (the bars' left edges).
        ended: label -> requests that ended that way in each second (aligned with
            ``second``); ``"ok"`` first, then whatever else occurred.
        errors: the labels in ``ended`` that are error kinds.
    """
    s = np.asarray(second, dtype=float)
    if not len(s) or not ended:
        return None
    figure = new_figure()
    ax = figure.subplots()
    base = np.zeros(len(s))
    error_colors = iter(palette(max(len(errors), 1))[::-1] if len(errors) > 4 else _WARM)
    total_errors = 0
    stacked = [label for label in ended if label in errors]
    stacked += [label for label in ended if label not in errors]
    for label in stacked:
        counts = ended[label]
        values = np.asarray(counts, dtype=float)
        if label in errors:
            color, name = next(error_colors), f"error: {label}"
            total_errors += int(values.sum())
        else:
            color, name = (_OK if label == "ok" else _OTHER), label
        ax.bar(s, values, bottom=base, width=1.0, align="edge", color=color, label=name)
        base += values
    title = "Requests ending per second, errors by kind"
    ax.set(title=title, xlabel="seconds into the run (request ended)", ylabel="requests")
    legend_outside(ax, ax.get_legend_handles_labels()[0][::-1])  # in the stack's order
    if not total_errors:
        figure.canvas.draw()
        note_below(ax, "No request failed.")
    return figure


_WARM = ("#c92a2a", "#e8590c", "#f59f00", "#862e9c")


@dataclass(frozen=True, slots=True)
class Lifeline:
    """One request on the timeline, times in seconds into the run (None: never reached).

    ``verdict`` is ``met`` or ``missed`` (the SLOs), ``ok`` (no SLO given), ``error``,
    ``cut`` or ``abandoned``.
    """

    due_s: float | None
    sent_s: float
    first_token_s: float | None
    end_s: float | None
    verdict: str
    token_s: tuple[float, ...] = ()


_VERDICTS = {
    "met": ("met every SLO", _OK),
    "missed": ("missed an SLO", _MISSED),
    "ok": ("ok", _OK),
    "error": ("error", _FAILED),
    "cut": ("cut by the client", COLORS[3]),
    "abandoned": ("abandoned", _OTHER),
}


@svg_figure("request-timeline")
def request_timeline(lines: Sequence[Lifeline]) -> Figure | None:
    """One line per request, in the order they were due: waiting to be sent (due to
    sent), waiting for the first token, then streaming until the end, coloured by how it
    ended (met the SLOs or not, failed); small ticks mark its tokens. Queueing, bursts
    of serialization and stalls show as long grey, blue or gapped stretches.
    """
    if not lines:
        return None
    ordered = sorted(lines, key=lambda r: r.due_s if r.due_s is not None else r.sent_s)
    keep = thin(len(ordered), TIMELINE_REQUESTS)
    shown = [ordered[i] for i in keep]
    n = len(shown)
    height = min(max(2.4, 1.2 + n * 0.02), 5.0)
    figure = new_figure((11.0, height))
    ax = figure.subplots()
    waiting: list[list[tuple[float, float]]] = []
    first: list[list[tuple[float, float]]] = []
    streams: list[list[tuple[float, float]]] = []
    stream_colors: list[str] = []
    failed_x: list[float] = []
    failed_y: list[float] = []
    tokens_x: list[float] = []
    tokens_y: list[float] = []
    every = max(1, sum(len(r.token_s) for r in shown) // _TOKEN_MARKS + 1)
    for y, r in enumerate(shown):
        if r.due_s is not None and r.sent_s > r.due_s:
            waiting.append([(r.due_s, y), (r.sent_s, y)])
        end = r.end_s if r.end_s is not None else r.sent_s
        start = r.first_token_s if r.first_token_s is not None else end
        first.append([(r.sent_s, y), (start, y)])
        if r.first_token_s is not None:
            streams.append([(start, y), (end, y)])
            stream_colors.append(_VERDICTS[r.verdict][1])
        elif r.verdict == "error":  # failed before any token: a cross where it ended
            failed_x.append(end)
            failed_y.append(y)
        tokens_x += r.token_s[::every]
        tokens_y += [y] * len(r.token_s[::every])
    width = 1.6 if n <= 60 else 1.0
    ax.add_collection(LineCollection(waiting, colors=_WAITING, linewidths=width))
    ax.add_collection(LineCollection(first, colors=_FIRST_TOKEN, linewidths=width))
    ax.add_collection(LineCollection(streams, colors=stream_colors, linewidths=width))
    if failed_x:
        ax.scatter(failed_x, failed_y, marker="x", s=16, linewidths=1.0, color=_FAILED, zorder=4)
    ax.autoscale_view()
    marked = n <= _MARKED_REQUESTS and _gaps_visible(ax, shown)
    if marked:
        ax.scatter(tokens_x, tokens_y, marker="|", s=7, linewidths=0.5, color="#212529", zorder=3)
    ax.set_ylim(n - 0.5, -0.5)
    sampled = f", {n} of {len(ordered)} shown (evenly sampled)" if n < len(ordered) else ""
    ax.set(
        title=f"Request timeline{sampled}",
        xlabel="seconds into the run",
        ylabel="request (in order due)",
    )
    ax.grid(axis="y", visible=False)
    present = {r.verdict for r in shown}
    handles = [
        Line2D([], [], color=_WAITING, linewidth=3, label="due → sent (queued)"),
        Line2D([], [], color=_FIRST_TOKEN, linewidth=3, label="sent → first token"),
        *(
            Line2D([], [], color=color, linewidth=3, label=f"streaming: {name}")
            for verdict, (name, color) in _VERDICTS.items()
            if verdict in present
        ),
    ]
    if failed_x:
        handles.append(
            Line2D([], [], color=_FAILED, marker="x", linestyle="", label="failed before a token")
        )
    if marked:
        handles.append(
            Line2D([], [], color="#212529", marker="|", linestyle="", label="token arrival")
        )
    legend_outside(ax, handles)
    return figure


def _gaps_visible(ax: Axes, shown: Sequence[Lifeline]) -> bool:
    """Whether the typical gap between tokens spans ``_MARK_GAP_PX`` on the drawn axes."""
    spans = [np.diff(r.token_s) for r in shown if len(r.token_s) > 1]
    if not spans:
        return False
    gaps = np.concatenate(spans)
    left, right = ax.get_xlim()
    px_per_s = ax.get_window_extent().width / max(right - left, 1e-9)
    return float(np.median(gaps)) * px_per_s >= _MARK_GAP_PX


@svg_figure("client-health")
def client_health(
    second: np.ndarray, lag_max_ms: np.ndarray, cpu_percent: np.ndarray, *, bound_ms: float
) -> Figure | None:
    """The client's own health each second: its event loop's worst lag (against the
    lag bound the figures allow) and its busiest process's CPU share. A lag above the
    bound means the client, not the server, may have delayed that second's arrivals."""
    s = np.asarray(second, dtype=float)
    lag = np.asarray(lag_max_ms, dtype=float)
    cpu = np.asarray(cpu_percent, dtype=float)
    if not len(s) or not (np.isfinite(lag).any() or np.isfinite(cpu).any()):
        return None
    figure = new_figure()
    ax = figure.subplots()
    edges = np.append(s, s[-1] + 1.0)  # each value spans its whole second, the last too
    ax.stairs(lag, edges, baseline=None, color=COLORS[0], linewidth=1.3, label="worst loop lag")
    ax.axhline(
        bound_ms,
        color=_FAILED,
        linewidth=0.9,
        linestyle="--",
        label=f"bound on p99 lag ({bound_ms:g} ms)",
    )
    ax.set(
        title="Client health over time",
        xlabel="seconds into the run",
        ylabel="event-loop lag (ms)",
    )
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    right.stairs(
        cpu, edges, baseline=None, color=COLORS[1], linewidth=1.1, label="CPU, busiest process"
    )
    right.set_ylabel("CPU (% of a core)")
    right.set_ylim(0, max(100.0, float(np.nanmax(cpu)) * 1.05 if np.isfinite(cpu).any() else 100))
    right.grid(False)
    right.spines["right"].set_visible(True)
    figure.canvas.draw()
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    legend_outside(ax, handles, beside=right)
    over = int((lag > bound_ms).sum())
    if over:
        note_below(
            ax,
            f"The worst lag of a second passed {bound_ms:g} ms in {over} of {len(s)} seconds;"
            " the client counts as bound when its p99 lag while busy does.",
        )
    return figure
