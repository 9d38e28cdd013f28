"""Which server a Prometheus exposition comes from, and where each of its figures lives.

Every known server names the same few things differently; this module maps them to one
vocabulary, so that a summary, a gate and a report speak of ``running`` or
``server_ttft_s`` whatever the server:

====================== ================================================================
figure                 meaning
====================== ================================================================
running                requests the engine is working on (a gauge, summed)
waiting                requests queued in front of the engine (a gauge, summed)
kv_cache_usage         share of the KV cache in use, 0 to 1 (a gauge, the highest replica)
prefix_cache_hit_rate  share of prompt tokens (or blocks) found in the prefix cache
server_ttft_s          the server's own time to first token (a histogram)
server_queue_s         time a request waited before the engine took it (a histogram)
server_e2e_s           the server's own request latency (a histogram)
generation_tokens_per_s output tokens per second (a counter's rate)
====================== ================================================================

A figure lists its candidate metric names, newest first: the first one an exposition
has is used (vLLM renamed ``gpu_cache_usage_perc`` to ``kv_cache_usage_perc`` and its
prefix-cache counters). The names are the samples' own, as the text format writes them
(a counter's ``_total``, a histogram's base name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FIGURES", "SERVERS", "Source", "known_names", "recognise", "vocabulary"]

#: The vocabulary's figures, in the order reports show them.
FIGURES = (
    "running",
    "waiting",
    "kv_cache_usage",
    "prefix_cache_hit_rate",
    "server_ttft_s",
    "server_queue_s",
    "server_e2e_s",
    "generation_tokens_per_s",
)


@dataclass(frozen=True, slots=True)
class Source:
    """Where one figure lives in a server's exposition.

    Attributes:
        kind: ``gauge`` (summed over label sets and replicas), ``gauge_max`` (the
            highest label set or replica: a share), ``gauge_mean`` (a rate the server
            computes itself), ``histogram``, ``rate`` (a counter's increase per second)
            or ``ratio`` (the increase of ``names[0]`` over that of ``names[1]``).
        names: candidate metric names, the first present wins (for ``ratio``, pairs
            ``hits,queries`` joined by a comma).
    """

    kind: str
    names: tuple[str, ...]


_VLLM = {
    "running": Source("gauge", ("vllm:num_requests_running",)),
    "waiting": Source("gauge", ("vllm:num_requests_waiting",)),
    "kv_cache_usage": Source(
        "gauge_max", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    ),
    "prefix_cache_hit_rate": Source(
        "ratio",
        (
            "vllm:prefix_cache_hits_total,vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_hits_total,vllm:gpu_prefix_cache_queries_total",
        ),
    ),
    "server_ttft_s": Source("histogram", ("vllm:time_to_first_token_seconds",)),
    "server_queue_s": Source("histogram", ("vllm:request_queue_time_seconds",)),
    "server_e2e_s": Source("histogram", ("vllm:e2e_request_latency_seconds",)),
    "generation_tokens_per_s": Source("rate", ("vllm:generation_tokens_total",)),
}
#: vLLM 0.6 computed its prefix-cache hit rate itself, as a gauge.
_VLLM_V0_HIT_RATE = Source("gauge_mean", ("vllm:gpu_prefix_cache_hit_rate",))

_SGLANG = {
    "running": Source("gauge", ("sglang:num_running_reqs",)),
    "waiting": Source("gauge", ("sglang:num_queue_reqs",)),
    "kv_cache_usage": Source("gauge_max", ("sglang:token_usage",)),
    "prefix_cache_hit_rate": Source("gauge_mean", ("sglang:cache_hit_rate",)),
    "server_ttft_s": Source("histogram", ("sglang:time_to_first_token_seconds",)),
    "server_queue_s": Source("histogram", ("sglang:queue_time_seconds",)),
    "server_e2e_s": Source("histogram", ("sglang:e2e_request_latency_seconds",)),
    "generation_tokens_per_s": Source("rate", ("sglang:generation_tokens_total",)),
}

# TGI has no time-to-first-token histogram, no KV-cache gauge and no token counter: its
# generated tokens are the sum of a per-request histogram, which only grows.
_TGI = {
    "running": Source("gauge", ("tgi_batch_current_size",)),
    "waiting": Source("gauge", ("tgi_queue_size",)),
    "server_queue_s": Source("histogram", ("tgi_request_queue_duration",)),
    "server_e2e_s": Source("histogram", ("tgi_request_duration",)),
    "generation_tokens_per_s": Source("rate", ("tgi_request_generated_tokens_sum",)),
}

#: server -> figure -> where it lives. The mock exposes vLLM's names.
SERVERS: dict[str, dict[str, Source]] = {
    "mock": _VLLM,
    "vllm": _VLLM,
    "sglang": _SGLANG,
    "tgi": _TGI,
}


def known_names() -> frozenset[str]:
    """Every sample name a figure of a known server can be read from (a histogram's
    ``_bucket``, ``_sum`` and ``_count``), and those that tell the servers apart."""
    names = {"mock_tokens_sent_total"}
    sources = [s for server in SERVERS.values() for s in server.values()]
    for source in (*sources, _VLLM_V0_HIT_RATE):
        for name in source.names:
            if source.kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            else:
                names |= set(name.split(","))
    return frozenset(names)


def recognise(names: Iterable[str]) -> str | None:
    """The server whose metrics these are (``mock``, ``vllm``, ``sglang``, ``tgi``), or
    None for an exposition of no known server.

    Args:
        names: the sample names of one or more scrapes.
    """
    names = set(names)
    if any(n.startswith("vllm:") for n in names):
        return "mock" if "mock_tokens_sent_total" in names else "vllm"
    if any(n.startswith("sglang:") for n in names):
        return "sglang"
    if any(n.startswith("tgi_") for n in names):
        return "tgi"
    return None


def vocabulary(server: str | None, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each figure the exposition has: figure -> (kind, metric name).

    Args:
        server: what ``recognise`` said.
        names: the sample names seen (a histogram by its ``_count`` sample).
    """
    names = set(names)
    found: dict[str, tuple[str, str]] = {}
    for figure, source in (SERVERS.get(server or "") or {}).items():
        candidates = source.names
        if figure == "prefix_cache_hit_rate" and server == "vllm":
            candidates = (*candidates, *_VLLM_V0_HIT_RATE.names)
        for name in candidates:
            kind = source.kind if name not in _VLLM_V0_HIT_RATE.names else "gauge_mean"
            if _present(kind, name, names):
                found[figure] = (kind, name)
                break
    return found


def _present(kind: str, name: str, names: set[str]) -> bool:
    if kind == "histogram":
        return f"{name}_count" in names
    if kind == "ratio":
        return all(part in names for part in name.split(","))
    return name in names
