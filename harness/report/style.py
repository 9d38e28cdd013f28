"""How the report's figures look, shared by every figure module.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, so no GUI backend
and no global figure registry), each with its own Agg canvas so that a figure can measure
its text while it is drawn (to keep legends and labels off the data), and saved as SVG
with a fixed hash salt and no date, so the same run gives the same report byte for byte.
Text stays text (``svg.fonttype`` ``none``); nothing in the SVG refers to anything
outside it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.transforms import Bbox

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.typing import RcKeyType  # the rc names, for the type checker only

__all__ = [
    "COLORS",
    "MAX_POINTS",
    "NOTE_COLOR",
    "SIZE",
    "STYLE",
    "drawn",
    "legend_outside",
    "new_figure",
    "note_below",
    "palette",
    "svg_figure",
    "thin",
]

#: Scatter plots show at most this many points (evenly thinned beyond it).
MAX_POINTS = 4000
SIZE = (7.2, 3.1)
STYLE: dict[RcKeyType, Any] = {
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
#: A qualitative palette that stays apart for colour-blind readers (Okabe and Ito's).
COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#000000", "#f0e442")
NOTE_COLOR = "#495057"
#: Beyond this many groups a figure colours them along one colour map (ordered levels).
QUALITATIVE_MAX = 7

P = ParamSpec("P")


def new_figure(size: tuple[float, float] = SIZE) -> Figure:
    """A figure with a canvas of its own, so its text can be measured while it is drawn."""
    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def svg_figure(name: str) -> Callable[[Callable[P, Figure | None]], Callable[P, str | None]]:
    """Draw a figure under the house style and return it as deterministic SVG text (the
    ``<svg>`` element without the XML prolog), or None when there is nothing to draw."""

    def decorate(draw: Callable[P, Figure | None]) -> Callable[P, str | None]:
        @wraps(draw)
        def render(*args: P.args, **kwargs: P.kwargs) -> str | None:
            with matplotlib.rc_context({**STYLE, "svg.hashsalt": f"sse-harness-{name}"}):
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


def drawn(render: Callable[P, str | None], *args: P.args, **kwargs: P.kwargs) -> Figure | None:
    """The figure behind a ``svg_figure`` function, drawn under the house style and laid
    out, for code (and tests) that measure it rather than read its SVG."""
    draw: Callable[P, Figure | None] = render.__wrapped__  # type: ignore[attr-defined]
    with matplotlib.rc_context(STYLE):
        figure = draw(*args, **kwargs)
        if figure is not None:
            figure.canvas.draw()
    return figure


def thin(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` items, evenly spread, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def palette(n: int) -> list[str]:
    """``n`` colours, all different: the qualitative palette for a few groups, else evenly
    spaced along a perceptually uniform map (levels are ordered, so the order reads)."""
    if n <= QUALITATIVE_MAX:
        return list(COLORS[:n])
    cmap = matplotlib.colormaps["viridis"]
    return [matplotlib.colors.to_hex(cmap(x)) for x in np.linspace(0.0, 0.92, n)]


def _in_axes(ax: Axes, artist: Artist) -> Bbox:
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    box = artist.get_tightbbox(renderer)
    assert box is not None
    return box.transformed(ax.transAxes.inverted())


def legend_outside(
    ax: Axes,
    handles: Sequence[Artist] | None = None,
    *,
    beside: Axes | None = None,
    **options: Any,
) -> Legend:
    """A legend right of the axes (and right of ``beside``'s labels, a twin axis), so it
    never covers the data."""
    x = 1.02
    if beside is not None:
        x = max(x, _in_axes(ax, beside).x1 + 0.02)
    if handles is None:
        handles = ax.get_legend_handles_labels()[0]
    return ax.legend(
        handles=list(handles),
        loc="upper left",
        bbox_to_anchor=(x, 1.0),
        borderaxespad=0.0,
        **options,
    )


def note_below(ax: Axes, text: str) -> None:
    """A note under the axes, below its tick labels and x label, in the figure's margin."""
    figure = ax.figure
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    box = ax.get_tightbbox(renderer)
    assert box is not None
    inverse = figure.transFigure.inverted()
    left = inverse.transform(ax.get_window_extent(renderer).p0)[0]
    bottom = inverse.transform((0.0, box.y0))[1]
    figure.text(left, bottom - 0.02, text, ha="left", va="top", fontsize=8, color=NOTE_COLOR)
