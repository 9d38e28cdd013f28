"""When an abandoned stream counts as stopped by the server. Pure: no I/O, no clock.

The rule, the same as ``check``'s ``disconnect.stops``: a stream the client closed at
``t_close`` that would have ended by itself ``remaining`` later was stopped by the server
when the server's count of running streams fell by it before
``t_close + LATE_SHARE * remaining``. Falling later means it ran to (nearly) its natural
end; a stream with less than ``MIN_REMAINING_NS`` left cannot show the difference.
``judge_fall`` is that rule for one stream.

``judge_by_gauge`` applies it to every abandoned stream of a run, from a gauge of running
requests sampled through the run. A gauge counts streams without naming them, so each
sample is set beside the count that a server which never stops would show at that
moment, made only of streams surely running there (so that timing noise can hide a stop,
never invent one):

* every stream from its first token to its last one (to its close, if abandoned), less
  a guard at both ends;
* every abandoned stream in its window, from a guard after its close to
  ``t_close + LATE_SHARE * remaining``.

A stream whose natural end cannot be told (no ``max_tokens``, no stream read to its end)
is watched for ``STILL_COUNTED_NS`` after its close instead: still counted then, it was
not stopped; dropped sooner, it cannot be told from a stream that ended by itself.

The guard (``GUARD_NS``, plus the fastest response-header round trip and half the
scrape's length) covers the gauge's own lag and the delays between the server's clock of
events and the client's. How far the gauge (less its baseline) falls short of that count
is how many of the windowed streams the server has dropped; they are taken in the order
of their closes. A stream dropped at any sample in its window was stopped; one never
dropped though the gauge was watched to the end of its window was not; the others cannot
be told. Traffic from other clients that leaves while the run goes on also lowers the
gauge and cannot be told from a stop.

A stream's natural end: ``t_sent`` + its TTFT (the run's median if it had no token) +
the run's median ITL for each further token-bearing event of a whole stream. A whole
stream has ``max_tokens`` tokens (``tokens_per_event`` of them per event, from streams
that reported usage), or, where no ``max_tokens`` was asked for or the streams that ran
to their end were shorter, the median length of those.
"""

from __future__ import annotations

import enum
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.record import Outcome, RequestRecord, TokenSource

# numpy is imported by the functions that use it, after the load: a run imports this
# module before its first request
__all__ = [
    "GUARD_NS",
    "LATE_SHARE",
    "MIN_REMAINING_NS",
    "STILL_COUNTED_NS",
    "Fall",
    "Pace",
    "Sample",
    "judge_by_gauge",
    "judge_fall",
    "natural_end_ns",
    "pace_of",
    "settling",
    "watch_until_ns",
]

#: A server that falls back only after this share of the stream's remaining time did
#: not stop; it ran to (nearly) the end.
LATE_SHARE = 0.5
#: Streams with less time than this left cannot show the difference.
MIN_REMAINING_NS = 500_000_000
#: How late a server's gauge may follow the streams it counts.
GUARD_NS = 100_000_000
#: Where a stream's natural end is unknown: still counted this long after its close, it
#: was not stopped (a server that stops on disconnect does so at its next write).
STILL_COUNTED_NS = 1_000_000_000


class Fall(enum.StrEnum):
    """What the fall of a server's count says about one abandoned stream."""

    STOPPED = "stopped"  # it fell well before the stream would have ended by itself
    KEPT_ON = "kept generating"  # it fell late, or not at all while watched
    UNDECIDED = "undecided"  # the stream had too little left to tell


class Sample(NamedTuple):
    """A gauge reading: the middle of its scrape (on the records' clock), the value, and
    the scrape's length (the server took the reading somewhere inside it)."""

    t_ns: int
    value: float
    spread_ns: int = 0


def judge_fall(fell_after_ns: int | None, remaining_ns: int | None) -> Fall:
    """The rule for one stream.

    Args:
        fell_after_ns: from the client's close to the server's count falling by the
            stream; None when it did not fall while watched.
        remaining_ns: how long the stream would still have run after the close.
    """
    if fell_after_ns is None:
        return Fall.KEPT_ON
    if remaining_ns is None or remaining_ns < MIN_REMAINING_NS:
        return Fall.UNDECIDED
    if fell_after_ns >= LATE_SHARE * remaining_ns:
        return Fall.KEPT_ON
    return Fall.STOPPED


@dataclass(frozen=True, slots=True)
class Pace:
    """How a run's streams went, to tell when an abandoned one would have ended."""

    ttft_ns: int | None  # median TTFT
    itl_ns: int | None  # median ITL
    events: float | None  # token-bearing events in a whole stream
    events_from: str | None  # "max_tokens" or "typical output"


