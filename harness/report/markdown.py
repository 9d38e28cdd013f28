"""``report.md``: the run summary as Markdown, for a terminal, a PR comment or a CI job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.labels import (
    COLUMNS,
    LATENCIES,
    VARIANTS,
    client_banner,
    client_line,
    measured_rates,
    or_unknown,
    schedule_line,
    throughput_line,
    token_count_line,
)
from harness.report.server import server_markdown

__all__ = ["latency_table", "render_markdown"]

Summary = Mapping[str, Any]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:,.1f}"


def _escape(text: object) -> str:
    """Text from a config or an endpoint, made inert in Markdown (and in HTML from it)."""
    return (
        str(text)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("`", "'")
        .replace("<", "&lt;")
        .replace("\n", " ")
    )


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def latency_table(summary: Summary) -> list[str]:
    """TTFT (from the send and from the scheduled start), ITL, TPOT and E2E at every
    quantile, in milliseconds."""
    lines = [_row(["metric (ms)", *COLUMNS, "n"]), "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for label, key in LATENCIES:
        d = summary.get(key) or {}
        lines.append(_row([label, *(_ms(d.get(c)) for c in COLUMNS), d.get("count", 0)]))
    return lines


def _overview(summary: Summary) -> list[str]:
    config = summary.get("config", {})
    dialect = or_unknown(summary.get("dialect") or config.get("dialect"))
    request, transport = (or_unknown(config.get(k)) for k in ("request", "transport"))
    lines = [
        f"- target: `{_escape(or_unknown(config.get('url'), '?'))}` ({_escape(request)} request,"
        f" {_escape(dialect)} dialect, {_escape(transport)} transport)",
        f"- requests: {summary['requests']} ({summary['ok']} ok, {summary['errors']} errors,"
        f" {summary['abandoned']} abandoned, {summary['cut']} cut by the client)",
        f"- error rate: {summary['error_rate']:.2%}",
        f"- throughput: {throughput_line(summary)}",
    ]
    if summary.get("errors_by_kind"):
        kinds = ", ".join(f"{k}: {v}" for k, v in summary["errors_by_kind"].items())
        lines.append(f"- errors by kind: {_escape(kinds)}")
    if "goodput" in summary:
        g = summary["goodput"]
        lines.append(
            f"- goodput: {g['requests_per_s']:,.2f} requests/s ({g['share']:.1%} met every SLO)"
        )
    if clock := summary.get("clock"):
        lag = clock["first_token_user_lag_s"]
        lines.append(
            f"- arrival stamps: the kernel's receive times ({clock['sources'].get('kernel', 0)}"
            f" of {sum(clock['sources'].values())} requests); user-space stamps would have put"
            f" first tokens {_ms(lag['p50'])} ms (p50) / {_ms(lag['p99'])} ms (p99) /"
            f" {_ms(lag['max'])} ms (max) later"
        )
    if summary.get("measurement_error"):
        lines.append(
            f"- measurement error on this machine: {_escape(summary['measurement_error'])}"
        )
    for line in (schedule_line(summary), client_line(summary)):
        if line:
            lines.append(f"- {_escape(line)}")
    if sweep := summary.get("sweep"):
        levels = ", ".join(f"{level:g}" for level in sweep["levels"])
        lines.append(
            f"- sweep of {_escape(sweep['name'])} over {levels}: ran"
            f" {len(sweep['ran'])} level(s), stopped: {_escape(sweep['stopped'])}"
        )
    if search := summary.get("max_rate"):
        lines.append(
            f"- rate search from {or_unknown(search.get('start_rate'), '?')} requests/s: probed"
            f" {_escape(', '.join(f'{r:.4g}' for r in search.get('rates', [])))}; stopped:"
            f" {_escape(or_unknown(search.get('stopped'), '?'))}"
        )
    if summary.get("command"):
        lines.append(f"- command: `{_escape(' '.join(summary['command']))}`")
    return lines


def _variants(variants: Mapping[str, Any]) -> list[str]:
    lines = ["## The same figures as other tools define them", ""]
    lines += [_row(["figure", "p50 (ms)", "p99 (ms)"]), "|---|---:|---:|"]
    for label, key in VARIANTS:
        d = variants.get(key) or {}
        lines.append(_row([label, _ms(d.get("p50")), _ms(d.get("p99"))]))
    lines += ["", token_count_line(variants)]
    return lines


def _disconnects(disconnect: Mapping[str, Any]) -> list[str]:
    lines = ["## Abandoned streams", ""]
    lines += _ttft_of_others(disconnect.get("ttft_of_others") or [])
    if disconnect.get("source") == "gauge":
        gauge = disconnect.get("gauge") or {}
        lines.append(
            f"{disconnect['abandoned']} abandoned; by the server's gauge (baseline"
            f" {or_unknown(gauge.get('baseline'))}, {or_unknown(gauge.get('samples'), '0')}"
            f" samples): {or_unknown(disconnect.get('verdict'), 'no verdict')}."
        )
        return lines
    if not disconnect.get("verifiable"):
        lines.append(
            f"{disconnect['abandoned']} abandoned; whether the server stopped them cannot be seen"
            " from here (no ground truth from the server)."
        )
        return lines
    latency = disconnect["stop_latency_ms"]
    lines.append(
        f"{disconnect['abandoned']} abandoned; the server stopped {disconnect['stopped_by_server']}"
        f" of the {disconnect['with_ground_truth']} it could be asked about, noticing the close"
        f" after {_num(latency['p50'])} ms (p50) / {_num(latency['p99'])} ms (p99), and wrote"
        f" {disconnect['tokens_after_close']} tokens after the close."
    )
    return lines


def _ttft_of_others(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """TTFT of the streams that stayed, per abandonment rate, against the rate-0 segment."""
    if not rows:
        return []
    lines = [
        "TTFT of the streams that were not abandoned:",
        "",
        _row(
            ["disconnect rate", "TTFT p50 (ms)", "TTFT p99 (ms)", "p50 vs rate 0", "p99 vs rate 0"]
        ),
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            _row(
                [
                    f"{row['disconnect_rate']:g}",
                    _ms(row["ttft_p50_s"]),
                    _ms(row["ttft_p99_s"]),
                    _pct(row["change_p50"]),
                    _pct(row["change_p99"]),
                ]
            )
        )
    return [*lines, ""]


def _rates(summary: Summary) -> tuple[str, str]:
    """A segment's output tokens/s and requests/s, or "none" where no request finished ok."""
    rates = measured_rates(summary)
    return (f"{rates[0]:,.1f}", f"{rates[1]:,.2f}") if rates else ("none", "none")


