"""The report's section on the server's own view: its figures beside the client's, and
a plain sentence on what the difference holds. Renderers return strings."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from harness.record import RequestRecord

__all__ = ["gap_sentence", "server_html", "server_markdown"]

_PAIRS = (("TTFT", "ttft_s", "server_ttft_s"), ("E2E", "e2e_s", "server_e2e_s"))


def _ms(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:+,.1f}" if sign else f"{value * 1000:,.1f}"


def _bound(figure: Mapping[str, Any], stat: str) -> str:
    bound = (figure.get("bound_s") or {}).get(stat)
    return "unbounded (+Inf bucket)" if bound is None else f"± {bound * 1000:,.1f}"


def gap_sentence(summary: Mapping[str, Any]) -> str | None:
    """What client minus server comes to, and what it is made of; None without both."""
    gaps = summary.get("client_vs_server") or {}
    if not gaps:
        return None
    bounds = gaps.get("bound_ms") or {}
    parts = []
    for family in ("ttft", "e2e"):
        gap, bound = gaps.get(f"{family}_p50_ms"), bounds.get(f"{family}_p50_ms")
        if gap is not None:
            within = "" if bound is None else f" (server figure ± {bound:,.1f} ms)"
            parts.append(f"{family.upper()} {gap:+,.1f} ms{within}")
    text = (
        f"Client minus server at p50: {', '.join(parts)}. The gap holds what happens before "
        "the server starts its own clock and after it stops it: connecting, sending and "
        "reading the request, any gateway or proxy in front of the engine, the network back, "
        "and the client's own delays in reading and parsing the stream. A gap within the "
        "server figure's bound is no gap at all; the server's quantiles come from its "
        "histogram buckets and are off by at most that bound."
    )
    tail = gaps.get("ttft_p99_ms")
    tail_bound = bounds.get("ttft_p99_ms")
    if tail is not None and tail_bound is not None and tail > 2 * (tail_bound or 0) + 5:
        text += (
            f" At p99 the TTFT gap is {tail:+,.1f} ms: a tail the server did not see, so it "
            "comes from the network, a proxy or the client itself (see the client's health)."
        )
    return text


def _rows(summary: Mapping[str, Any]) -> list[list[str]]:
    server = summary.get("server") or {}
    rows = []
    for label, ours, theirs in _PAIRS:
        figure = server.get(theirs)
        if not figure:
            continue
        client = summary.get(ours) or {}
        for stat in ("p50", "p99"):
            c, s = client.get(stat), figure.get(stat)
            gap = None if c is None or s is None else c - s
            rows.append([f"{label} {stat}", _ms(c), _ms(s), _bound(figure, stat), _ms(gap, True)])
    return rows


def _gauges(server: Mapping[str, Any]) -> str:
    notes = []
    for key in ("running", "waiting"):
        if (gauge := server.get(key)) is not None:
            notes.append(f"{key} max {gauge['max']:g}, mean {gauge['mean']:.1f}")
    if (kv := server.get("kv_cache_usage")) is not None:
        notes.append(f"KV cache use max {kv['max']:.1%}")
    if (hit := server.get("prefix_cache_hit_rate")) is not None:
        notes.append(f"prefix-cache hit rate {hit:.1%}")
    if (rate := server.get("generation_tokens_per_s")) is not None:
        notes.append(f"{rate:,.1f} generated tokens/s")
    if (queue := server.get("server_queue_s")) is not None and queue.get("p50") is not None:
        notes.append(f"queue time p50 {_ms(queue['p50'])} ms ({_bound(queue, 'p50')})")
    return "; ".join(notes)


def _head(server: Mapping[str, Any]) -> str:
    name = server.get("recognised") or "a server of no known kind (raw samples kept)"
    failed = server.get("scrape_errors", 0)
    text = (
        f"Scraped {', '.join(server.get('urls') or [])}: {name}, {server.get('scrapes', 0)} "
        f"scrapes, {failed} failed"
    )
    if server.get("first_error"):
        text += f" (first: {server['first_error']})"
    return text + "."


def server_markdown(summary: Mapping[str, Any]) -> list[str]:
    """The Markdown section (no lines when no server was scraped)."""
    server = summary.get("server")
    if not server:
        return []
    lines = ["", "## The server's own view", "", _head(server)]
    if rows := _rows(summary):
        lines += ["", "| figure | client (ms) | server (ms) | server bound (ms) | gap (ms) |"]
        lines += ["|---|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    if gauges := _gauges(server):
        lines += ["", f"Server: {gauges}."]
    if sentence := gap_sentence(summary):
        lines += ["", sentence]
    for name, stats in (server.get("series") or {}).items():
        if stats:
            lines.append(f"- `{name}`: min {stats['min']:g}, max {stats['max']:g}, "
                         f"mean {stats['mean']:.4g}, last {stats['last']:g}")  # fmt: skip
    return lines


def _panel(records: Sequence[RequestRecord], rows: Sequence[Mapping[str, Any]]) -> str | None:
    import numpy as np

    from harness.analysis.frames import time_series  # pandas, as late as matplotlib
    from harness.report import figures  # matplotlib: imported when a page is drawn

    if not rows or not records:
        return None
    series = time_series(records, origin_ns=min(r.t_sent_ns for r in records))
    client = {
        "second": series["second"].to_numpy(dtype=float),
        "in_flight": series["in_flight"].to_numpy(dtype=float),
        "tokens_per_s": series["tokens_per_s"].to_numpy(dtype=float),
    }
    server = {}
    for key in ("running", "waiting", "generation_tokens_per_s"):
        t, values = panel_rows(rows, key)
        if t:
            server[key] = (np.asarray(t, dtype=float), np.asarray(values, dtype=float))
    return figures.server_panel(client, server)


def server_html(
    summary: Mapping[str, Any],
    records: Sequence[RequestRecord],
    rows: Sequence[Mapping[str, Any]],
) -> str:
    """The HTML section, with a panel of the server's series over time beside the
    client's; empty when no server was scraped.

    Args:
        summary: the run's summary.
        records: the run's records (the client's series).
        rows: the server's series (``harness.analysis.server_figures.server_series``,
            from the same origin as the client's: the first request sent).
    """
    server = summary.get("server")
    if not server:
        return ""
    panel = _panel(records, rows)
    e = html.escape
    parts = ["<h2>The server's own view</h2>", f"<p>{e(_head(server))}</p>"]
    if table := _rows(summary):
        head = ["figure", "client (ms)", "server (ms)", "server bound (ms)", "gap (ms)"]
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table)
        parts.append(
            "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table>"
        )  # fmt: skip
    if gauges := _gauges(server):
        parts.append(f"<p>Server: {e(gauges)}.</p>")
    if sentence := gap_sentence(summary):
        parts.append(f'<p class="note">{e(sentence)}</p>')
    if panel:
        parts.append(f'<div class="figs"><figure>{panel}</figure></div>')
    return "".join(parts)


def panel_rows(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """The times and values of one server series (rows without it left out)."""
    kept = [(r["t_s"], r[key]) for r in rows if r.get(key) is not None]
    return [t for t, _ in kept], [v for _, v in kept]


#: The server figures a comparison shows: (label, path in the summary, unit).
_COMPARED = (
    ("server TTFT p50", ("server", "server_ttft_s", "p50"), "s"),
    ("server TTFT p99", ("server", "server_ttft_s", "p99"), "s"),
    ("server queue p50", ("server", "server_queue_s", "p50"), "s"),
    ("server E2E p50", ("server", "server_e2e_s", "p50"), "s"),
    ("server running (max)", ("server", "running", "max"), ""),
    ("server waiting (max)", ("server", "waiting", "max"), ""),
    ("server KV cache use (max)", ("server", "kv_cache_usage", "max"), "%"),
    ("server prefix-cache hit rate", ("server", "prefix_cache_hit_rate"), "%"),
    ("server tokens/s", ("server", "generation_tokens_per_s"), ""),
    ("client - server TTFT p50", ("client_vs_server", "ttft_p50_ms"), "ms"),
    ("client - server E2E p50", ("client_vs_server", "e2e_p50_ms"), "ms"),
)


def _at(summary: Mapping[str, Any], path: Sequence[str]) -> float | None:
    value: Any = summary
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, int | float) else None


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:,.2f} ms"
    if unit == "ms":
        return f"{value:+,.2f} ms"
    if unit == "%":
        return f"{value:.1%}"
    return f"{value:,.2f}"


def server_comparison(
    base: Mapping[str, Any], current: Mapping[str, Any], *, names: tuple[str, str]
) -> str:
    """The two runs' server figures side by side, as Markdown; empty when neither run
    scraped a server. No verdict: each is one aggregate (a histogram's quantile within
    its bucket bound), with no per-request samples to resample."""
    rows = []
    for label, path, unit in _COMPARED:
        a, b = _at(base, path), _at(current, path)
        if a is None and b is None:
            continue
        rows.append(f"| {label} | {_shown(a, unit)} | {_shown(b, unit)} |")
    if not rows:
        return ""
    left, right = (name.replace("|", "\\|") for name in names)
    return "\n".join([
        "", "The server's own figures (no verdict: one aggregate per run; a quantile read "
        "from histogram buckets is off by up to its bucket's width, see each summary's "
        "bound_s):", "", f"| figure | {left} | {right} |", "|---|---:|---:|", *rows,
    ]) + "\n"  # fmt: skip
