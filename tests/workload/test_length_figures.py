"""The report's workload figures: input and output lengths, TTFT against input length."""

from __future__ import annotations

from harness.record import Outcome, RequestRecord
from harness.report.html import render_html
from harness.report.length_figures import workload_section


def record(number: int, prompt: int | None, cached: int | None) -> RequestRecord:
    sent = number * 1_000_000_000
    return RequestRecord(
        request_id=str(number),
        t_sent_ns=sent,
        t_first_token_ns=sent + (5 if cached else 50) * 1_000_000,
        t_end_ns=sent + 90_000_000,
        token_times_ns=[sent + 50_000_000, sent + 60_000_000],
        prompt_tokens=prompt,
        cached_tokens=cached,
        output_tokens=2 + number % 3,
        outcome=Outcome.OK,
    )


def test_the_section_draws_lengths_and_ttft_by_input_split_by_cache() -> None:
    records = [record(n, 100 + 10 * n, 96 if n % 4 else 0) for n in range(12)]
    section = workload_section(records)
    assert section.startswith("<h2>Workload</h2>")
    assert section.count("<svg") == 2
    for text in ("input (prompt) tokens (12 requests)", "output tokens (12 requests)",
                 "TTFT against input length", "cache hit (9)", "cache miss (3)"):  # fmt: skip
        assert text in section


def test_without_cached_counts_every_request_is_one_group() -> None:
    section = workload_section([record(n, 50 + n, None) for n in range(5)])
    assert "requests (5)" in section
    assert "cache hit" not in section


def test_no_section_without_prompt_tokens_or_with_one_length_and_no_cache() -> None:
    records = [record(n, None, None) for n in range(3)]
    assert workload_section(records) == ""
    assert workload_section([record(n, 40, None) for n in range(3)]) == ""
    assert workload_section([record(n, 40, 0) for n in range(3)]) == ""
    assert "cache hit (2)" in workload_section([record(n, 40, 32 * (n > 0)) for n in range(3)])
    page = render_html({"requests": 3, "config": {}}, records, env={})
    assert "<h2>Workload</h2>" not in page
