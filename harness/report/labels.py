"""What the reports call the figures of ``summary.json``: one set of labels for every format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "COLUMNS",
    "LATENCIES",
    "MIN_WINDOW_S",
    "VARIANTS",
    "client_banner",
    "client_line",
    "measured_rates",
    "measurement_note",
    "or_unknown",
    "schedule_line",
    "throughput_line",
    "token_count_line",
]

#: A measured window shorter than this holds no rate worth printing.
MIN_WINDOW_S = 1e-3
#: The latency figures, in the order reports show them: (label, summary key).
LATENCIES = (
    ("TTFT", "ttft_s"),
    ("TTFT from scheduled start", "ttft_from_scheduled_s"),
    ("ITL", "itl_s"),
    ("TPOT", "tpot_s"),
    ("E2E", "e2e_s"),
)
#: The statistics of each latency distribution.
COLUMNS = ("p50", "p90", "p95", "p99", "p999", "mean", "max")
#: What other tools call TTFT and ITL, beside ours: (label, key in ``summary["variants"]``).
VARIANTS = (
    ("TTFT to first byte", "ttft_first_byte_s"),
    ("TTFT to first event (any chunk)", "ttft_first_event_s"),
    ("TTFT to first content or reasoning (ours)", "ttft_first_token_s"),
    ("TTFT to first answer text", "ttft_first_answer_s"),
    ("ITL as per-request mean (E2E - TTFT)/(n - 1)", "itl_request_mean_s"),
)


def client_banner(summary: Mapping[str, Any]) -> str | None:
    """The warning a report opens with when the client itself was the bottleneck."""
    client = summary.get("client") or {}
    if not client.get("bound"):
        return None
    reasons = "; ".join(client.get("reasons") or [])
    text = (
        f"The client was the bottleneck of this run ({reasons}): its own delays may have "
        "moved these figures by more than the calibrated 2 ms, so read them as the "
        "client's as much as the server's."
    )
    if client.get("remedy"):
        text += f" To measure the server: {client['remedy']}."
    return text


def client_line(summary: Mapping[str, Any]) -> str | None:
    """The client's own health in a line, bound or not (None when it was not watched)."""
    client = summary.get("client") or {}
    lag = client.get("loop_lag_ms") or {}
    cpu = client.get("cpu_percent") or {}
    if not client.get("watched"):
        return None
    parts = []
    if lag.get("p99") is not None:
        parts.append(f"loop lag p99 {lag['p99']:.3g} ms while busy")
    if cpu.get("p50") is not None:
        parts.append(f"CPU {cpu['p50']:.0f}% of a core (p50), {cpu['max']:.0f}% max")
    if client.get("merged_reads_share"):
        parts.append(f"{client['merged_reads_share']:.1%} of reads carried several tokens")
    verdict = "BOUND" if client.get("bound") else "not bound"
    return f"client {verdict}" + (f": {', '.join(parts)}" if parts else "")


def schedule_line(summary: Mapping[str, Any]) -> str | None:
    """What became of the requests the schedule offered, and how late they went out."""
    schedule = summary.get("schedule")
    if not schedule:
        return None
    line = f"schedule: {schedule['offered']} offered, {schedule['sent']} sent"
    if schedule["not_sent"]:
        why = ", ".join(f"{count} {reason}" for reason, count in schedule["not_sent_by"].items())
        line += f", {schedule['not_sent']} not sent ({why})"
    late = schedule.get("send_lateness_s")
    if late:
        line += (
            f"; send lateness p50 {late['p50'] * 1e3:.3g} ms, p99 {late['p99'] * 1e3:.3g} ms,"
            f" max {late['max'] * 1e3:.3g} ms"
        )
    return line


def token_count_line(variants: Mapping[str, Any]) -> str:
    """The output token counts both ways, in words: never a bare ``None`` where the
    server reported no usage."""
    usage = variants.get("output_tokens_from_usage")
    events = variants.get("output_tokens_from_events")
    counted = f"{events:,} from counting events" if events is not None else "none counted"
    if usage is None:
        line = f"Output tokens: {counted}; the server reported no usage."
    else:
        line = f"Output tokens: {usage:,} from server usage, {counted}."
    if variants.get("token_counts_disagree"):
        line += " They disagree by more than 5% on some requests."
    return line


def or_unknown(value: object, unknown: str = "unknown") -> str:
    """A value as text, with a word where it is missing (a report never prints ``None``)."""
    return unknown if value is None or value == "" else str(value)


def measured_rates(summary: Mapping[str, Any]) -> tuple[float, float] | None:
    """Output tokens/s and requests/s, or None where they rest on nothing: no request
    finished ok (tokens of failed streams are no throughput), or the measured window is
    shorter than ``MIN_WINDOW_S`` (requests that never ran leave a window of 1 ns)."""
    if not summary.get("ok") or (summary.get("window_s") or 0.0) < MIN_WINDOW_S:
        return None
    return summary["output_tokens_per_s"], summary["requests_per_s"]


def throughput_line(summary: Mapping[str, Any]) -> str:
    """Throughput in words, or why there is none."""
    rates = measured_rates(summary)
    if rates is None:
        why = "no request finished ok" if not summary.get("ok") else "the measured window is empty"
        return f"no throughput: {why}"
    window = summary.get("window_s") or 0.0
    return f"{rates[0]:,.1f} output tokens/s, {rates[1]:,.2f} requests/s over {window:.1f} s"


def measurement_note(summary: Mapping[str, Any]) -> str:
    """The machine's own timing error, for the figures it affects: from the calibration
    the run found, else how to measure it."""
    error = summary.get("measurement_error")
    if error:
        return f"Client timing error on this machine: {error}; a spread within it is the client's."
    return (
        "Client timing error on this machine: not calibrated: run `sse-harness calibrate`"
        " to learn how much of the spread here is the client's own."
    )
