"""The mock's own account under vLLM's metric names, for what it models.

* ``vllm:num_requests_running``: requests in progress; ``vllm:num_requests_waiting``:
  always 0, for the mock queues nothing (past its concurrency cap it answers 429).
* ``vllm:kv_cache_usage_perc``: the load model's occupancy, requests in progress over
  its ``capacity`` (at most 1); the mock has no KV cache of its own.
* ``vllm:time_to_first_token_seconds``: from receiving a request to handing its first
  token event to the transport (the ground truth's ``token_write_ns[0] - received_ns``),
  observed when that token is written.
* ``vllm:e2e_request_latency_seconds``: from receiving a request to its last write,
  observed for every response that ended normally.
* ``vllm:request_queue_time_seconds``: from receiving a request to admitting it (parsing
  its body; nothing waits in a queue).
* ``vllm:generation_tokens_total``, ``vllm:request_success_total``: tokens written and
  responses ended normally.
* ``vllm:prompt_tokens_total``, ``vllm:prefix_cache_queries_total`` and
  ``vllm:prefix_cache_hits_total``: the prompt tokens of the requests admitted, and those
  of them the prefix cache held (as vLLM counts its prefix cache, in tokens; no hit
  without ``--prefix-cache-tokens``).

Histogram edges hold vLLM's own and, around the configured timings, edges every few
milliseconds (``FINE_STEP_S`` at least), so quantiles read from them are bounded by a
few milliseconds where the mock's figures fall.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from mock_server.config import MockConfig

__all__ = ["HISTOGRAMS", "Histograms", "edges_for", "render_vllm"]

#: vLLM's edges (its v1 engine): TTFT, and request latencies (E2E and queue).
VLLM_TTFT_EDGES = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                   1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
VLLM_REQUEST_EDGES = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                      50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
FINE_STEP_S = 0.002
#: The most fine edges a histogram gets around a timing.
MAX_FINE_EDGES = 200

#: key -> (metric name, help).
HISTOGRAMS = {
    "ttft": ("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds."),
    "e2e": ("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds."),
    "queue": ("vllm:request_queue_time_seconds", "Histogram of time spent waiting in queue."),
}


def _fine(low_s: float, high_s: float) -> list[float]:
    low_s = max(low_s, 0.0)
    step = max(FINE_STEP_S, (high_s - low_s) / MAX_FINE_EDGES)
    count = int((high_s - low_s) / step) + 1
    return [round(low_s + i * step, 6) for i in range(count) if low_s + i * step > 0]


def edges_for(config: MockConfig) -> dict[str, tuple[float, ...]]:
    """Each histogram's edges for the mock's configured timings (seconds, ascending)."""
    timing = config.timing
    spread = 3 * timing.spread if timing.distribution != "fixed" else 0.0
    slow = (1 + timing.load_k) * (1 + spread)
    ttft = timing.ttft_ms / 1000
    e2e = ttft + max(timing.tokens - 1, 0) * timing.itl_ms / 1000
    ttft_fine = _fine(ttft * (1 - spread) - 0.02, ttft * slow + 0.05)
    e2e_fine = _fine(min(ttft, e2e * (1 - spread)) - 0.02, e2e * slow + 0.1)
    queue_fine = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
    return {
        "ttft": tuple(sorted({*VLLM_TTFT_EDGES, *ttft_fine})),
        "e2e": tuple(sorted({*VLLM_REQUEST_EDGES, *e2e_fine})),
        "queue": tuple(sorted({*VLLM_REQUEST_EDGES, *queue_fine})),
    }


class Histograms:
    """One worker's latency histograms (observed in ns, exposed in seconds)."""

    __slots__ = ("counts", "edges_ns", "edges_s", "sums_ns")

    def __init__(self, edges: dict[str, tuple[float, ...]] | None = None) -> None:
        self.edges_s = edges or {"ttft": VLLM_TTFT_EDGES, "e2e": VLLM_REQUEST_EDGES,
                                 "queue": VLLM_REQUEST_EDGES}  # fmt: skip
        self.edges_ns = {k: [round(e * 1e9) for e in v] for k, v in self.edges_s.items()}
        self.counts = {k: [0] * (len(v) + 1) for k, v in self.edges_s.items()}
        self.sums_ns = dict.fromkeys(self.edges_s, 0)

    def observe(self, key: str, value_ns: int) -> None:
        """Count one observation of histogram ``key`` (a value on an edge is in its
        bucket, as ``le`` says)."""
        self.counts[key][bisect_left(self.edges_ns[key], value_ns)] += 1
        self.sums_ns[key] += value_ns

    def snapshot(self) -> dict[str, Any]:
        return {
            key: {
                "edges": list(self.edges_s[key]),
                "counts": list(self.counts[key]),
                "sum_ns": self.sums_ns[key],
            }
            for key in self.edges_s
        }


def merge_histograms(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the histogram snapshots of several workers (one configuration: same edges)."""
    merged: dict[str, Any] = {}
    for snap in snapshots:
        for key, h in snap.items():
            if key not in merged:
                merged[key] = {"edges": h["edges"], "counts": list(h["counts"]), "sum_ns": 0}
            else:
                merged[key]["counts"] = [
                    a + b for a, b in zip(merged[key]["counts"], h["counts"], strict=True)
                ]
            merged[key]["sum_ns"] += h["sum_ns"]
    return merged


def render_vllm(snapshot: dict[str, Any], *, capacity: int, model: str = "mock") -> list[str]:
    """The vLLM-named lines of a merged snapshot (``mock_server.metrics``'s)."""
    labels = f'engine="0",model_name="{model}"'
    active = snapshot["active"]
    counters = snapshot["counters"]
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{labels}}} {active}",
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{labels}}} 0",
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{{{labels}}} {min(active / capacity, 1.0)!r}",
        "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
        "# TYPE vllm:generation_tokens_total counter",
        f"vllm:generation_tokens_total{{{labels}}} {counters.get('tokens_sent', 0)}",
        "# HELP vllm:request_success_total Count of successfully processed requests.",
        "# TYPE vllm:request_success_total counter",
        f'vllm:request_success_total{{{labels},finished_reason="stop"}} '
        f"{counters.get('streams_completed', 0)}",
        "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
        "# TYPE vllm:prompt_tokens_total counter",
        f"vllm:prompt_tokens_total{{{labels}}} {counters.get('prompt_tokens', 0)}",
        "# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of tokens.",
        "# TYPE vllm:prefix_cache_queries_total counter",
        f"vllm:prefix_cache_queries_total{{{labels}}} {counters.get('prompt_tokens', 0)}",
        "# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of tokens.",
        "# TYPE vllm:prefix_cache_hits_total counter",
        f"vllm:prefix_cache_hits_total{{{labels}}} {counters.get('cached_tokens', 0)}",
    ]
    for key, (name, text) in HISTOGRAMS.items():
        h = snapshot["histograms"][key]
        lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
        cumulative = 0
        for edge, n in zip((*h["edges"], None), h["counts"], strict=True):
            cumulative += n
            le = "+Inf" if edge is None else repr(float(edge))
            lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {h['sum_ns'] / 1e9!r}")
        lines.append(f"{name}_count{{{labels}}} {cumulative}")
    return lines
