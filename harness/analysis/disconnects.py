"""How a server reacted to streams the client abandoned on purpose. Pure: no I/O.

For each abandoned request the server's own ground truth (the mock's
``/mock/requests/{id}``) tells when it noticed the disconnect and when it last wrote.
From that:

* ``stopped_by_server``: abandoned streams whose server record shows it stopped
  producing (a disconnect detected, or the stream ended) rather than writing on.
* ``stop_latency_ms``: from the client's close to the server noticing it
  (``disconnect_detected_ns - t_close_ns``; both are the same monotonic clock).
* ``tokens_after_close``: tokens the server wrote after the client had closed.

Where no ground truth can be had but the server's gauge of running requests was given
(``--metrics-url``, ``--metrics-gauge``) and sampled through the run, each abandoned
stream is judged by ``harness.load.stopping.judge_by_gauge``: stopped only when the gauge fell
by it well before it would have ended by itself. ``stopped_by_server`` counts those (0
when the server kept generating for every stream that could be judged, null when none
could), ``gauge`` holds the counts and the evidence, and ``verdict`` says it in a line.
The per-stream figures stay null. With neither, those figures are null and
``verifiable`` is false.

Whether abandonment slows the streams that stay: a sweep over ``--disconnect-rate``
(``0,0.2,0.5``) runs one segment per rate, and ``ttft_of_others`` sets the TTFT of the
streams that were not abandoned at each rate beside the rate-0 segment's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.analysis.summary import distribution
from harness.load.stopping import Sample, judge_by_gauge
from harness.record import Outcome, RequestRecord

__all__ = ["summarize_disconnects", "ttft_of_others"]

#: A TTFT change smaller than this, against the run without abandonment, is "unchanged".
TTFT_CHANGE_NOTED = 0.10


def summarize_disconnects(
    records: Sequence[RequestRecord],
    truths: Mapping[str, Mapping[str, Any] | None],
    *,
    gauge: Mapping[str, Any] | None = None,
    samples: Sequence[Sample] = (),
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """The ``disconnect`` object of ``summary.json``.

    Args:
        records: the run's records.
        truths: the server's record per ``mock_request_id`` (None where it had none).
        gauge: the server's gauge around the run, if it was given: ``baseline`` (before
            the run), ``after_run``, ``returned`` and ``seconds_to_baseline``.
        samples: that gauge, sampled through the run on the records' clock.
        max_tokens: the output length the requests asked for, if they did.
    """
    abandoned = [r for r in records if r.outcome is Outcome.ABANDONED]
    found = [(r, truths.get(r.mock_request_id or "")) for r in abandoned]
    known = [(r, t) for r, t in found if t is not None and r.t_close_ns is not None]
    summary: dict[str, Any] = {
        "abandoned": len(abandoned),
        "verifiable": bool(known),
        "with_ground_truth": len(known),
        "stopped_by_server": None,
        "stop_latency_ms": {"p50": None, "p99": None, "max": None},
        "tokens_after_close": None,
        "source": None,
        "verdict": None,
    }
    if gauge is not None:
        summary["gauge"] = dict(gauge)
    if not known:
        if gauge is not None and abandoned and gauge.get("baseline") is not None:
            judgement = judge_by_gauge(
                records, samples, baseline=gauge["baseline"], max_tokens=max_tokens
            )
            judged = judgement["judged"]
            summary.update(
                verifiable=bool(judged),
                source="gauge",
                stopped_by_server=judgement["stopped"] if judged else None,
                verdict=judgement.pop("verdict"),
            )
            summary["gauge"].update(judgement)
        return summary
    summary["source"] = "ground truth"
    latencies = []
    after = 0
    stopped = 0
    for record, truth in known:
        detected = truth.get("disconnect_detected_ns")
        writes = truth.get("token_write_ns") or []
        after += sum(1 for t in writes if t > record.t_close_ns)
        if detected is not None:
            stopped += 1
            latencies.append((detected - record.t_close_ns) / 1e6)
        elif truth.get("done"):
            stopped += 1  # it ended by itself before it could notice
    spread = distribution(latencies)
    summary.update(
        stopped_by_server=stopped,
        stop_latency_ms={"p50": spread["p50"], "p99": spread["p99"], "max": spread["max"]},
        tokens_after_close=after,
    )
    return summary


def ttft_of_others(segments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """TTFT of the streams that were not abandoned, per ``--disconnect-rate`` segment.

    Args:
        segments: a disconnect-rate sweep's segments, each with ``disconnect_rate`` and its
            ``summary`` (whose latency figures already leave abandoned streams out).

    Returns:
        One entry per segment: the rate, TTFT p50 and p99 in seconds, and where the sweep
        has a rate-0 segment, the relative change of each against it and whether the p50
        moved by more than ``TTFT_CHANGE_NOTED``.
    """
    base = next((s for s in segments if s.get("disconnect_rate") == 0), None)
    base_ttft = base["summary"]["ttft_s"] if base is not None else None
    rows = []
    for segment in segments:
        ttft = segment["summary"]["ttft_s"]
        row: dict[str, Any] = {
            "disconnect_rate": segment.get("disconnect_rate"),
            "ttft_p50_s": ttft["p50"],
            "ttft_p99_s": ttft["p99"],
            "change_p50": None,
            "change_p99": None,
            "moved": None,
        }
        if base_ttft is not None:
            row["change_p50"] = _change(ttft["p50"], base_ttft["p50"])
            row["change_p99"] = _change(ttft["p99"], base_ttft["p99"])
            if row["change_p50"] is not None:
                row["moved"] = abs(row["change_p50"]) > TTFT_CHANGE_NOTED
        rows.append(row)
    return rows


def _change(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return value / base - 1
