"""What ``sse-harness run`` prints: the live progress line, and at the end the levels,
the summary table, the server's figures, the errors and the client's own health."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from harness.report.labels import client_line, measured_rates, schedule_line, throughput_line

if TYPE_CHECKING:
    from rich.console import Console  # rich: loaded when a command prints (not for --help)
    from rich.table import Table

    from harness.load.runner import SegmentRunner
    from harness.run import RateSearch, RunResult

__all__ = [
    "ERROR_MESSAGE_CHARS",
    "error_lines",
    "health_lines",
    "levels_table",
    "progress_table",
    "show_summary",
    "summary_table",
]


def progress_table(runner: SegmentRunner, started_ns: int) -> Table:
    """The live progress line of a segment: done, in flight, recent TTFT, tokens/s."""
    from rich.table import Table

    p = runner.progress
    elapsed_s = max((time.perf_counter_ns() - started_ns) / 1e9, 1e-9)
    recent = sorted(p.recent_ttft_s)
    ttft = f"{recent[len(recent) // 2] * 1000:,.0f} ms" if recent else "-"
    table = Table.grid(padding=(0, 2))
    segment = f"[bold]{runner.segment or 'run'}[/]"
    table.add_row(
        segment,
        f"done {p.completed}",
        f"in flight {p.in_flight}",
        f"TTFT p50 {ttft}",
        f"{p.tokens / elapsed_s:,.0f} tokens/s",
        f"errors {p.errors}",
        f"{elapsed_s:,.1f} s",
    )
    return table


def show_summary(result: RunResult, console: Console, search: RateSearch | None) -> None:
    """The run's figures on the terminal: its levels, its summary and the server's, and
    what else a reader should know (errors, the schedule, the client's health)."""
    from rich.console import Console

    from harness.cli.server_table import server_table

    levels = levels_table(result)
    if levels is not None:
        # a log, or a pipe, keeps every column whole: rich would squeeze them to 80
        Console(width=None if sys.stdout.isatty() else 120).print(levels)
    Console().print(summary_table(result))
    server = server_table(result.summary)
    if server is not None:
        Console().print(server)
    if search is not None:
        found = result.summary["max_rate"]
        console.print(
            f"highest rate meeting the SLO: {found['rate'] or 'none'} requests/s "
            f"({found['probes']} probes; {found['rule']})"
        )
    for line in error_lines(result.summary):
        console.print(line, markup=False, highlight=False)
    for line in health_lines(result.summary):
        bound = (result.summary.get("client") or {}).get("bound")
        console.print(line, markup=False, highlight=False, style="yellow" if bound else None)


def levels_table(result: RunResult) -> Table | None:
    """One row per level of a sweep or rate search, as each level ran."""
    from rich import box
    from rich.table import Table

    if not result.segments:
        return None
    table = Table(title="per level (latencies in ms)", box=box.SIMPLE_HEAD, padding=(0, 1))
    columns = ("level", "reqs", "err", "TTFT p50", "TTFT p99", "ITL p50", "tok/s", "req/s")
    for column in columns:
        table.add_column(column, justify="left" if column == "level" else "right", no_wrap=True)
    marked = any("passed" in s or s.get("saturated") for s in result.segments)
    if marked:
        table.add_column("", no_wrap=True)
    for segment in result.segments:
        s = segment["summary"]
        latencies = (s["ttft_s"]["p50"], s["ttft_s"]["p99"], s["itl_s"]["p50"])
        measured = measured_rates(s)
        rates = (f"{measured[0]:,.1f}", f"{measured[1]:,.2f}") if measured else ("-", "-")
        row = [segment["segment"], str(s["requests"]), str(s["errors"])]
        row += [*map(_ms, latencies), *rates]
        if marked:
            passed = segment.get("passed")
            verdict = "" if passed is None else "passed" if passed else "failed"
            row.append("saturated" if segment.get("saturated") else verdict)
        table.add_row(*row)
    return table


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def summary_table(result: RunResult) -> Table:
    """The run's latency distributions, with its throughput as the caption."""
    from rich.table import Table

    s = result.summary
    pooled = ", all levels pooled" if result.segments else ""
    table = Table(
        title=f"{s['requests']} requests, {s['errors']} errors ({s['error_rate']:.1%}){pooled}"
    )
    for column in ("metric", "p50", "p90", "p99", "mean", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for label, key in (
        ("TTFT (ms)", "ttft_s"),
        ("ITL (ms)", "itl_s"),
        ("TPOT (ms)", "tpot_s"),
        ("E2E (ms)", "e2e_s"),
    ):
        d = s[key]
        table.add_row(
            label,
            *(
                "-" if d[c] is None else f"{d[c] * 1000:,.1f}"
                for c in ("p50", "p90", "p99", "mean", "max")
            ),
        )
    table.caption = throughput_line(s)
    return table


#: How much of each error kind's first message the terminal shows.
ERROR_MESSAGE_CHARS = 160


def error_lines(summary: dict[str, Any]) -> list[str]:
    """One line per error kind (its count and the first message of its kind), then what
    else a reader should know: tokens that were not text, answers without terminator."""
    counts = summary.get("errors_by_kind") or {}
    first = summary.get("first_error_by_kind") or {}
    lines = []
    for kind, count in sorted(counts.items(), key=lambda item: -item[1]):
        message = " ".join(str(first.get(kind, "")).split())
        if len(message) > ERROR_MESSAGE_CHARS:
            message = message[:ERROR_MESSAGE_CHARS] + "..."
        lines.append(f"  {kind}: {count}" + (f", first: {message}" if message else ""))
    kinds = summary.get("token_events_by_kind") or {}
    if kinds.get("reasoning") or kinds.get("tool_call"):
        text, reasoning, tools = (kinds.get(k, 0) for k in ("text", "reasoning", "tool_call"))
        lines.append(
            f"  token events: {text} text, {reasoning} reasoning, {tools} tool-call arguments"
        )
    if summary.get("no_terminator"):
        habit = "ended without the stream's terminator ([DONE]): a habit, not an error"
        lines.append(f"  note: {summary['no_terminator']} complete answer(s) {habit}")
    return lines


def health_lines(summary: dict[str, Any]) -> list[str]:
    """What became of the schedule, and whether the client itself was the bottleneck,
    with the remedy when it was."""
    lines = [f"  {line}" for line in (schedule_line(summary), client_line(summary)) if line]
    client = summary.get("client") or {}
    if client.get("bound"):
        reasons = "; ".join(client["reasons"])
        lines.append(f"  the client's own delays may have moved the figures: {reasons}")
        lines.append(f"  remedy: {client['remedy']}")
    return lines
