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
(``--metrics-url``, ``--metrics-gauge``), ``gauge`` says whether it fell back to its
value before the run, and ``stopped_by_server`` is all or none of the abandoned streams
accordingly; the per-stream figures stay null. With neither, those figures are null and
``verifiable`` is false.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.metrics import distribution
from harness.record import Outcome, RequestRecord

__all__ = ["summarize_disconnects"]


def summarize_disconnects(
    records: Sequence[RequestRecord],
    truths: Mapping[str, Mapping[str, Any] | None],
    *,
    gauge: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``disconnect`` object of ``summary.json``.

    Args:
        records: the run's records.
        truths: the server's record per ``mock_request_id`` (None where it had none).
        gauge: what ``harness.gauge.wait_for_baseline`` saw after the run, if anything.
    """
    abandoned = [r for r in records if r.outcome is Outcome.ABANDONED]
    known = [(r, truths.get(r.mock_request_id or "")) for r in abandoned]
    known = [(r, t) for r, t in known if t is not None and r.t_close_ns is not None]
    summary: dict[str, Any] = {
        "abandoned": len(abandoned),
        "verifiable": bool(known),
        "with_ground_truth": len(known),
        "stopped_by_server": None,
        "stop_latency_ms": {"p50": None, "p99": None, "max": None},
        "tokens_after_close": None,
        "source": None,
    }
    if gauge is not None:
        summary["gauge"] = dict(gauge)
    if not known:
        if gauge is not None and abandoned:
            # a gauge back at its baseline means every stream stopped; one above it
            # cannot say how many did
            stopped = len(abandoned) if gauge.get("returned") else None
            summary.update(verifiable=True, source="gauge", stopped_by_server=stopped)
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
    spread = distribution(pd.Series(latencies, dtype=float))
    summary.update(
        stopped_by_server=stopped,
        stop_latency_ms={"p50": spread["p50"], "p99": spread["p99"], "max": spread["max"]},
        tokens_after_close=after,
    )
    return summary