def _pct(change: float | None) -> str:
    return "-" if change is None else f"{change:+.1%}"


def _segments(segments: Sequence[Mapping[str, Any]]) -> list[str]:
    header = [
        "segment",
        "requests",
        "errors",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "ITL p50 (ms)",
        "tokens/s",
        "requests/s",
    ]
    lines = ["## Segments", "", _row(header), "|---|" + "---:|" * (len(header) - 1)]
    for segment in segments:
        s = segment["summary"]
        lines.append(
            _row(
                [
                    _escape(segment["segment"]),
                    s["requests"],
                    s["errors"],
                    _ms(s["ttft_s"]["p50"]),
                    _ms(s["ttft_s"]["p99"]),
                    _ms(s["itl_s"]["p50"]),
                    *_rates(s),
                ]
            )
        )
    return lines


def render_markdown(
    summary: Summary, *, segments: Sequence[Mapping[str, Any]] = (), title: str = "sse-harness run"
) -> str:
    """The run summary (and a sweep's segments) as Markdown."""
    lines = [f"# {_escape(title)}", ""]
    if banner := client_banner(summary):
        lines += [f"> **Warning:** {_escape(banner)}", ""]
    lines += [*_overview(summary), "", "## Latency", ""]
    lines += latency_table(summary)
    if summary.get("variants"):
        lines += ["", *_variants(summary["variants"])]
    disconnect = summary.get("disconnect")
    if disconnect and disconnect.get("abandoned"):
        lines += ["", *_disconnects(disconnect)]
    if segments:
        lines += ["", *_segments(segments)]
    lines += server_markdown(summary)
    return "\n".join(lines) + "\n"
