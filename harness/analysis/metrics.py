"""From records to figures: pandas frames and the run summary. No I/O, no clock.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.load.health import ClientSamples
from harness.record import Outcome, RequestRecord, TokenSource, span_s

__all__ = [
    "QUANTILES",
    "Window",
    "clock_stamps",
    "distribution",
    "meets_slo",
    "requests_frame",
    "summarize",
    "time_series",
    "tokens_frame",
]

#: The quantiles every latency figure reports, by their names in summary.json.
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
#: Relative disagreement between usage and event counts worth a flag.
TOKEN_DISAGREEMENT = 0.05

_LATENCY_OUTCOMES = (Outcome.OK.value, Outcome.CUT.value)


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


#: The frames last made of a list of records, by kind: a run's summary, its CSV files and
#: its report's figures read the same records, and each frame takes a fifth of a second
#: at 10,000 records. Records do not change once written; a list that grew is read again.
_LAST_FRAMES: dict[str, tuple[Sequence[RequestRecord], int, pd.DataFrame]] = {}


def _kept(kind: str, records: Iterable[RequestRecord]) -> pd.DataFrame | None:
    held = _LAST_FRAMES.get(kind)
    if held is not None and held[0] is records and held[1] == len(held[0]):
        return held[2]
    return None


def _keep(kind: str, records: Iterable[RequestRecord], frame: pd.DataFrame) -> pd.DataFrame:
    if isinstance(records, (list, tuple)):
        _LAST_FRAMES[kind] = (records, len(records), frame)
    return frame


def requests_frame(records: Iterable[RequestRecord]) -> pd.DataFrame:
    """One row per request, with every timing as seconds and the variants peers report.

    The frame of the same list asked for again is the same frame: read it, do not
    change it."""
    kept = _kept("requests", records)
    if kept is not None:
        return kept
    rows = []
    for r in records:
        n = len(r.token_times_ns)
        ttft = r.ttft_s
        e2e = r.e2e_s
        rows.append(
            {
                "request_id": r.request_id,
                "user": r.user,
                "turn": r.turn,
                "segment": r.segment,
                "outcome": r.outcome.value,
                "error_kind": r.error_kind.value if r.error_kind else None,
                "status": r.status,
                "t_scheduled_ns": r.t_scheduled_ns,
                "t_sent_ns": r.t_sent_ns,
                "t_first_token_ns": r.t_first_token_ns,
                "t_end_ns": r.t_end_ns,
                "ttft_s": ttft,
                "ttft_from_scheduled_s": r.ttft_from_scheduled_s,
                "ttft_first_event_s": span_s(r.t_sent_ns, r.t_first_event_ns),
                "ttft_first_byte_s": span_s(r.t_sent_ns, r.t_first_byte_ns),
                "ttft_answer_s": span_s(r.t_sent_ns, r.t_first_answer_ns),
                "e2e_s": e2e,
                "tpot_s": r.tpot_s,
                "itl_request_mean_s": (e2e - ttft) / (n - 1) if n > 1 and e2e and ttft else None,
                "output_tokens": r.output_tokens,
                "event_tokens": n,
                "usage_output_tokens": r.usage_output_tokens,
                "token_source": r.token_source.value,
                "events": r.events,
                "error_message": r.error_message,
                "done_sentinel": r.done_sentinel,
                **_token_kinds(r.token_kinds),
                "attempts": 1 + len(r.attempts or ()),
            }
        )
    return _keep("requests", records, pd.DataFrame(rows, columns=_REQUEST_COLUMNS))


_REQUEST_COLUMNS = [
    "request_id",
    "user",
    "turn",
    "segment",
    "outcome",
    "error_kind",
    "status",
    "t_scheduled_ns",
    "t_sent_ns",
    "t_first_token_ns",
    "t_end_ns",
    "ttft_s",
    "ttft_from_scheduled_s",
    "ttft_first_event_s",
    "ttft_first_byte_s",
    "ttft_answer_s",
    "e2e_s",
    "tpot_s",
    "itl_request_mean_s",
    "output_tokens",
    "event_tokens",
    "usage_output_tokens",
    "token_source",
    "events",
    "error_message",
    "done_sentinel",
    "text_events",
    "reasoning_events",
    "tool_call_events",
    "attempts",
]


def _token_kinds(kinds: dict[str, int] | None) -> dict[str, int | None]:
    kinds = kinds or {}
    return {
        "text_events": kinds.get("text"),
        "reasoning_events": kinds.get("reasoning"),
        "tool_call_events": kinds.get("tool_call"),
    }


def _first_errors(errors: pd.DataFrame) -> dict[str, str]:
    """The first message of each error kind, by when its request was sent."""
    first = errors.sort_values("t_sent_ns").drop_duplicates("error_kind")
    pairs = zip(first["error_kind"], first["error_message"], strict=True)
    return {str(kind): str(message) for kind, message in pairs}


def tokens_frame(records: Iterable[RequestRecord]) -> pd.DataFrame:
    """One row per token-bearing event: its request, arrival and the gap before it (the
    same frame for the same list, as with ``requests_frame``)."""
    kept = _kept("tokens", records)
    if kept is not None:
        return kept
    ids: list[str] = []
    times: list[int] = []
    starts: list[int] = []
    for r in records:
        ids.extend([r.request_id] * len(r.token_times_ns))
        times.extend(r.token_times_ns)
        starts.extend([r.t_due_ns] * len(r.token_times_ns))
    frame = pd.DataFrame(
        {
            "request_id": ids,
            "t_ns": np.asarray(times, dtype=np.int64),
            "t_request_start_ns": np.asarray(starts, dtype=np.int64),
        }
    )
    gaps = frame.groupby("request_id", sort=False)["t_ns"].diff()
    frame["itl_s"] = gaps / 1e9
    return _keep("tokens", records, frame)


def distribution(values: pd.Series) -> dict[str, float | None]:
    """p50, p90, p95, p99, p99.9, mean and max of ``values`` (None when empty)."""
    values = values.dropna().astype(float)
    if values.empty:
        return {**dict.fromkeys([*QUANTILES, "mean", "max"]), "count": 0}
    result: dict[str, float | None] = {
        name: float(values.quantile(q)) for name, q in QUANTILES.items()
    }
    result["mean"] = float(values.mean())
    result["max"] = float(values.max())
    result["count"] = int(values.size)
    return result


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
    frame = requests_frame(records)
    tokens = tokens_frame(records)
    started = frame["t_scheduled_ns"].fillna(frame["t_sent_ns"])
    in_window = (started >= window.start_ns) & (started < window.end_ns)
    measured = frame[in_window]
    ended = measured[measured["outcome"] != Outcome.ABANDONED.value]
    errors = ended[ended["outcome"] == Outcome.ERROR.value]
    latency = measured[measured["outcome"].isin(_LATENCY_OUTCOMES)]
    ok = measured[measured["outcome"] == Outcome.OK.value]
    ok_ids = set(latency["request_id"])
    measured_tokens = tokens[tokens["request_id"].isin(ok_ids)]
    arrived = tokens[(tokens["t_ns"] >= window.start_ns) & (tokens["t_ns"] < window.end_ns)]
    completed = frame[(frame["t_end_ns"] >= window.start_ns) & (frame["t_end_ns"] < window.end_ns)]
    completed_ok = completed[completed["outcome"] == Outcome.OK.value]
    # a request's output tokens spread over its token events, so usage counts weigh in
    weight = frame.set_index("request_id")["output_tokens"] / frame.set_index("request_id")[
        "event_tokens"
    ].clip(lower=1)
    # (as floats: mapping an empty column of ids keeps its string type, whose sum is "")
    weights = arrived["request_id"].map(weight).astype("float64")
    output_tokens_in_window = float(weights.fillna(1.0).sum())
    summary: dict[str, Any] = {
        "requests": len(measured),
        "ok": len(ok),
        "errors": len(errors),
        "errors_by_kind": {str(k): int(v) for k, v in errors["error_kind"].value_counts().items()},
        "first_error_by_kind": _first_errors(errors),
        "error_rate": float(len(errors) / len(ended)) if len(ended) else 0.0,
        "abandoned": int((measured["outcome"] == Outcome.ABANDONED.value).sum()),
        "cut": int((measured["outcome"] == Outcome.CUT.value).sum()),
        "ttft_s": distribution(latency["ttft_s"]),
        "itl_s": distribution(measured_tokens["itl_s"]),
        "tpot_s": distribution(ok["tpot_s"]),
        "e2e_s": distribution(ok["e2e_s"]),
        "output_tokens_per_s": output_tokens_in_window / window.seconds,
        "requests_per_s": len(completed_ok) / window.seconds,
        "window_s": window.seconds,
        "variants": _variants(latency, ok),
        # ok answers that ended without the stream's terminator: a habit, not an error
        "no_terminator": int((~ok["done_sentinel"].astype(bool)).sum()),
        "token_events_by_kind": {
            kind: int(pd.to_numeric(ok[f"{kind}_events"]).fillna(0).sum())
            for kind in ("text", "reasoning", "tool_call")
        },
    }
    if latency["t_scheduled_ns"].notna().any():  # open loop: latency from when it was due
        summary["ttft_from_scheduled_s"] = distribution(latency["ttft_from_scheduled_s"])
    if (clock := clock_stamps(records)) is not None:
        summary["clock"] = clock
    if slo:
        good = ok.assign(good=meets_slo(ok, slo))
        summary["goodput"] = {
            "slo": dict(slo),
            "requests_per_s": float(good["good"].sum()) / window.seconds,
            "share": float(good["good"].mean()) if len(good) else 0.0,
        }
    return summary


def clock_stamps(records: Iterable[RequestRecord]) -> dict[str, Any] | None:
    """Where the arrival stamps came from, and how far user-space stamps trailed the kernel's.

    Returns:
        None unless some record keeps both stamps (the kernel transport); else the
        count of records per ``clock_source`` and the distributions (seconds) of the
        user-space stamp minus the kernel's, for first tokens and for every token.
    """
    sources: dict[str, int] = {}
    first: list[int] = []
    every: list[np.ndarray] = []
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
        "first_token_user_lag_s": distribution(pd.Series(first, dtype=float) / 1e9),
        "token_user_lag_s": distribution(
            pd.Series(np.concatenate(every) if every else [], dtype=float) / 1e9
        ),
    }


_SLO_COLUMNS = {"ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_s", "itl": "itl_request_mean_s"}


def meets_slo(frame: pd.DataFrame, slo: Mapping[str, float]) -> pd.Series:
    """Per row of ``requests_frame``: whether the request met every target of ``slo``
    (seconds, keyed ``ttft``, ``tpot``, ``e2e`` or ``itl``)."""
    good = pd.Series(True, index=frame.index)
    for name, limit in slo.items():
        column = frame[_SLO_COLUMNS[name]]
        meets = column <= limit
        if name in ("tpot", "itl"):
            meets |= column.isna()  # a one-token answer has no gaps to judge
        good &= meets
    return good


def _variants(latency: pd.DataFrame, ok: pd.DataFrame) -> dict[str, Any]:
    """The figures other tools report under the same names, side by side with ours."""
    usage = ok.dropna(subset=["usage_output_tokens"])
    disagree = None
    if len(usage):
        events = usage["event_tokens"].clip(lower=1)
        relative = (usage["usage_output_tokens"] - usage["event_tokens"]).abs() / events
        disagree = float((relative > TOKEN_DISAGREEMENT).mean())
    return {
        "ttft_first_byte_s": distribution(latency["ttft_first_byte_s"]),
        "ttft_first_event_s": distribution(latency["ttft_first_event_s"]),
        "ttft_first_token_s": distribution(latency["ttft_s"]),
        "ttft_first_answer_s": distribution(latency["ttft_answer_s"]),
        "itl_request_mean_s": distribution(ok["itl_request_mean_s"]),
        "output_tokens_from_usage": int(usage["usage_output_tokens"].sum()) if len(usage) else None,
        "output_tokens_from_events": int(ok["event_tokens"].sum()),
        "token_counts_disagree_share": disagree,
        "token_counts_disagree": bool(disagree is not None and disagree > 0),
        "token_source": _token_source(len(usage), len(ok)),
    }


def _token_source(with_usage: int, requests: int) -> str:
    if not with_usage:
        return TokenSource.EVENTS.value
    return TokenSource.USAGE.value if with_usage == requests else "mixed"


def token_reads(tokens: pd.DataFrame) -> pd.DataFrame:
    """One row per read that carried token events (a request's tokens that share one
    arrival stamp): its ``t_ns`` and how many token ``events`` it carried. A read of more
    than one hides the gaps between its events (their ITL reads 0)."""
    if tokens.empty:
        return pd.DataFrame({"t_ns": np.empty(0, np.int64), "events": np.empty(0, np.int64)})
    reads = tokens.groupby(["request_id", "t_ns"], sort=False).size()
    return reads.rename("events").reset_index()[["t_ns", "events"]]


def merged_reads_share(records: Iterable[RequestRecord]) -> float | None:
    """The share of token-bearing reads that carried more than one token event."""
    reads = token_reads(tokens_frame(records))
    return float((reads["events"] > 1).mean()) if len(reads) else None


def time_series(
    records: Sequence[RequestRecord],
    *,
    origin_ns: int | None = None,
    client: ClientSamples | None = None,
) -> pd.DataFrame:
    """Per second of the run: requests started, completed, in flight, tokens/s, TTFT p50,
    and the client's own health: its loop lag and CPU share (the busiest process's, when
    ``client`` samples are given), send lateness p99 and the share of merged reads."""
    frame = requests_frame(records)
    if frame.empty:
        return pd.DataFrame(
            columns=["second", "started", "completed", "in_flight", "tokens_per_s", "ttft_p50_s"]
        )
    origin = origin_ns if origin_ns is not None else int(frame["t_sent_ns"].min())
    second = lambda ns: ((ns - origin) // 1_000_000_000).astype("Int64")  # noqa: E731
    start_s = second(frame["t_sent_ns"])
    end_s = second(frame["t_end_ns"].astype("Int64"))
    last = int(max(start_s.max(), end_s.max(skipna=True) if end_s.notna().any() else 0))
    index = pd.RangeIndex(0, last + 1, name="second")
    started = start_s.value_counts().reindex(index, fill_value=0)
    completed = end_s.dropna().value_counts().reindex(index, fill_value=0)
    in_flight = (started.cumsum() - completed.cumsum()).clip(lower=0)
    tokens = tokens_frame(records)
    token_s = second(tokens["t_ns"]).value_counts().reindex(index, fill_value=0)
    ttft_by_s = frame.assign(s=second(frame["t_first_token_ns"].astype("Int64")))
    ttft_p50 = ttft_by_s.dropna(subset=["s"]).groupby("s")["ttft_s"].median().reindex(index)
    scheduled = pd.to_numeric(frame["t_scheduled_ns"], errors="coerce")  # None: closed loop
    late = frame.assign(s=start_s, late_ms=(frame["t_sent_ns"] - scheduled) / 1e6)
    late_p99 = late.dropna(subset=["late_ms"]).groupby("s")["late_ms"].quantile(0.99)
    reads = token_reads(tokens)
    merged = (reads["events"] > 1).groupby(second(reads["t_ns"])).mean()
    columns = {
        "started": started.astype(int),
        "completed": completed.astype(int),
        "in_flight": in_flight.astype(int),
        "tokens_per_s": token_s.astype(int),
        "ttft_p50_s": ttft_p50.astype(float),
        "send_lateness_p99_ms": late_p99.reindex(index).astype(float),
        "merged_reads_share": merged.reindex(index).astype(float),
    }
    if client is not None and client.seconds:
        watch = pd.DataFrame(client.seconds, columns=["t_ns", "lag_max_ns", "cpu", "process"])
        busiest = watch.groupby(second(watch["t_ns"]))
        columns["loop_lag_max_ms"] = (busiest["lag_max_ns"].max() / 1e6).reindex(index)
        columns["cpu_percent"] = busiest["cpu"].max().reindex(index)
    return pd.DataFrame(columns).reset_index()
