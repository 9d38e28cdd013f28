"""How far a client's arrival stamps are from a server's own write times. Pure: no I/O.

The mock records when it wrote every token (its ground truth). A token's *arrival lag* is
the client's arrival time minus that write time, on the same monotonic clock: what the
client's measurement adds to the truth. ``sse-harness calibrate`` and ``bench locust``
both judge clients by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from harness.analysis.summary import distribution
from harness.record import RequestRecord

__all__ = ["ArrivalLags", "arrival_lags"]


class ArrivalLags(TypedDict):
    """``arrival_lags``' figures, in milliseconds; None where nothing was measured."""

    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    first_token_lag_p50_ms: float | None
    first_token_lag_p99_ms: float | None
    first_token_lag_max_ms: float | None
    itl_error_p99_ms: float | None
    user_lag_p50_ms: float | None
    user_lag_p99_ms: float | None
    user_lag_max_ms: float | None
    user_first_token_lag_p99_ms: float | None


def arrival_lags(
    records: Sequence[RequestRecord], truths: Mapping[str, Mapping[str, Any] | None]
) -> ArrivalLags:
    """The client's arrival lags against the server's write times, in milliseconds.

    Args:
        records: the client's records.
        truths: the server's record per ``mock_request_id`` (with ``token_write_ns``).

    Returns:
        ``lag_*`` over every token, ``first_token_lag_*``, ``itl_error_p99_ms`` (the
        absolute error of each measured gap), and ``user_*`` for the user-space stamps
        where the records keep them beside the kernel's (None where they do not).
    """
    lags: list[np.ndarray] = []
    first: list[float] = []
    itl_errors: list[np.ndarray] = []
    user_lags: list[np.ndarray] = []
    user_first: list[float] = []
    for record in records:
        truth = truths.get(record.mock_request_id or "")
        if not truth or not record.token_times_ns:
            continue
        written = np.asarray(truth["token_write_ns"], dtype=np.int64)
        arrived = np.asarray(record.token_times_ns, dtype=np.int64)
        n = min(len(written), len(arrived))
        if n == 0:
            continue
        lag_ms = (arrived[:n] - written[:n]) / 1e6
        lags.append(lag_ms)
        first.append(float(lag_ms[0]))
        if n > 1:
            itl_errors.append(np.abs(np.diff(arrived[:n]) - np.diff(written[:n])) / 1e6)
        if record.token_times_user_ns:
            user = np.asarray(record.token_times_user_ns[:n], dtype=np.int64)
            user_lags.append((user - written[: len(user)]) / 1e6)
            user_first.append(float(user_lags[-1][0]))
    user_lag = distribution(np.asarray(np.concatenate(user_lags) if user_lags else [], dtype=float))
    lag = distribution(np.asarray(np.concatenate(lags) if lags else [], dtype=float))
    first_lag = distribution(np.asarray(first, dtype=float))
    itl_error = distribution(
        np.asarray(np.concatenate(itl_errors) if itl_errors else [], dtype=float)
    )
    return {
        "lag_p50_ms": lag["p50"],
        "lag_p99_ms": lag["p99"],
        "lag_max_ms": lag["max"],
        "first_token_lag_p50_ms": first_lag["p50"],
        "first_token_lag_p99_ms": first_lag["p99"],
        "first_token_lag_max_ms": first_lag["max"],
        "itl_error_p99_ms": itl_error["p99"],
        "user_lag_p50_ms": user_lag["p50"],
        "user_lag_p99_ms": user_lag["p99"],
        "user_lag_max_ms": user_lag["max"],
        "user_first_token_lag_p99_ms": distribution(np.asarray(user_first, dtype=float))["p99"],
    }
