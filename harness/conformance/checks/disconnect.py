"""Disconnect: after the client abandons a stream, the server stops producing for it.

Only the server can say so. The mock's ground truth says when it noticed the close and
what it wrote after; a Prometheus gauge of running requests must fall back to where it
was before the stream, and well before the stream would have ended by itself. Without
either, the check says "not verifiable" (INFO): it never passes on a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.conformance.captured import Ending, Purpose
from harness.conformance.checks.evidence import ms, of_request
from harness.conformance.model import CheckFactory, Finding, Passed, Severity, Skip
from harness.conformance.reading import Reading, Suite

__all__ = ["CHECKS"]

#: A server that falls back only after this share of the stream's remaining time did
#: not stop; it ran to (nearly) the end.
LATE_SHARE = 0.5
#: Streams with less time than this left cannot show the difference.
MIN_REMAINING_NS = 500_000_000
#: The endings of a stream that ran its whole length.
_READ_TO_END = (Ending.EOF, Ending.BOUND)
#: Tokens written more than this long after the close mean the server wrote on.
WRITE_ON_NS = 200_000_000


def _remaining_ns(suite: Suite, abandoned: Reading, t_close_ns: int) -> int | None:
    """How long the abandoned stream would still have run: the long stream (the same
    request) ran for its whole length, the abandoned one until the close."""
    for reading in suite.of(Purpose.LONG):
        exchange = reading.exchange
        if exchange.ok and exchange.t_end_ns is not None and exchange.ending in _READ_TO_END:
            length = exchange.t_end_ns - exchange.t_sent_ns
            return length - (t_close_ns - abandoned.exchange.t_sent_ns)
    return None


def _unverifiable(reason: str, reading: Reading | None = None) -> list[Finding]:
    evidence = () if reading is None else (of_request(reading),)
    return [STOPS.finding(f"not verifiable: {reason}", *evidence, severity=Severity.INFO)]


def _by_truth(reading: Reading, truth: Mapping[str, Any], t_close_ns: int) -> Any:
    writes = [t for t in truth.get("token_write_ns") or [] if isinstance(t, int)]
    after = [t for t in writes if t > t_close_ns + WRITE_ON_NS]
    detected = truth.get("disconnect_detected_ns")
    if after:
        detail = f"{len(after)} tokens written up to {ms(after[-1] - t_close_ns)} after the close"
        return [
            STOPS.finding(
                "the server kept writing after the client left", of_request(reading, detail)
            )
        ]
    if isinstance(detected, int):
        return Passed(
            f"the server noticed the close after {ms(max(detected - t_close_ns, 0))} "
            "and stopped (its ground truth)"
        )
    if truth.get("done"):
        return Passed("the server wrote nothing after the close (its ground truth)")
    return _unverifiable("the server's record of the stream is not finished", reading)


def _by_gauge(suite: Suite, reading: Reading, gauge: Mapping[str, Any], t_close_ns: int) -> Any:
    baseline, during = gauge.get("baseline"), gauge.get("during")
    if baseline is None or during is None or during <= baseline:
        return _unverifiable(
            f"the gauge did not count the stream (before {baseline}, during {during})", reading
        )
    seconds = gauge.get("seconds_to_baseline")
    if not gauge.get("returned") or seconds is None:
        detail = f"gauge {gauge.get('after_run')} against a baseline of {baseline}"
        return [
            STOPS.finding(
                f"the server's gauge stayed up for {gauge.get('timeout_s')} s "
                "after the client left",
                of_request(reading, detail),
            )
        ]
    remaining = _remaining_ns(suite, reading, t_close_ns)
    back_ns = int(seconds * 1e9)
    if remaining is None or remaining < MIN_REMAINING_NS:
        return _unverifiable(
            "the stream would have ended by itself about when the gauge fell back", reading
        )
    if back_ns >= LATE_SHARE * remaining:
        detail = f"back to baseline after {ms(back_ns)}; the stream had {ms(remaining)} left"
        return [
            STOPS.finding(
                "the server's gauge fell back only when the stream would have "
                "ended anyway: it kept producing",
                of_request(reading, detail),
            )
        ]
    return Passed(
        f"the gauge fell back {ms(back_ns)} after the close; the stream had {ms(remaining)} left"
    )


def _stops(suite: Suite) -> Sequence[Finding] | Skip | Passed:
    abandoned = suite.of(Purpose.ABANDON)
    if not abandoned:
        return Skip("no stream was abandoned")
    reading = abandoned[0]
    disconnect = suite.captured.disconnect
    if reading.exchange.ending is not Ending.ABANDONED or disconnect.t_close_ns is None:
        return _unverifiable(
            f"the stream ended ({reading.exchange.ending.value}) before the client left it", reading
        )
    if disconnect.source == "ground truth" and disconnect.truth is not None:
        return _by_truth(reading, disconnect.truth, disconnect.t_close_ns)
    if disconnect.source == "gauge" and disconnect.gauge is not None:
        return _by_gauge(suite, reading, disconnect.gauge, disconnect.t_close_ns)
    return _unverifiable(disconnect.reason or "no ground truth and no --metrics-url", reading)


check = CheckFactory("disconnect")

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
STOPS = check("disconnect.stops", Severity.FAIL, "abandoned streams stop",
              "a server that generates on for clients that left wastes capacity on nobody", _stops)
# fmt: on

CHECKS = (STOPS,)
