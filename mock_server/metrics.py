"""The mock's counters and its send-lateness histogram, rendered as Prometheus text.

``Metrics`` is mutated by the handlers and the stream writer of one worker. Its
``snapshot`` is plain JSON-able data, so the snapshots of several workers can be summed
(``merge``) before ``render`` writes the text format (version 0.0.4).

Beside its own ``mock_*`` names it writes vLLM's, for what it models
(``mock_server.vllm_metrics``), so a client can read the mock as it reads vLLM.

Send lateness is the time a token event was handed to the transport minus the time it
was scheduled; it is observed in nanoseconds and exposed in seconds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from typing import Any

from mock_server.vllm_metrics import Histograms, merge_histograms, render_vllm

__all__ = ["LATENESS_BOUNDS_NS", "Metrics", "merge", "render"]

#: Upper bounds of the lateness histogram's buckets, in ns (+Inf is implied).
LATENESS_BOUNDS_NS = (
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
)

_COUNTERS = {
    "tokens_sent": ("mock_tokens_sent_total", "Tokens written to clients."),
    "client_disconnects": (
        "mock_client_disconnects_total",
        "Streams whose client went away before the end.",
    ),
    "tokens_after_disconnect": (
        "mock_tokens_after_disconnect_total",
        "Tokens written after a disconnect was detected (always 0 unless a bug).",
    ),
    "write_holds": (
        "mock_write_holds_total",
        "Frames held a tick because a transport's write buffer was above the high-water mark.",
    ),
    "rejected": ("mock_rejected_total", "Requests refused with 429 at the concurrency cap."),
    "streams_completed": ("mock_streams_completed_total", "Streams that ended normally."),
    "prompt_tokens": ("mock_prompt_tokens_total", "Prompt tokens of the requests admitted."),
    "cached_tokens": (
        "mock_cached_prompt_tokens_total",
        "Prompt tokens found in the prefix cache (0 without --prefix-cache-tokens).",
    ),
}


class Metrics:
    """One worker's counters."""

    __slots__ = (
        "_lateness",
        "active",
        "counters",
        "faults",
        "histograms",
        "lateness_count",
        "lateness_sum_ns",
        "requests",
    )

    def __init__(self) -> None:
        #: (endpoint path, status) -> requests answered.
        self.requests: Counter[tuple[str, int]] = Counter()
        #: Requests in progress (streams and pending non-streamed responses).
        self.active = 0
        self.counters: Counter[str] = Counter()
        #: fault kind -> requests it applied to.
        self.faults: Counter[str] = Counter()
        self._lateness = [0] * (len(LATENESS_BOUNDS_NS) + 1)
        self.lateness_count = 0
        self.lateness_sum_ns = 0
        #: TTFT, E2E and queue time under vLLM's names.
        self.histograms = Histograms()

    def observe_lateness(self, lateness_ns: int) -> None:
        """Count one token event's send lateness."""
        self._lateness[bisect_left(LATENESS_BOUNDS_NS, lateness_ns)] += 1
        self.lateness_count += 1
        self.lateness_sum_ns += lateness_ns

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-able data (see ``merge`` and ``render``)."""
        return {
            "requests": [[path, status, n] for (path, status), n in sorted(self.requests.items())],
            "active": self.active,
            "counters": {name: self.counters.get(name, 0) for name in _COUNTERS},
            "faults": dict(sorted(self.faults.items())),
            "lateness_buckets": list(self._lateness),
            "lateness_count": self.lateness_count,
            "lateness_sum_ns": self.lateness_sum_ns,
            "histograms": self.histograms.snapshot(),
        }


def merge(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum the snapshots of several workers into one.

    Args:
        snapshots: ``Metrics.snapshot()`` results.

    Returns:
        A snapshot of the same shape holding the sums.
    """
    requests: Counter[tuple[str, int]] = Counter()
    counters: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    buckets = [0] * (len(LATENESS_BOUNDS_NS) + 1)
    active = count = total = 0
    snapshots = list(snapshots)
    for snap in snapshots:
        for path, status, n in snap["requests"]:
            requests[(path, status)] += n
        counters.update(snap["counters"])
        faults.update(snap["faults"])
        buckets = [a + b for a, b in zip(buckets, snap["lateness_buckets"], strict=True)]
        active += snap["active"]
        count += snap["lateness_count"]
        total += snap["lateness_sum_ns"]
    return {
        "requests": [[path, status, n] for (path, status), n in sorted(requests.items())],
        "active": active,
        "counters": {name: counters.get(name, 0) for name in _COUNTERS},
        "faults": dict(sorted(faults.items())),
        "lateness_buckets": buckets,
        "lateness_count": count,
        "lateness_sum_ns": total,
        "histograms": merge_histograms([snap["histograms"] for snap in snapshots]),
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(snapshot: dict[str, Any], *, capacity: int = 256) -> str:
    """Write a snapshot in the Prometheus text exposition format.

    Args:
        snapshot: from ``Metrics.snapshot`` or ``merge``.
        capacity: the load model's capacity (``vllm:kv_cache_usage_perc``'s 100%).

    Returns:
        The text, ending with a newline.
    """
    lines = [
        "# HELP mock_requests_total Requests answered, by endpoint and status.",
        "# TYPE mock_requests_total counter",
    ]
    for path, status, n in snapshot["requests"]:
        lines.append(f'mock_requests_total{{endpoint="{_label(path)}",status="{status}"}} {n}')
    lines += [
        "# HELP mock_active_streams Requests in progress.",
        "# TYPE mock_active_streams gauge",
        f"mock_active_streams {snapshot['active']}",
    ]
    for key, (name, text) in _COUNTERS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
        lines.append(f"{name} {snapshot['counters'].get(key, 0)}")
    lines += [
        "# HELP mock_faults_total Faults applied, by kind.",
        "# TYPE mock_faults_total counter",
    ]
    for kind, n in snapshot["faults"].items():
        lines.append(f'mock_faults_total{{kind="{_label(kind)}"}} {n}')
    lines += [
        "# HELP mock_send_lateness_seconds Token write time minus its scheduled time.",
        "# TYPE mock_send_lateness_seconds histogram",
    ]
    cumulative = 0
    for bound, n in zip((*LATENESS_BOUNDS_NS, None), snapshot["lateness_buckets"], strict=True):
        cumulative += n
        le = "+Inf" if bound is None else repr(bound / 1e9)
        lines.append(f'mock_send_lateness_seconds_bucket{{le="{le}"}} {cumulative}')
    lines.append(f"mock_send_lateness_seconds_sum {snapshot['lateness_sum_ns'] / 1e9!r}")
    lines.append(f"mock_send_lateness_seconds_count {snapshot['lateness_count']}")
    lines += render_vllm(snapshot, capacity=capacity)
    return "\n".join(lines) + "\n"
