"""The reports say how output tokens were counted in words, never with a bare None."""

from __future__ import annotations

from harness.report.labels import token_count_line


def test_without_usage_the_line_says_the_server_reported_none() -> None:
    line = token_count_line({"output_tokens_from_usage": None, "output_tokens_from_events": 1200})
    assert line == "Output tokens: 1,200 from counting events; the server reported no usage."
    assert "None" not in line


def test_with_usage_both_counts_and_a_disagreement_are_shown() -> None:
    variants = {"output_tokens_from_usage": 990, "output_tokens_from_events": 1000,
                "token_counts_disagree": True}  # fmt: skip
    line = token_count_line(variants)
    assert line.startswith("Output tokens: 990 from server usage, 1,000 from counting events.")
    assert line.endswith("They disagree by more than 5% on some requests.")
