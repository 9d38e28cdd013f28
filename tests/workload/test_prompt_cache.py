"""Cached prompt tokens read from each API's usage, and the summary's ``prompt_cache``
block (cached share, TTFT of hits and misses) built from records."""

from __future__ import annotations

import pytest

from harness.analysis.prompt_cache import prompt_cache
from harness.load.recorder import prompt_usage
from harness.record import Outcome, RequestRecord
from harness.results import RunSummary


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, (None, None)),
        ({"prompt_tokens": 10, "completion_tokens": 2}, (10, None)),
        ({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 8}}, (10, 8)),
        ({"prompt_tokens": 10, "prompt_tokens_details": None}, (10, None)),
        ({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4}}, (12, 4)),  # Responses
        ({"input_tokens": 3, "cache_read_input_tokens": 48, "cache_creation_input_tokens": 2},
         (53, 48)),  # Anthropic: input_tokens are the uncached ones
        ({"input_tokens": 7}, (7, None)),
    ],
)  # fmt: skip
def test_prompt_and_cached_tokens_of_every_usage_shape(
    usage: dict[str, object] | None, expected: tuple[int | None, int | None]
) -> None:
    assert prompt_usage(usage) == expected


def record(
    number: int, prompt: int | None, cached: int | None, ttft_ms: int, outcome=Outcome.OK
) -> RequestRecord:
    sent = number * 1_000_000_000
    return RequestRecord(
        request_id=str(number),
        t_sent_ns=sent,
        t_first_token_ns=sent + ttft_ms * 1_000_000,
        t_end_ns=sent + 500_000_000,
        prompt_tokens=prompt,
        cached_tokens=cached,
        outcome=outcome,
    )


def test_the_block_splits_ttft_by_hit_and_miss_and_sums_the_cached_share() -> None:
    records = [
        record(0, 100, 0, 50),
        record(1, 100, 96, 10),
        record(2, 100, 96, 12),
        record(3, 100, 96, 14),
        record(4, 100, 0, 40, outcome=Outcome.ERROR),  # failed: in neither
        record(5, 100, None, 5),  # says nothing about caching: in neither
    ]
    block = prompt_cache(records)
    assert block is not None
    assert block["cached_share"] == pytest.approx(288 / 400)
    assert (block["prompt_tokens"], block["cached_tokens"]) == (400, 288)
    assert (block["hits"], block["misses"]) == (3, 1)
    assert block["ttft_hit_s"]["p50"] == pytest.approx(0.012)
    assert block["ttft_hit_s"]["count"] == 3
    assert block["ttft_miss_s"]["p50"] == pytest.approx(0.050)
    summary = RunSummary.from_dict(
        {"version": "x", "requests": 0, "ok": 0, "errors": 0, "errors_by_kind": {},
         "first_error_by_kind": {}, "error_rate": 0, "abandoned": 0, "cut": 0,
         "ttft_s": {}, "itl_s": {}, "tpot_s": {}, "e2e_s": {}, "output_tokens_per_s": 0,
         "requests_per_s": 0, "window_s": 1, "variants": {}, "no_terminator": 0,
         "token_events_by_kind": {}, "config": {}, "prompt_cache": block}
    )  # fmt: skip
    assert summary.as_dict()["prompt_cache"] == block


def test_no_block_when_no_usage_speaks_of_caching() -> None:
    assert prompt_cache([record(0, 10, None, 5)]) is None
    assert prompt_cache([]) is None
