"""The report's figures, measured as drawn: legends off the data, labels that never
overprint, colours that stay apart, histograms over the bulk with the rest counted."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from harness.report import figures, length_figures, timelines
from harness.report.style import drawn, palette

RNG = np.random.default_rng(7)


def _renderer(figure: Figure) -> RendererAgg:
    return figure.canvas.get_renderer()  # type: ignore[attr-defined]


def _box(figure: Figure, artist: object) -> Bbox:
    return artist.get_window_extent(_renderer(figure))  # type: ignore[attr-defined]


def _main_axes(figure: Figure) -> Axes:
    return figure.axes[0]


def _texts(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.texts]


def assert_legend_off_the_data(figure: Figure) -> None:
    ax = _main_axes(figure)
    legend = ax.get_legend()
    assert legend is not None
    legend_box = _box(figure, legend)
    for axes in figure.axes:  # the plot, a twin axis, a colour bar: none under the legend
        assert not legend_box.overlaps(axes.get_window_extent(_renderer(figure)))
        for label in [*axes.yaxis.get_ticklabels(), axes.yaxis.label]:
            if label.get_visible() and label.get_text():
                assert not legend_box.overlaps(_box(figure, label)), label.get_text()


def _cdf_groups(n: int) -> dict[str, np.ndarray]:
    return {f"rate={i + 1}": RNG.gamma(4.0, 0.02 * (1 + i / 4), 120) for i in range(n)}


def test_the_ttft_legend_sits_beside_the_plot() -> None:
    figure = drawn(figures.ttft_cdf, _cdf_groups(3))
    assert figure is not None
    assert_legend_off_the_data(figure)


def test_many_ttft_levels_get_distinct_colours_and_a_colour_bar() -> None:
    figure = drawn(figures.ttft_cdf, _cdf_groups(28))
    assert figure is not None
    ax = _main_axes(figure)
    colours = [to_hex(line.get_color()) for line in ax.get_lines() if line.get_label() != ""]
    steps = colours[:28]
    assert len(set(steps)) == 28  # rate=1 and rate=24 no longer share a colour
    assert ax.get_legend() is None  # 28 entries would hide the plot: a colour bar names them
    bar = figure.axes[-1]
    ticks = [t.get_text() for t in bar.get_yticklabels()]
    assert ticks[0] == "rate=1"
    assert ticks[-1] == "rate=28"
    boxes = [_box(figure, t) for t in bar.get_yticklabels()]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    assert not _box(figure, bar).overlaps(ax.get_window_extent(_renderer(figure)))


@pytest.mark.parametrize("n", [1, 5, 7, 8, 12, 40])
def test_the_palette_never_repeats(n: int) -> None:
    assert len(set(palette(n))) == n


def test_one_outlier_does_not_stretch_the_inter_token_histogram() -> None:
    gaps_ms = np.concatenate([RNG.uniform(15, 25, 359), [214.0]])
    figure = drawn(figures.itl_histogram, gaps_ms / 1000)
    assert figure is not None
    ax = _main_axes(figure)
    low, high = ax.get_xlim()
    assert 10 < low < 15.5
    assert 24.5 < high < 40
    (note,) = _texts(figure)
    assert "1 above" in note
    assert "max 214 ms" in note
    assert "of 360 gaps" in note
    assert_legend_off_the_data(figure)
    note_box = _box(figure, figure.texts[0])
    assert not note_box.overlaps(ax.get_tightbbox(_renderer(figure)))  # under the x label


def test_a_histogram_with_nothing_outside_has_no_note() -> None:
    figure = drawn(figures.itl_histogram, RNG.uniform(0.019, 0.021, 500))
    assert figure is not None
    assert _texts(figure) == []


def test_the_bulk_keeps_a_real_tail_the_quantiles_report() -> None:
    gaps = np.concatenate([np.full(900, 20.0), RNG.uniform(100, 200, 100)])
    low, high = figures.bulk_range(gaps)
    assert high >= np.quantile(gaps, 0.99)  # a tail as big as p99 stays in view
    assert low <= 20.0


def test_throughput_legend_clears_the_twin_axis() -> None:
    seconds = np.arange(30, dtype=float)
    figure = drawn(figures.throughput_over_time, seconds, RNG.uniform(300, 400, 30), seconds % 8)
    assert figure is not None
    assert_legend_off_the_data(figure)


def test_latency_legend_sits_beside_the_plot() -> None:
    t = np.sort(RNG.uniform(0, 30, 300))
    figure = drawn(figures.latency_over_time, t, np.full(300, 0.1), np.full(300, 1.0))
    assert figure is not None
    assert_legend_off_the_data(figure)


def assert_every_legend_off_the_data(figure: Figure) -> None:
    legends = [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    assert legends
    for legend in legends:
        legend_box = _box(figure, legend)
        for axes in figure.axes:
            assert not legend_box.overlaps(axes.get_window_extent(_renderer(figure)))


def test_the_server_panel_keeps_its_legends_beside_both_plots() -> None:
    seconds = np.arange(20, dtype=float)
    client = {"second": seconds, "in_flight": seconds % 5, "tokens_per_s": RNG.uniform(90, 110, 20)}
    server = {
        "running": (seconds, seconds % 5),
        "waiting": (seconds, np.zeros(20)),
        "generation_tokens_per_s": (seconds, RNG.uniform(90, 110, 20)),
    }
    figure = drawn(figures.server_panel, client, server)
    assert figure is not None
    assert_every_legend_off_the_data(figure)


def test_the_workload_figures_keep_their_legends_beside_the_plots() -> None:
    prompt = RNG.integers(50, 1000, 200).astype(float)
    output = RNG.integers(10, 100, 200).astype(float)
    cached = np.where(RNG.uniform(size=200) < 0.8, 512.0, 0.0)
    for figure in (
        drawn(length_figures.length_histograms, prompt, output),
        drawn(length_figures.ttft_by_input_length, prompt, prompt / 1e4, cached),
    ):
        assert figure is not None
        assert_every_legend_off_the_data(figure)


def _rate_search(n: int) -> list[figures.SweepPoint]:
    """A rate search's probes: most of them bunched where it bisected."""
    rates = [4, 8, 16, 32, *np.linspace(20, 32, n - 4)]
    return [
        figures.SweepPoint(
            label=f"rate={r:.4g}",
            tokens_per_s=r * 48 * (1 - 0.002 * i),
            ttft_p50_s=0.1 + 0.001 * i,
            ttft_p99_s=0.12 + 0.002 * i,
            e2e_p50_s=1.0 + 0.001 * i,
        )
        for i, r in enumerate(rates)
    ]