def pace_of(records: Sequence[RequestRecord], *, max_tokens: int | None) -> Pace:
    """The run's median TTFT and ITL and the length of a whole stream (see the module)."""
    import numpy as np

    ttfts = [r.t_first_token_ns - r.t_sent_ns for r in records if r.t_first_token_ns is not None]
    gaps = [np.diff(np.asarray(r.token_times_ns, dtype=np.int64)) for r in records]
    gaps = [g for g in gaps if g.size]
    whole = [r for r in records if r.outcome is Outcome.OK and r.token_times_ns]
    events: float | None = None
    events_from = None
    if max_tokens is not None:
        per_event = [
            r.output_tokens / len(r.token_times_ns)
            for r in whole
            if r.token_source is TokenSource.USAGE
        ]
        events = max_tokens / max(statistics.median(per_event), 1.0) if per_event else max_tokens
        events_from = "max_tokens"
    if whole:
        typical = float(statistics.median(len(r.token_times_ns) for r in whole))
        if events is None or typical < events:
            events, events_from = typical, "typical output"
    return Pace(
        ttft_ns=int(statistics.median(ttfts)) if ttfts else None,
        itl_ns=int(np.median(np.concatenate(gaps))) if gaps else None,
        events=events,
        events_from=events_from,
    )


def natural_end_ns(record: RequestRecord, pace: Pace) -> int | None:
    """When ``record``'s stream would have ended had the client read on (None: unknown)."""
    ttft: int | None
    if record.t_first_token_ns is not None:
        ttft = record.t_first_token_ns - record.t_sent_ns
    else:
        ttft = pace.ttft_ns
    if ttft is None or pace.itl_ns is None or pace.events is None:
        return None
    return record.t_sent_ns + ttft + int(max(pace.events - 1, 0) * pace.itl_ns)


def judge_by_gauge(
    records: Sequence[RequestRecord],
    samples: Sequence[Sample | tuple[int, float] | tuple[int, float, int]],
    *,
    baseline: float,
    max_tokens: int | None = None,
    guard_ns: int = GUARD_NS,
) -> dict[str, Any]:
    """Judge every abandoned stream of a run by the server's sampled gauge (see the module).

    Args:
        records: the run's records.
        samples: the gauge through the run and after it, on the records' clock.
        baseline: the gauge before the run.
        max_tokens: the output length the requests asked for, if they did.
        guard_ns: how late the gauge may follow the streams it counts.

    Returns:
        ``judged``, ``stopped``, ``kept_generating`` and ``undecided`` counts (with
        ``undecided_why``), the evidence (the estimate of the streams' natural ends, the
        time they had left at their close, when the gauge fell, when it was back at its
        baseline against when the streams would have ended) and a one-line ``verdict``.
    """
    import numpy as np

    points = sorted(Sample(*s) for s in samples)
    abandoned = [
        (r, r.t_close_ns)
        for r in records
        if r.outcome is Outcome.ABANDONED and r.t_close_ns is not None
    ]  # each with its close
    pace = pace_of(records, max_tokens=max_tokens)
    round_trips = [r.t_headers_ns - r.t_sent_ns for r in records if r.t_headers_ns is not None]
    guard_ns += min(round_trips, default=0)

    # every stream, while surely running on the server
    running = [r for r in records if r.token_times_ns]
    starts = np.array([r.token_times_ns[0] for r in running], dtype=np.int64)
    ends = np.array(
        [r.t_close_ns if r.t_close_ns is not None else r.token_times_ns[-1] for r in running],
        dtype=np.int64,
    )

    why: Counter[str] = Counter()
    windowed: list[tuple[int, int, int | None]] = []  # close, window end, remaining
    remaining_all: list[int] = []
    for record, close in abandoned:
        end = natural_end_ns(record, pace)
        if end is None:  # only a gauge still up long after the close can tell
            windowed.append((close, close + STILL_COUNTED_NS, None))
            continue
        remaining = end - close
        remaining_all.append(remaining)
        if remaining < MIN_REMAINING_NS:
            why[f"less than {MIN_REMAINING_NS / 1e9:g} s left at the close"] += 1
            continue
        windowed.append((close, close + int(LATE_SHARE * remaining), remaining))
    windowed.sort()
    closes = np.array([w[0] for w in windowed], dtype=np.int64)
    window_ends = np.array([w[1] for w in windowed], dtype=np.int64)
    fell = np.full(len(windowed), -1, dtype=np.int64)
    last_seen = np.full(len(windowed), -1, dtype=np.int64)

    for point in points:
        guard = guard_ns + point.spread_ns // 2
        t = point.t_ns
        sure = int(np.count_nonzero((starts + guard <= t) & (ends - guard > t)))
        inside = np.nonzero((closes + guard <= t) & (window_ends > t))[0]  # in close order
        if not inside.size:
            continue
        last_seen[inside] = t
        shortfall = sure + inside.size - (point.value - baseline)
        dropped = inside[: max(0, min(int(shortfall + 0.5), inside.size))]
        first = dropped[fell[dropped] < 0]
        fell[first] = t - closes[first]

    gaps = np.diff(np.array([p.t_ns for p in points], dtype=np.int64))
    interval_ns = int(np.median(gaps)) if gaps.size else None
    tolerance = max(2 * (interval_ns or 0), guard_ns)
    verdicts: list[Fall] = []
    fell_after: list[int] = []
    for i, (_close, window_end, left) in enumerate(windowed):
        if fell[i] >= 0 and left is None:
            why["it fell soon after the close, and when it would have ended is unknown"] += 1
        elif fell[i] >= 0:
            verdicts.append(judge_fall(int(fell[i]), left))
            fell_after.append(int(fell[i]))
        elif last_seen[i] >= window_end - tolerance:
            verdicts.append(judge_fall(None, left))
        else:
            why["the gauge was not read to the end of its window"] += 1
    stopped = verdicts.count(Fall.STOPPED)
    kept = verdicts.count(Fall.KEPT_ON)

    last_close = max((close for _, close in abandoned), default=None)
    back = None
    if last_close is not None:
        back = next((p.t_ns for p in points if p.t_ns >= last_close and p.value <= baseline), None)
    latest_end = max((c + r for c, _, r in windowed if r is not None), default=None)
    judgement: dict[str, Any] = {
        "judged": stopped + kept,
        "stopped": stopped,
        "kept_generating": kept,
        "undecided": len(abandoned) - stopped - kept,
        "undecided_why": dict(why),
        "samples": len(points),
        "interval_s": _s(interval_ns),
        "estimate": {
            "ttft_s": _s(pace.ttft_ns),
            "itl_s": _s(pace.itl_ns),
            "stream_events": pace.events,
            "stream_events_from": pace.events_from,
        },
        "remaining_s": _spread(remaining_all),
        "fell_after_close_s": _spread(fell_after),
        "back_to_baseline_after_last_close_s": _since(back, last_close),
        "would_have_ended_after_last_close_s": _since(latest_end, last_close),
    }
    judgement["verdict"] = _verdict(judgement)
    return judgement


