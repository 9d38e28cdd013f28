"""From records to the run summary, with numpy alone. No I/O, no clock.

The summary is what a run shows on the terminal the moment its load ends, so it is
computed from the records straight into arrays, without the frames the files and the
report's figures are drawn from (``harness.analysis.frames``, pandas).

What counts where (the README's definitions, in code):

* Latency figures (TTFT, ITL, TPOT, E2E) use requests that *started* inside the
  measurement window, so warm-up and cool-down are left out. TTFT and ITL use requests
  that ended ``ok`` or were ``cut`` by the client's own bound; TPOT and E2E use ``ok``
  ones only. Failed and abandoned requests never enter latency figures.
* Throughput counts what *happened* inside the window: token-bearing events that
  arrived in it and requests that completed in it, divided by its length.
* ``error_rate`` is errors over requests that ended (abandoned ones are neither).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.record import Outcome, RequestRecord, TokenSource, span_s

__all__ = [
    "MET_WITHOUT_FIGURE",
    "QUANTILES",
    "SLO_FIGURES",
    "Window",
    "clock_stamps",
    "distribution",
    "itl_request_mean_s",
    "meets_slo",
    "merged_reads_share",
    "summarize",
]

#: The quantiles every latency figure reports, by their names in summary.json.
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
#: Relative disagreement between usage and event counts worth a flag.
TOKEN_DISAGREEMENT = 0.05
#: The per-request figure each ``--slo`` target judges, by the target's name.
SLO_FIGURES = {"ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_s", "itl": "itl_request_mean_s"}
#: Targets a request without the figure meets (a one-token answer has no gaps to judge).
MET_WITHOUT_FIGURE = ("tpot", "itl")

_LATENCY_OUTCOMES = (Outcome.OK, Outcome.CUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """The measurement window, in the records' nanoseconds: [start_ns, end_ns)."""

    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return max(self.end_ns - self.start_ns, 1) / 1e9

    @classmethod
    def around(
        cls, records: Sequence[RequestRecord], *, warmup_s: float = 0.0, cooldown_s: float = 0.0
    ) -> Window:
        """The run's span (first start to last end) less warm-up and cool-down."""
        starts = [r.t_due_ns for r in records]
        ends = [r.t_end_ns for r in records if r.t_end_ns is not None]
        if not starts:
            return cls(start_ns=0, end_ns=1)
        start = min(starts) + int(warmup_s * 1e9)
        end = max(ends or starts) - int(cooldown_s * 1e9)
        return cls(start_ns=start, end_ns=max(end, start + 1))


def distribution(values: Iterable[float | None] | np.ndarray[Any, Any]) -> dict[str, float | None]:
    """p50, p90, p95, p99, p99.9, mean and max of ``values`` (None and NaN left out; the
    quantiles interpolate linearly, as numpy's and pandas' do)."""
    to_numpy = getattr(values, "to_numpy", None)  # a pandas Series, whatever its dtype
    if to_numpy is not None:
        array = to_numpy(dtype=float, na_value=np.nan)
    elif isinstance(values, np.ndarray):
        array = values.astype(float, copy=False)
    else:
        array = _floats(values)
    array = array[~np.isnan(array)]
    if not array.size:
        return {**dict.fromkeys([*QUANTILES, "mean", "max"]), "count": 0}
    quantiles = np.quantile(array, list(QUANTILES.values()))
    result: dict[str, float | None] = {
        name: float(value) for name, value in zip(QUANTILES, quantiles, strict=True)
    }
    result["mean"] = float(array.mean())
    result["max"] = float(array.max())
    result["count"] = int(array.size)
    return result