@pytest.mark.parametrize("n", [4, 12, 28])
def test_sweep_labels_never_overprint(n: int) -> None:
    figure = drawn(figures.sweep_curve, _rate_search(n), 3, "knee: rate=32")
    assert figure is not None
    ax = _main_axes(figure)
    labels = [t for t in ax.texts if t.get_text().startswith("rate=")]
    boxes = [_box(figure, t) for t in labels]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    inside = ax.get_window_extent(_renderer(figure))
    legend_box = _box(figure, ax.get_legend())
    for box in boxes:
        assert inside.x0 <= box.x0
        assert box.x1 <= inside.x1
        assert not box.overlaps(legend_box)
    assert "rate=32" in [t.get_text() for t in labels]  # the knee is labelled first
    (note,) = _texts(figure)
    left_out = n - len(labels)
    assert ("left out" in note) == (left_out > 0)
    if left_out:
        assert f"{left_out} of {n} level labels left out" in note
    assert_legend_off_the_data(figure)


def test_errors_over_time_stack_each_kind() -> None:
    seconds = np.arange(5, dtype=float)
    ended = {
        "ok": np.array([3, 4, 4, 4, 2.0]),
        "http_status": np.array([1, 0, 2, 0, 0.0]),
        "truncated": np.array([0, 1, 0, 0, 1.0]),
    }
    figure = drawn(
        timelines.outcomes_over_time, seconds, ended, errors=["http_status", "truncated"]
    )
    assert figure is not None
    ax = _main_axes(figure)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["ok", "error: truncated", "error: http_status"]  # as stacked, top first
    tops = np.zeros(5)
    for bars in ax.containers:
        tops = np.maximum(tops, [bar.get_y() + bar.get_height() for bar in bars])
    assert list(tops) == [4, 5, 6, 4, 3]  # every request counted once
    colours = {to_hex(bars[0].get_facecolor()) for bars in ax.containers}
    assert len(colours) == 3
    assert_legend_off_the_data(figure)


