"""Streaming behaviour: does the endpoint really stream, steadily, and say it is alive?

The classic failure is a buffer between the generator and the client (a proxy, a
middleware, gzip, a handler that collects the answer first): every token then arrives in
one burst after a silence, and the first token comes later the longer the answer is. A
server that generates fast after a long think shows the burst but not the growth, so
both are needed for a FAIL.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Callable, Sequence

from harness.conformance.captured import Ending, Purpose
from harness.conformance.checks.evidence import Streams, at_event, grouped, ms, of_request, over
from harness.conformance.model import CheckFactory, Evidence, Finding, Severity, Skip
from harness.conformance.reading import Digest, ReadEvent, Reading, Spot, Suite

__all__ = ["CHECKS", "GapDigest"]

#: Streams with fewer token events than this say nothing about how they are delivered.
MIN_TOKENS = 8
#: All tokens within this share of the time to the last token: one burst.
BURST_SHARE = 0.1
#: The long stream's first token this much later than the ordinary streams': it grows.
GROWTH_FACTOR = 1.5
GROWTH_FLOOR_NS = 50_000_000
STALL_NS = 1_000_000_000
STALL_FACTOR = 10
LATE_HEADERS_NS = 500_000_000
SILENCE_NS = 1_000_000_000
CLUMP_TOKENS = 5
CLUMP_MIN_TOKENS = 20
#: Clumps count only when a silence this long separates them: a slow client also reads
#: several tokens at once, but it reads again at once.
CLUMP_GAP_NS = 100_000_000


class GapDigest(Digest):
    """The longest gap between two token events of a stream: how long, the position of
    the token event that ended it (from 1), and where that event is."""

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self._previous: int | None = None
        self._tokens = 0
        self.longest: tuple[int, int, Spot] | None = None

    def event(self, event: ReadEvent) -> None:
        if not event.token:
            return
        previous, self._previous = self._previous, event.arrival_ns
        self._tokens += 1
        if previous is not None:
            gap = event.arrival_ns - previous
            if self.longest is None or gap > self.longest[0]:
                self.longest = (gap, self._tokens - 1, event.spot)


def _delivered(suite: Suite) -> tuple[Reading, ...]:
    """Streams read one at a time, to their end or to the client's bound."""
    return tuple(
        r
        for r in suite.streams
        if r.exchange.purpose is not Purpose.BURST
        and r.exchange.ending in (Ending.EOF, Ending.BOUND)
    )


def _with_tokens(least: int, words: str | None = None) -> Callable[[Suite], Streams | Skip]:
    """Picks the delivered streams that carried at least ``least`` token events."""

    def select(suite: Suite) -> Streams | Skip:
        judged = tuple(r for r in _delivered(suite) if len(r.token_times_ns) >= least)
        return judged or Skip(f"no stream carried {words or least} or more token events")

    return select


def _with_headers(suite: Suite) -> Streams | Skip:
    judged = tuple(r for r in _delivered(suite) if r.exchange.t_headers_ns is not None)
    return judged or Skip("no stream was received")


def _is_burst(reading: Reading) -> bool:
    times = reading.token_times_ns
    to_last = times[-1] - reading.exchange.t_sent_ns
    return to_last > 0 and times[-1] - times[0] < BURST_SHARE * to_last


def _incremental(suite: Suite) -> Sequence[Finding] | Skip:
    judged = _with_tokens(MIN_TOKENS)(suite)
    if isinstance(judged, Skip):
        return judged
    ordinary = [r.ttft_ns for r in suite.of(Purpose.ORDINARY) if r.ttft_ns is not None]
    reference = statistics.median(ordinary) if ordinary else None
    asked = {r.exchange.asked_tokens for r in suite.of(Purpose.ORDINARY)}
    fails: list[tuple[str, Evidence]] = []
    warns: list[tuple[str, Evidence]] = []
    for reading in judged:
        if not _is_burst(reading):
            continue
        times = reading.token_times_ns
        detail = (
            f"{len(times)} token events within {ms(times[-1] - times[0])}, the first "
            f"{ms(reading.ttft_ns)} after the request"
        )
        longer = reading.exchange.asked_tokens is not None and all(
            a is not None and a < reading.exchange.asked_tokens for a in asked
        )
        ttft = reading.ttft_ns or 0
        if longer and reference is not None:
            if ttft >= GROWTH_FACTOR * reference + GROWTH_FLOOR_NS:
                fails.append(
                    (
                        "the answer arrives in one burst after a silence, later the "
                        "longer it is: something buffers the stream",
                        of_request(
                            reading,
                            f"{detail}; ordinary streams' first token after {ms(reference)}",
                        ),
                    )
                )
            continue
        if reading.exchange.purpose is Purpose.LONG or reference is None:
            warns.append(
                (
                    "the answer arrives in one burst after a silence; the request's "
                    "length could not be varied to tell a buffer from a fast generator",
                    of_request(reading, detail),
                )
            )
    return grouped(INCREMENTAL, fails) + grouped(INCREMENTAL, warns, Severity.WARN)