def _s(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


def _since(t_ns: int | None, origin_ns: int | None) -> float | None:
    return None if t_ns is None or origin_ns is None else (t_ns - origin_ns) / 1e9


def _spread(values_ns: list[int]) -> dict[str, float | None]:
    if not values_ns:
        return {"p50": None, "max": None}
    return {"p50": statistics.median(values_ns) / 1e9, "max": max(values_ns) / 1e9}


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _verdict(j: dict[str, Any]) -> str:
    """One line: what the gauge says, with when it fell against when the streams would
    have ended."""
    left = j["remaining_s"]["p50"]
    if not j["judged"]:
        why = "; ".join(f"{n}: {reason}" for reason, n in j["undecided_why"].items())
        return f"the gauge cannot tell whether the server stopped them ({why or 'no samples'})"
    if j["kept_generating"]:
        back = j["back_to_baseline_after_last_close_s"]
        fell = (
            f"it was back at its baseline {_secs(back)} after the last close"
            if back is not None
            else "it was not back at its baseline while watched"
        )
        if left is None:  # no natural end known: the gauge stayed up after the closes
            return (
                f"the server kept generating for {j['kept_generating']} of the {j['judged']} "
                f"streams the gauge could judge: it still counted them "
                f"{STILL_COUNTED_NS / 1e9:g} s after their close; {fell}"
            )
        return (
            f"the server kept generating for {j['kept_generating']} of the {j['judged']} "
            f"streams the gauge could judge: it did not fall by them within half the time "
            f"they had left ({_secs(left)} p50); {fell}, and left alone they would have ended "
            f"{_secs(j['would_have_ended_after_last_close_s'])} after it"
        )
    return (
        f"the server stopped all {j['judged']} streams the gauge could judge: it had fallen by "
        f"each within {_secs(j['fell_after_close_s']['p50'])} (p50) of its close, when they had "
        f"{_secs(left)} (p50) left"
    )


def watch_until_ns(records: Sequence[RequestRecord], *, max_tokens: int | None) -> int | None:
    """When the last abandoned stream would have ended by itself (or, where that is
    unknown, ``STILL_COUNTED_NS`` after its close): the gauge must be read until then, or
    until it is back at its baseline (None: nothing was abandoned)."""
    pace = pace_of(records, max_tokens=max_tokens)
    ends = []
    for record in records:
        if record.outcome is Outcome.ABANDONED and record.t_close_ns is not None:
            end = natural_end_ns(record, pace)
            ends.append(end if end is not None else record.t_close_ns + STILL_COUNTED_NS)
    return max(ends, default=None)


def settling(samples: Sequence[Sample], *, baseline: float, since_ns: int) -> dict[str, Any]:
    """The gauge after the load: ``after_run`` (its first reading from ``since_ns``),
    ``returned`` (to ``baseline`` or below) and ``seconds_to_baseline``."""
    after = [Sample(*s) for s in samples if s[0] >= since_ns]
    back = next((s for s in after if s.value <= baseline), None)
    return {
        "baseline": baseline,
        "after_run": after[0].value if after else None,
        "returned": back is not None,
        "seconds_to_baseline": None if back is None else (back.t_ns - since_ns) / 1e9,
    }
