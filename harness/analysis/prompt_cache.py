"""The server's prompt cache as its usage reports it: the share of prompt tokens it
served from cache, and TTFT split by hit and miss. No I/O, no clock.

A request is a *hit* when the server reported some of its prompt tokens cached (OpenAI
``prompt_tokens_details.cached_tokens``, Anthropic ``cache_read_input_tokens`` above 0),
a *miss* when it reported none. Requests whose usage says nothing about caching are in
neither; a run where none says anything has no ``prompt_cache`` block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.analysis.summary import Window, distribution
from harness.record import Outcome, RequestRecord

__all__ = ["prompt_cache"]

_MEASURED = (Outcome.OK, Outcome.CUT)


def prompt_cache(
    records: Sequence[RequestRecord], window: Window | None = None
) -> dict[str, Any] | None:
    """The ``prompt_cache`` block of a summary, over the requests that started inside
    ``window`` and ended ``ok`` or ``cut`` (None when no such request reported its cached
    tokens).

    Returns:
        ``cached_share`` (cached over prompt tokens, summed), ``prompt_tokens``,
        ``cached_tokens``, ``hits``, ``misses``, and ``ttft_hit_s`` / ``ttft_miss_s``
        distributions.
    """
    window = window or Window.around(records)
    rows = [
        (r.prompt_tokens, r.cached_tokens, r.ttft_s)
        for r in records
        if r.cached_tokens is not None
        and r.prompt_tokens is not None
        and r.outcome in _MEASURED
        and window.start_ns <= r.t_due_ns < window.end_ns
    ]
    if not rows:
        return None
    prompt = sum(p for p, _, _ in rows)
    cached = sum(c for _, c, _ in rows)
    hits = [ttft for _, c, ttft in rows if c > 0]
    misses = [ttft for _, c, ttft in rows if c <= 0]
    return {
        "cached_share": cached / prompt if prompt else None,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "hits": len(hits),
        "misses": len(misses),
        "ttft_hit_s": distribution(hits),
        "ttft_miss_s": distribution(misses),
    }