@over(_with_tokens(CLUMP_MIN_TOKENS))
def _clumped(judged: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in judged:
        per_read = Counter(reading.token_times_ns)
        typical = statistics.median(per_read.values())
        reads = sorted(per_read)
        gap = (
            statistics.median(b - a for a, b in itertools.pairwise(reads)) if len(reads) > 1 else 0
        )
        if typical >= CLUMP_TOKENS and gap >= CLUMP_GAP_NS and not _is_burst(reading):
            detail = f"typically {typical:g} tokens per read, {ms(gap)} apart"
            items.append(
                (
                    "tokens arrive in clumps: a buffer releases them in blocks",
                    of_request(reading, detail),
                )
            )
    return grouped(CLUMPED, items)


@over(_with_tokens(3, "three"))
def _stall(judged: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in judged:
        typical = statistics.median(b - a for a, b in itertools.pairwise(reading.token_times_ns))
        found = reading.digest(GapDigest).longest
        assert found is not None  # three token events or more: two gaps or more
        longest, position, spot = found
        if longest >= STALL_NS and longest >= STALL_FACTOR * typical:
            detail = f"{ms(longest)} before token event {position + 1}; typical gap {ms(typical)}"
            items.append(
                (
                    "the stream stalls mid-answer: idle timeouts may cut it there",
                    at_event(reading, spot, detail),
                )
            )
    return grouped(STALL, items)


@over(_with_headers)
def _early_headers(judged: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in judged:
        wait = (reading.exchange.t_headers_ns or 0) - reading.exchange.t_sent_ns
        if wait >= LATE_HEADERS_NS:
            items.append(
                (
                    "the headers come late: send them at once, so that clients and "
                    "proxies with a header timeout see a live request",
                    of_request(reading, f"headers after {ms(wait)}"),
                )
            )
    return grouped(EARLY_HEADERS, items)


@over(_with_headers)
def _keepalive(judged: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in judged:
        times = itertools.chain(
            [reading.exchange.t_headers_ns or 0], reading.exchange.chunks.arrivals_ns
        )
        longest = max((b - a for a, b in itertools.pairwise(times)), default=None)
        if longest is not None and longest >= SILENCE_NS:
            items.append(
                (
                    "no byte (no keep-alive comment) during a long wait: proxies and "
                    "clients with idle timeouts may close the stream",
                    of_request(reading, f"{ms(longest)} without a byte"),
                )
            )
    return grouped(KEEPALIVE, items)


check = CheckFactory("streaming")

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
INCREMENTAL = check("streaming.incremental", Severity.FAIL, "tokens arrive as generated",
                    "a stream delivered in one burst at the end is no stream (a buffering proxy)",
                    _incremental)
CLUMPED = check("streaming.clumped", Severity.WARN, "no clumps of tokens",
                "tokens released in blocks mean a buffer somewhere on the way", _clumped)
STALL = check("streaming.stall", Severity.WARN, "no stalls mid-answer",
              "a pause of a second or more among steady tokens trips idle timeouts", _stall)
EARLY_HEADERS = check("streaming.early-headers", Severity.INFO, "headers at once",
                      "headers sent before the first token show the request is alive",
                      _early_headers)
KEEPALIVE = check("streaming.keepalive", Severity.INFO, "keep-alives during long waits",
                  "a ':' comment every few seconds keeps proxies' idle timers from firing",
                  _keepalive)
# fmt: on

CHECKS = (INCREMENTAL, CLUMPED, STALL, EARLY_HEADERS, KEEPALIVE)
