"""From records to pandas frames, for the run's files, the report's figures and
``compare``: one row per request, one per token event, one per second. No I/O, no clock.

The summary itself is computed without them (``harness.analysis.summary``), so that a run
shows it without waiting for pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.summary import MET_WITHOUT_FIGURE, SLO_FIGURES, itl_request_mean_s
from harness.load.health import ClientSamples
from harness.record import RequestRecord, span_s

__all__ = [
    "meets_slo",
    "requests_frame",
    "time_series",
    "token_reads",
    "tokens_frame",
]

#: The frames last made of a list of records, by kind: a run's CSV files and its report's
#: figures read the same records, and a frame takes a tenth of a second at 10,000
#: records. Records do not change once written; a list that grew is read again.
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
    rows = records if isinstance(records, Sequence) else list(records)
    if not rows:  # no column to infer a type from: every one is of objects
        return _keep("requests", records, pd.DataFrame(columns=list(_REQUEST_COLUMNS)))
    columns = {name: [read(r) for r in rows] for name, read in _REQUEST_COLUMNS.items()}
    return _keep("requests", records, pd.DataFrame(columns))


#: The columns of ``requests_frame``, each as read off a record (column by column: a
#: third of the time of a dict per row).
_REQUEST_COLUMNS: dict[str, Callable[[RequestRecord], Any]] = {
    "request_id": attrgetter("request_id"),
    "user": attrgetter("user"),
    "turn": attrgetter("turn"),
    "segment": attrgetter("segment"),
    "outcome": lambda r: r.outcome.value,
    "error_kind": lambda r: r.error_kind.value if r.error_kind else None,
    "status": attrgetter("status"),
    "t_scheduled_ns": attrgetter("t_scheduled_ns"),
    "t_sent_ns": attrgetter("t_sent_ns"),
    "t_first_token_ns": attrgetter("t_first_token_ns"),
    "t_end_ns": attrgetter("t_end_ns"),
    "ttft_s": attrgetter("ttft_s"),
    "ttft_from_scheduled_s": attrgetter("ttft_from_scheduled_s"),
    "ttft_first_event_s": lambda r: span_s(r.t_sent_ns, r.t_first_event_ns),
    "ttft_first_byte_s": lambda r: span_s(r.t_sent_ns, r.t_first_byte_ns),
    "ttft_answer_s": lambda r: span_s(r.t_sent_ns, r.t_first_answer_ns),
    "e2e_s": attrgetter("e2e_s"),
    "tpot_s": attrgetter("tpot_s"),
    "itl_request_mean_s": itl_request_mean_s,
    "output_tokens": attrgetter("output_tokens"),
    "event_tokens": lambda r: len(r.token_times_ns),
    "usage_output_tokens": attrgetter("usage_output_tokens"),
    "token_source": lambda r: r.token_source.value,
    "events": attrgetter("events"),
    "error_message": attrgetter("error_message"),
    "done_sentinel": attrgetter("done_sentinel"),
    "text_events": lambda r: (r.token_kinds or {}).get("text"),
    "reasoning_events": lambda r: (r.token_kinds or {}).get("reasoning"),
    "tool_call_events": lambda r: (r.token_kinds or {}).get("tool_call"),
    "attempts": lambda r: 1 + len(r.attempts or ()),
}


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


def meets_slo(frame: pd.DataFrame, slo: Mapping[str, float]) -> pd.Series:
    """Per row of ``requests_frame``: whether the request met every target of ``slo``
    (seconds, keyed ``ttft``, ``tpot``, ``e2e`` or ``itl``), as ``summary.meets_slo``
    judges one record."""
    good = pd.Series(True, index=frame.index)
    for name, limit in slo.items():
        column = frame[SLO_FIGURES[name]]
        meets = column <= limit
        if name in MET_WITHOUT_FIGURE:
            meets |= column.isna()  # a one-token answer has no gaps to judge
        good &= meets
    return good


def token_reads(tokens: pd.DataFrame) -> pd.DataFrame:
    """One row per read that carried token events (a request's tokens that share one
    arrival stamp): its ``t_ns`` and how many token ``events`` it carried. A read of more
    than one hides the gaps between its events (their ITL reads 0)."""
    if tokens.empty:
        return pd.DataFrame({"t_ns": np.empty(0, np.int64), "events": np.empty(0, np.int64)})
    reads = tokens.groupby(["request_id", "t_ns"], sort=False).size()
    return reads.rename("events").reset_index()[["t_ns", "events"]]


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
