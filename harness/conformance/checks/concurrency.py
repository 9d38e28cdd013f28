"""Concurrency: streams started together must run side by side.

An endpoint that serializes them (the classic cause: a blocking call, such as a
synchronous SDK client or ``time.sleep``, inside an async handler, which stalls the whole
event loop) shows one of two shapes: each stream starts only after the previous one
ended, or the time to first token grows with the position in the queue, about one
unloaded TTFT per stream ahead.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

from harness.conformance.captured import Purpose
from harness.conformance.checks.evidence import grouped, ms, of_request
from harness.conformance.model import CheckFactory, Evidence, Finding, Severity, Skip
from harness.conformance.reading import Reading, Suite

__all__ = ["CHECKS"]

#: Each step of the queue adds at least this share of the unloaded TTFT.
QUEUE_STEP_SHARE = 0.5
#: ... and the whole queue at least this share of one unloaded TTFT per stream ahead,
QUEUE_TOTAL_SHARE = 0.8
#: ... and at least this much, so that jitter is never taken for it.
QUEUE_FLOOR_NS = 50_000_000
#: Streams shorter than this could not overlap visibly anyway.
MIN_STREAM_NS = 50_000_000


def _timeline(reading: Reading) -> str:
    exchange = reading.exchange
    first = exchange.t_sent_ns + (reading.ttft_ns or 0)
    end = exchange.t_end_ns or first
    return f"first token {ms(first - exchange.t_sent_ns)}, end {ms(end - exchange.t_sent_ns)}"


def _overlap(suite: Suite) -> Sequence[Finding] | Skip:
    burst = [r for r in suite.of(Purpose.BURST) if r.exchange.ok and r.ttft_ns is not None]
    if len(burst) < 2:
        return Skip("fewer than two streams of the burst carried a token")
    ordinary = [r.ttft_ns for r in suite.of(Purpose.ORDINARY) if r.ttft_ns is not None]
    if not ordinary:
        return Skip("no ordinary stream carried a token, so there is no unloaded TTFT")
    unloaded = statistics.median(ordinary)
    burst.sort(key=lambda r: r.exchange.t_sent_ns + (r.ttft_ns or 0))
    start = min(r.exchange.t_sent_ns for r in burst)
    evidence = tuple(
        Evidence(
            request=r.label,
            detail=f"sent +{ms(r.exchange.t_sent_ns - start)}, "
            + _timeline(r).replace("first token ", "first token +").replace("end ", "end +"),
        )
        for r in burst
    )
    firsts = [r.exchange.t_sent_ns + (r.ttft_ns or 0) for r in burst]
    ends = [r.exchange.t_end_ns or f for r, f in zip(burst, firsts, strict=True)]
    durations = [e - f for e, f in zip(ends, firsts, strict=True)]
    serial = all(firsts[k] >= ends[k - 1] for k in range(1, len(burst)))
    if serial and statistics.median(durations) >= MIN_STREAM_NS:
        message = (
            f"{len(burst)} streams started together ran one after another: each began "
            "only when the one before it ended"
        )
        return [OVERLAP.finding(message, *evidence)]
    ttfts = sorted(r.ttft_ns or 0 for r in burst)
    steps = [b - a for a, b in itertools.pairwise(ttfts)]
    grows = all(step >= QUEUE_STEP_SHARE * unloaded for step in steps)
    least = max(QUEUE_FLOOR_NS, QUEUE_TOTAL_SHARE * (len(burst) - 1) * unloaded)
    if grows and ttfts[-1] - ttfts[0] >= least:
        message = (
            f"time to first token grows with the position in the queue ({ms(ttfts[0])} to "
            f"{ms(ttfts[-1])}; unloaded {ms(unloaded)}): something blocks the server "
            "between streams, such as a synchronous call in an async handler"
        )
        return [OVERLAP.finding(message, *evidence)]
    return []


def _burst_status(suite: Suite) -> Sequence[Finding] | Skip:
    burst = suite.of(Purpose.BURST)
    if not burst:
        return Skip("no burst was sent")
    items = []
    for reading in burst:
        exchange = reading.exchange
        if exchange.ok and exchange.error is None:
            continue
        if exchange.status is None:
            what = "no response"
        elif not exchange.ok:
            what = f"HTTP {exchange.status}"
        else:
            what = f"the stream {exchange.ending.value}"
        items.append(
            (
                f"{len(burst)} streams at once: some failed ({what})",
                of_request(reading, exchange.error or what),
            )
        )
    return grouped(BURST_STATUS, items)


check = CheckFactory("concurrency")

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
OVERLAP = check("concurrency.overlap", Severity.FAIL, "concurrent streams overlap",
                "an endpoint that serializes streams (a blocking call in an async handler) "
                "makes every user wait for all the others", _overlap)
BURST_STATUS = check("concurrency.burst-status", Severity.WARN, "a small burst is served",
                     "a handful of simultaneous streams should not be refused or fail",
                     _burst_status)
# fmt: on

CHECKS = (OVERLAP, BURST_STATUS)