def _floats(values: Iterable[float | None]) -> np.ndarray[Any, Any]:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _tokens(
    records: Sequence[RequestRecord],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every token-bearing event of ``records``: the index of its record and its arrival."""
    lengths = np.fromiter((len(r.token_times_ns) for r in records), np.int64, len(records))
    total = int(lengths.sum())
    times = np.fromiter(
        itertools.chain.from_iterable(r.token_times_ns for r in records), np.int64, total
    )
    return np.repeat(np.arange(len(records)), lengths), times


def _gaps_s(
    owners: np.ndarray[Any, Any], times: np.ndarray[Any, Any], chosen: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The gaps between consecutive token events of each ``chosen`` record (a mask over
    the records), in seconds, given every token event's record and arrival (``_tokens``)."""
    if times.size < 2:
        return np.empty(0)
    later = owners[1:]
    keep = (later == owners[:-1]) & chosen[later]
    return np.diff(times)[keep] / 1e9


def itl_request_mean_s(r: RequestRecord) -> float | None:
    """A request's mean gap between token events: (E2E - TTFT) / (events - 1)."""
    n = len(r.token_times_ns)
    ttft, e2e = r.ttft_s, r.e2e_s
    return (e2e - ttft) / (n - 1) if n > 1 and e2e and ttft else None


def _first_errors(errors: Sequence[RequestRecord]) -> dict[str, str]:
    """The first message of each error kind, by when its request was sent."""
    first: dict[str, str] = {}
    for r in sorted(errors, key=lambda r: r.t_sent_ns):
        if r.error_kind is not None and r.error_kind.value not in first:
            first[r.error_kind.value] = str(r.error_message)
    return first


def summarize(
    records: Sequence[RequestRecord],
    *,
    window: Window | None = None,
    slo: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The run summary: counts, latency distributions, throughput, goodput, variants.

    Args:
        records: every record of the run (or of one segment of a sweep).
        window: the measurement window; None takes the records' whole span.
        slo: per-request targets in seconds, keyed ``ttft``, ``tpot``, ``e2e`` or
            ``itl`` (the request's mean gap); goodput counts requests meeting all.

    Returns:
        A JSON-able dict; its keys are those of ``summary.json``.
    """
    window = window or Window.around(records)
    start, end = window.start_ns, window.end_ns
    measured = [r for r in records if start <= r.t_due_ns < end]
    ended = [r for r in measured if r.outcome is not Outcome.ABANDONED]
    errors = [r for r in ended if r.outcome is Outcome.ERROR]
    latency = [r for r in measured if r.outcome in _LATENCY_OUTCOMES]
    ok = [r for r in measured if r.outcome is Outcome.OK]
    completed_ok = sum(
        1
        for r in records
        if r.outcome is Outcome.OK and r.t_end_ns is not None and start <= r.t_end_ns < end
    )
    # a request's output tokens spread over its token events, so usage counts weigh in
    owners, times = _tokens(records)
    weights = np.fromiter(
        (r.output_tokens / max(len(r.token_times_ns), 1) for r in records), float, len(records)
    )
    arrived = (times >= start) & (times < end)
    output_tokens_in_window = float(weights[owners[arrived]].sum())
    kinds = Counter(r.error_kind.value for r in errors if r.error_kind is not None)
    summary: dict[str, Any] = {
        "requests": len(measured),
        "ok": len(ok),
        "errors": len(errors),
        "errors_by_kind": dict(kinds.most_common()),
        "first_error_by_kind": _first_errors(errors),
        "error_rate": len(errors) / len(ended) if ended else 0.0,
        "abandoned": sum(1 for r in measured if r.outcome is Outcome.ABANDONED),
        "cut": sum(1 for r in measured if r.outcome is Outcome.CUT),
        "ttft_s": distribution(r.ttft_s for r in latency),
        "itl_s": distribution(_gaps_s(owners, times, _with_ids_of(latency, records))),
        "tpot_s": distribution(r.tpot_s for r in ok),
        "e2e_s": distribution(r.e2e_s for r in ok),
        "output_tokens_per_s": output_tokens_in_window / window.seconds,
        "requests_per_s": completed_ok / window.seconds,
        "window_s": window.seconds,
        "variants": _variants(latency, ok),
        # ok answers that ended without the stream's terminator: a habit, not an error
        "no_terminator": sum(1 for r in ok if not r.done_sentinel),
        "token_events_by_kind": {
            kind: sum((r.token_kinds or {}).get(kind) or 0 for r in ok)
            for kind in ("text", "reasoning", "tool_call")
        },
    }
    if any(r.t_scheduled_ns is not None for r in latency):  # open loop: from when it was due
        summary["ttft_from_scheduled_s"] = distribution(r.ttft_from_scheduled_s for r in latency)
    if (clock := clock_stamps(records)) is not None:
        summary["clock"] = clock
    if slo:
        good = [r for r in ok if meets_slo(r, slo)]
        summary["goodput"] = {
            "slo": dict(slo),
            "requests_per_s": len(good) / window.seconds,
            "share": len(good) / len(ok) if ok else 0.0,
        }
    return summary


def _with_ids_of(
    chosen: Sequence[RequestRecord], records: Sequence[RequestRecord]
) -> np.ndarray[Any, Any]:
    """A mask over ``records``: those whose request id is one of ``chosen``'s (their
    token events are measured together, whatever record holds them)."""
    ids = {r.request_id for r in chosen}
    return np.fromiter((r.request_id in ids for r in records), bool, len(records))


def meets_slo(record: RequestRecord, slo: Mapping[str, float]) -> bool:
    """Whether ``record`` met every target of ``slo`` (seconds, keyed ``ttft``, ``tpot``,
    ``e2e`` or ``itl``); a request without a gap meets ``tpot`` and ``itl``."""
    for name, limit in slo.items():
        value = itl_request_mean_s(record) if name == "itl" else getattr(record, SLO_FIGURES[name])
        if value is None:
            if name not in MET_WITHOUT_FIGURE:
                return False
        elif not value <= limit:
            return False
    return True


def _variants(latency: Sequence[RequestRecord], ok: Sequence[RequestRecord]) -> dict[str, Any]:
    """The figures other tools report under the same names, side by side with ours."""
    # (tokens the usage reports, token events) of each answer with a usage report
    usage = [
        (r.usage_output_tokens, len(r.token_times_ns))
        for r in ok
        if r.usage_output_tokens is not None
    ]
    disagree = None
    if usage:
        off = sum(
            1 for said, events in usage if abs(said - events) / max(events, 1) > TOKEN_DISAGREEMENT
        )
        disagree = off / len(usage)
    return {
        "ttft_first_byte_s": distribution(span_s(r.t_sent_ns, r.t_first_byte_ns) for r in latency),
        "ttft_first_event_s": distribution(
            span_s(r.t_sent_ns, r.t_first_event_ns) for r in latency
        ),
        "ttft_first_token_s": distribution(r.ttft_s for r in latency),
        "ttft_first_answer_s": distribution(
            span_s(r.t_sent_ns, r.t_first_answer_ns) for r in latency
        ),
        "itl_request_mean_s": distribution(itl_request_mean_s(r) for r in ok),
        "output_tokens_from_usage": sum(said for said, _ in usage) if usage else None,
        "output_tokens_from_events": sum(len(r.token_times_ns) for r in ok),
        "token_counts_disagree_share": disagree,
        "token_counts_disagree": bool(disagree is not None and disagree > 0),
        "token_source": _token_source(len(usage), len(ok)),
    }


def _token_source(with_usage: int, requests: int) -> str:
    if not with_usage:
        return TokenSource.EVENTS.value
    return TokenSource.USAGE.value if with_usage == requests else "mixed"


def clock_stamps(records: Iterable[RequestRecord]) -> dict[str, Any] | None:
    """Where the arrival stamps came from, and how far user-space stamps trailed the kernel's.

    Returns:
        None unless some record keeps both stamps (the kernel transport); else the
        count of records per ``clock_source`` and the distributions (seconds) of the
        user-space stamp minus the kernel's, for first tokens and for every token.
    """
    sources: dict[str, int] = {}
    first: list[int] = []
    every: list[np.ndarray[Any, Any]] = []
    for r in records:
        sources[r.clock_source] = sources.get(r.clock_source, 0) + 1
        if r.t_first_token_user_ns is not None and r.t_first_token_ns is not None:
            first.append(r.t_first_token_user_ns - r.t_first_token_ns)
        if r.token_times_user_ns:
            users = np.asarray(r.token_times_user_ns, dtype=np.int64)
            every.append(users - np.asarray(r.token_times_ns[: len(users)], dtype=np.int64))
    if not first:
        return None
    return {
        "sources": sources,
        "first_token_user_lag_s": distribution(np.asarray(first, dtype=float) / 1e9),
        "token_user_lag_s": distribution(
            np.concatenate(every).astype(float) / 1e9 if every else np.empty(0)
        ),
    }


def merged_reads_share(records: Sequence[RequestRecord]) -> float | None:
    """The share of token-bearing reads (a request's token events that share one arrival
    stamp) that carried more than one token event."""
    owners, times = _tokens(records)
    if not times.size:
        return None
    order = np.lexsort((times, owners))
    owners, times = owners[order], times[order]
    starts = np.ones(times.size, dtype=bool)
    starts[1:] = (owners[1:] != owners[:-1]) | (times[1:] != times[:-1])
    sizes = np.diff(np.append(np.flatnonzero(starts), times.size))
    return float((sizes > 1).mean())
