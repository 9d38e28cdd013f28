"""What the reports call the figures of ``summary.json``: one set of labels for every format."""

from __future__ import annotations

__all__ = ["COLUMNS", "LATENCIES", "VARIANTS"]

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