def test_a_run_without_errors_says_so_under_its_outcomes() -> None:
    ok = {"ok": np.array([2.0, 3.0])}
    figure = drawn(timelines.outcomes_over_time, np.arange(2.0), ok, errors=[])
    assert figure is not None
    assert _texts(figure) == ["No request failed."]


def _lifelines(n: int) -> list[timelines.Lifeline]:
    lines = []
    for i in range(n):
        due = i * 0.05
        sent = due + (0.2 if i % 10 == 0 else 0.001)
        verdict = ("met", "missed", "error")[i % 3]
        first = None if verdict == "error" else sent + 0.1
        end = sent + (0.05 if first is None else 1.0)
        tokens = () if first is None else tuple(first + 0.02 * k for k in range(40))
        lines.append(timelines.Lifeline(due, sent, first, end, verdict, tokens))
    return lines


def test_the_request_timeline_samples_many_requests() -> None:
    figure = drawn(timelines.request_timeline, _lifelines(1000))
    assert figure is not None
    ax = _main_axes(figure)
    assert "200 of 1000 shown" in ax.get_title()
    assert ax.get_ylim() == (199.5, -0.5)  # the first request due on top
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["due → sent (queued)", "sent → first token"]
    assert {"streaming: met every SLO", "streaming: missed an SLO"} <= set(legend)
    assert "failed before a token" in legend
    assert_legend_off_the_data(figure)


def test_a_short_timeline_marks_each_token() -> None:
    figure = drawn(timelines.request_timeline, _lifelines(30))
    assert figure is not None
    ax = _main_axes(figure)
    assert "shown" not in ax.get_title()
    marks = [c for c in ax.collections if c.get_offsets().shape[0] > 100]
    assert len(marks[0].get_offsets()) == 20 * 40  # the 20 requests that streamed
    assert "token arrival" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_client_health_marks_the_bound() -> None:
    seconds = np.arange(10.0)
    lag = np.array([0.1, 0.2, 5.0, 0.1, np.nan, 0.3, 0.2, 3.0, 0.1, 0.1])
    figure = drawn(timelines.client_health, seconds, lag, np.full(10, 40.0), bound_ms=2.0)
    assert figure is not None
    assert _texts(figure) == [
        "The worst lag of a second passed 2 ms in 2 of 10 seconds; the client counts as"
        " bound when its p99 lag while busy does."
    ]
    assert_legend_off_the_data(figure)


def test_nothing_to_draw_gives_no_figure() -> None:
    assert figures.ttft_cdf({"": np.array([])}) is None
    assert figures.itl_histogram(np.array([np.nan])) is None
    assert timelines.request_timeline([]) is None
    nothing = np.full(3, np.nan)
    assert timelines.client_health(np.arange(3.0), nothing, nothing, bound_ms=2) is None


def test_tokens_too_close_to_tell_apart_are_not_marked() -> None:
    dense = [
        timelines.Lifeline(
            i * 1.0, i * 1.0, i + 0.1, i + 0.9, "ok", tuple(i + 0.1 + k * 0.001 for k in range(800))
        )
        for i in range(10)
    ]
    figure = drawn(timelines.request_timeline, dense)
    assert figure is not None
    ax = _main_axes(figure)
    assert "token arrival" not in [t.get_text() for t in ax.get_legend().get_texts()]
    assert not [c for c in ax.collections if c.get_offsets().shape[0] > 100]
