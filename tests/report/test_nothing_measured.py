"""A report never prints ``None``, nor a rate measured over nothing: when no request
finished ok, the tokens of failed streams are no throughput."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from harness.analysis.summary import summarize
from harness.cli.run_display import summary_table
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.report.html import render_html
from harness.report.labels import measured_rates, measurement_note, throughput_line
from harness.report.markdown import render_markdown
from harness.run import RunResult

MS = 1_000_000


def _truncated(i: int) -> RequestRecord:
    """A stream that sent tokens for a second, then broke before its answer ended."""
    sent = i * 100 * MS
    tokens = [sent + 100 * MS + k * 20 * MS for k in range(40)]
    return RequestRecord(
        request_id=f"r-{i}",
        t_sent_ns=sent,
        t_first_token_ns=tokens[0],
        t_end_ns=tokens[-1] + MS,
        status=200,
        token_times_ns=tokens,
        output_tokens=len(tokens),
        outcome=Outcome.ERROR,
        error_kind=ErrorKind.TRUNCATED,
        error_message="the connection broke before the body ended (the server closed it)",
    )


@pytest.fixture
def failed_run() -> tuple[dict, list[RequestRecord]]:
    records = [_truncated(i) for i in range(20)]
    summary = summarize(records)
    summary["config"] = {"url": "http://127.0.0.1:9/v1/chat/completions"}  # no request, dialect
    return summary, records


def test_the_summary_counts_tokens_of_failed_streams(failed_run: tuple[dict, list]) -> None:
    summary, _ = failed_run
    assert summary["ok"] == 0
    assert summary["output_tokens_per_s"] > 0  # the figure a report must not show as throughput
    assert measured_rates(summary) is None
    assert throughput_line(summary) == "no throughput: no request finished ok"


def test_report_md_prints_no_none_and_no_rate(failed_run: tuple[dict, list]) -> None:
    summary, _ = failed_run
    text = render_markdown(summary)
    assert "None" not in text
    assert "- throughput: no throughput: no request finished ok" in text
    assert "tokens/s" not in text
    assert "Output tokens: 0 from counting events; the server reported no usage." in text
    assert "(unknown request, unknown dialect, unknown transport)" in text


def test_the_terminal_prints_no_rate_over_nothing(failed_run: tuple[dict, list]) -> None:
    summary, records = failed_run
    result = RunResult(out_dir=Path("unused"), summary=summary, records=records)
    out = io.StringIO()
    Console(file=out, width=120).print(summary_table(result))
    shown = out.getvalue()
    assert "no throughput: no request finished ok" in shown
    assert "tokens/s" not in shown
    assert "None" not in shown


def test_the_page_shows_no_rate_over_nothing(failed_run: tuple[dict, list]) -> None:
    summary, records = failed_run
    page = render_html(summary, records, env={})
    assert "<b>none</b><span>output tokens/s</span>" in page
    assert "None" not in page
    assert "error: truncated" in page  # the errors-over-time figure names the kind


def test_a_sweep_level_without_ok_requests_has_no_rate(failed_run: tuple[dict, list]) -> None:
    summary, _ = failed_run
    text = render_markdown(summary, segments=[{"segment": "rate=8", "summary": summary}])
    assert "| rate=8 | 20 | 20 |" in text
    assert text.rstrip().endswith("| none | none |")


def test_the_measurement_error_note_says_how_to_calibrate() -> None:
    assert "not calibrated: run `sse-harness calibrate`" in measurement_note({})
    calibrated = measurement_note({"measurement_error": "aiohttp transport: p99 lag 0.2 ms"})
    assert calibrated.startswith("Client timing error on this machine: aiohttp transport:")
    assert "not calibrated" not in calibrated


def test_a_window_of_a_nanosecond_holds_no_rate() -> None:
    summary = {"ok": 4, "window_s": 1e-9, "output_tokens_per_s": 0.0, "requests_per_s": 0.0}
    assert measured_rates(summary) is None
    assert throughput_line(summary) == "no throughput: the measured window is empty"
