"""The server's own figures over a run's window, from the scrapes of its ``/metrics``.

Scrapes come from ``server_metrics.jsonl`` (``harness.results.ServerScrape``), one or
more servers (replicas) at a time. For each server the window runs from its last good
scrape at or before the client's window start (or its first good scrape) to its first
good scrape at or after the window end (or its last): the server's figures cover the
client's window and at most one scrape interval more on each side.

* Gauges (``running``, ``waiting``, ``kv_cache_usage``, named series) give the
  minimum, maximum, mean (over scrapes) and last value in that window; replicas are
  summed at every scrape time (``kv_cache_usage``: the highest replica).
* Counters give their increase over the window per second.
* Histograms are differenced over the window (end minus start, bucket by bucket), then
  a quantile is read by **bucket interpolation**, as Prometheus' ``histogram_quantile``
  does: the bucket holding the wanted rank is found, and the value placed linearly
  between its lower and upper edge. The true order statistic lies in that bucket, so
  the figure is off by at most the bucket's width: ``bound_s`` says so, beside each
  quantile. The mean (``_sum`` over ``_count``) is exact.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from harness.analysis.server_vocabulary import FIGURES, known_names, recognise, vocabulary
from harness.results import ServerScrape

__all__ = [
    "QUANTILE_METHOD",
    "Selector",
    "client_vs_server",
    "histogram_quantile",
    "server_figures",
    "server_series",
]

QUANTILE_METHOD = (
    "server quantiles come from its histograms, differenced over the window and read "
    "by linear interpolation inside the bucket holding the rank; each is off by at most "
    "its bucket's width (bound_s)"
)

Buckets = list[tuple[float, float]]  # (upper edge, cumulative count), edges ascending


class Selector(Protocol):
    """A metric name and the labels its samples must carry."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...


def histogram_quantile(q: float, buckets: Buckets) -> tuple[float, float | None] | None:
    """The ``q`` quantile of a cumulative histogram, and its bound.

    Args:
        q: from 0 to 1.
        buckets: ``(le, cumulative count)`` ascending, the last ``le`` being ``inf``.

    Returns:
        ``(value, bound)``, ``bound`` being the width of the bucket the value came from
        (None when that is the ``+Inf`` bucket: the value is then its lower edge, and
        the truth may be anywhere above it); None for an empty histogram.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank and cumulative > below:
            if math.isinf(upper):
                return lower, None
            lower = min(lower, upper)  # a first bucket with a negative edge
            share = (rank - below) / (cumulative - below)
            return lower + (upper - lower) * share, upper - lower
        if not math.isinf(upper):
            lower = upper
        below = cumulative
    return lower, None


def _matches(labels: Mapping[str, str], wanted: Iterable[tuple[str, str]]) -> bool:
    return all(labels.get(k) == v for k, v in wanted)


def _total(scrape: ServerScrape, name: str, labels: Sequence[tuple[str, str]] = ()) -> float | None:
    """The sum of the samples ``name`` (with ``labels``) in one scrape, or None."""
    values = [v for n, lab, v in scrape.samples if n == name and _matches(lab, labels) and v == v]
    return float(sum(values)) if values else None


def _buckets(scrape: ServerScrape, name: str) -> dict[float, float]:
    """A histogram's cumulative counts by edge, summed over its label sets."""
    counts: dict[float, float] = defaultdict(float)
    for sample_name, labels, value in scrape.samples:
        if sample_name == f"{name}_bucket" and "le" in labels:
            counts[float(labels["le"])] += value
    return dict(counts)


class _Server:
    """One server's good scrapes inside the window (and the one on each side)."""

    def __init__(
        self, scrapes: list[ServerScrape], start_ns: int | None, end_ns: int | None
    ) -> None:
        ok = sorted((s for s in scrapes if s.error is None), key=lambda s: s.t_ns)
        if start_ns is None or end_ns is None:  # the whole run
            self.scrapes = ok
            return
        before = [i for i, s in enumerate(ok) if s.t_ns <= start_ns]
        after = [i for i, s in enumerate(ok) if s.t_ns >= end_ns]
        first = before[-1] if before else 0
        last = after[0] if after else len(ok) - 1
        self.scrapes = ok[first : last + 1]

    @property
    def first(self) -> ServerScrape:
        return self.scrapes[0]

    @property
    def last(self) -> ServerScrape:
        return self.scrapes[-1]

    def histogram(self, name: str) -> tuple[dict[float, float], float, float] | None:
        """Bucket counts, sum and count of a histogram over the window, or None."""
        if len(self.scrapes) < 2:
            return None
        end, start = _buckets(self.last, name), _buckets(self.first, name)
        count_end = _total(self.last, f"{name}_count") or 0.0
        count_start = _total(self.first, f"{name}_count") or 0.0
        sum_end = _total(self.last, f"{name}_sum") or 0.0
        sum_start = _total(self.first, f"{name}_sum") or 0.0
        if count_end < count_start:  # the server restarted: its counts began again
            start, count_start, sum_start = {}, 0.0, 0.0
        diff = {le: n - start.get(le, 0.0) for le, n in end.items()}
        return diff, sum_end - sum_start, count_end - count_start

    def increase(self, name: str) -> tuple[float, float] | None:
        """A counter's increase over the window and the seconds it took, or None."""
        if len(self.scrapes) < 2:
            return None
        end, start = _total(self.last, name), _total(self.first, name)
        if end is None:
            return None
        start = 0.0 if start is None or end < start else start
        return end - start, (self.last.t_ns - self.first.t_ns) / 1e9


def _slim(scrape: ServerScrape, wanted: frozenset[str]) -> ServerScrape:
    """The scrape with only the samples a figure is read from: a long run's scrapes of
    a large exposition are read without holding every sample."""
    if not scrape.samples:
        return scrape
    kept = [s for s in scrape.samples if s[0] in wanted]
    return ServerScrape(t_ns=scrape.t_ns, url=scrape.url, elapsed_ns=scrape.elapsed_ns,
                        samples=kept, error=scrape.error)  # fmt: skip


def _by_url(scrapes: Iterable[ServerScrape]) -> dict[str, list[ServerScrape]]:
    grouped: dict[str, list[ServerScrape]] = defaultdict(list)
    for scrape in scrapes:
        grouped[scrape.url].append(scrape)
    return dict(grouped)


def _stepped(servers: Sequence[_Server], value: Any, combine: Any) -> list[tuple[int, float]]:
    """A gauge over time: at every scrape, each server's latest value, combined."""
    events = sorted(
        (s.t_ns, index, v)
        for index, server in enumerate(servers)
        for s in server.scrapes
        if (v := value(s)) is not None
    )
    latest: dict[int, float] = {}
    series = []
    for t_ns, index, v in events:
        latest[index] = v
        series.append((t_ns, combine(latest.values())))
    return series


def _gauge_stats(series: list[tuple[int, float]]) -> dict[str, float] | None:
    if not series:
        return None
    values = [v for _, v in series]
    return {
        "min": min(values),
        "max": max(values),
        "mean": sum(values) / len(values),
        "last": values[-1],
    }


def _histogram_figure(servers: Sequence[_Server], name: str) -> dict[str, Any] | None:
    merged: dict[float, float] = defaultdict(float)
    total_sum = total_count = 0.0
    edges: set[float] | None = None
    for server in servers:
        got = server.histogram(name)
        if got is None:
            continue
        counts, sum_, count = got
        edges = set(counts) if edges is None else edges & set(counts)
        for le, n in counts.items():
            merged[le] += n
        total_sum += sum_
        total_count += count
    if edges is None or total_count <= 0:
        return None
    buckets = sorted((le, merged[le]) for le in edges)
    figure: dict[str, Any] = {"count": int(total_count), "mean": total_sum / total_count}
    bounds: dict[str, float | None] = {}
    for key, q in (("p50", 0.5), ("p99", 0.99)):
        read = histogram_quantile(q, buckets)
        figure[key] = read[0] if read else None
        # edges are decimal seconds: their difference to the nanosecond, not 1.99999e-3
        bounds[key] = round(read[1], 9) if read and read[1] is not None else None
    figure["bound_s"] = bounds
    return figure


def server_figures(
    scrapes: Iterable[ServerScrape],
    *,
    start_ns: int,
    end_ns: int,
    series: Sequence[Selector] = (),
) -> dict[str, Any]:
    """The ``server`` block of a run's summary.

    Args:
        scrapes: every scrape of the run (any number of servers).
        start_ns, end_ns: the client's measurement window.
        series: metrics named by the user, reported as gauges whatever the server.

    Returns:
        ``recognised`` (the server, or None), ``urls``, ``scrapes``, ``scrape_errors``
        (with ``first_error``), the window the figures cover (``window_s``, relative
        to the client's window start), each vocabulary figure found, ``series``, and
        ``quantiles`` (how histogram quantiles were read).
    """
    wanted = known_names() | {selector.name for selector in series}
    scrapes = [_slim(s, wanted) for s in scrapes]
    by_url = _by_url(scrapes)
    errors = [s for s in scrapes if s.error is not None]
    block: dict[str, Any] = {
        "urls": sorted(by_url),
        "scrapes": len(scrapes) - len(errors),
        "scrape_errors": len(errors),
        "first_error": f"{errors[0].url}: {errors[0].error}" if errors else None,
    }
    servers = [_Server(group, start_ns, end_ns) for group in by_url.values()]
    servers = [s for s in servers if s.scrapes]
    names = {n for server in servers for s in server.scrapes for n, _, _ in s.samples}
    server_kind = recognise(names)
    block["recognised"] = server_kind
    if not servers:
        return block
    block["window_s"] = [
        round((min(s.first.t_ns for s in servers) - start_ns) / 1e9, 3),
        round((max(s.last.t_ns for s in servers) - start_ns) / 1e9, 3),
    ]
    for figure, (kind, name) in vocabulary(server_kind, names).items():
        value = _figure(servers, kind, name)
        if value is not None:
            block[figure] = value
    if series:
        block["series"] = {
            _shown(sel): _gauge_stats(
                _stepped(servers, lambda s, sel=sel: _total(s, sel.name, sel.labels), sum)
            )
            for sel in series
        }
    if any(isinstance(block.get(f), dict) and "bound_s" in block[f] for f in FIGURES):
        block["quantiles"] = QUANTILE_METHOD
    return block


def _figure(servers: Sequence[_Server], kind: str, name: str) -> Any:
    if kind == "histogram":
        return _histogram_figure(servers, name)
    if kind in ("gauge", "gauge_max", "gauge_mean"):
        combine = sum if kind == "gauge" else max
        stats = _gauge_stats(_stepped(servers, lambda s: _total(s, name), combine))
        if kind == "gauge_mean":
            return None if stats is None else stats["mean"]
        return stats
    if kind == "rate":
        rates = [got[0] / got[1] for s in servers if (got := s.increase(name)) and got[1] > 0]
        return sum(rates) if rates else None
    hits_name, queries_name = name.split(",")
    hits = queries = 0.0
    for server in servers:
        got_hits, got_queries = server.increase(hits_name), server.increase(queries_name)
        if got_hits and got_queries:
            hits += got_hits[0]
            queries += got_queries[0]
    return hits / queries if queries > 0 else None


def _shown(selector: Selector) -> str:
    if not selector.labels:
        return selector.name
    return selector.name + "{" + ",".join(f'{k}="{v}"' for k, v in selector.labels) + "}"


def server_series(scrapes: Iterable[ServerScrape], *, origin_ns: int) -> list[dict[str, Any]]:
    """The recognised gauges over time, for a report's panel: one row per scrape time
    with ``t_s`` (from ``origin_ns``), ``running``, ``waiting``, ``kv_cache_usage`` and
    ``generation_tokens_per_s`` (between this scrape and the one before), where known."""
    by_url = _by_url(_slim(s, known_names()) for s in scrapes)
    servers = [_Server(group, None, None) for group in by_url.values()]
    servers = [s for s in servers if s.scrapes]
    names = {n for server in servers for s in server.scrapes for n, _, _ in s.samples}
    found = vocabulary(recognise(names), names)
    rows: dict[int, dict[str, Any]] = defaultdict(dict)
    for figure in ("running", "waiting", "kv_cache_usage"):
        if figure in found:
            kind, name = found[figure]
            combine = sum if kind == "gauge" else max
            for t_ns, v in _stepped(servers, lambda s, name=name: _total(s, name), combine):
                rows[t_ns][figure] = v
    if "generation_tokens_per_s" in found:
        name = found["generation_tokens_per_s"][1]
        for server in servers:
            for before, after in zip(server.scrapes, server.scrapes[1:], strict=False):
                a, b = _total(before, name), _total(after, name)
                if a is not None and b is not None and b >= a and after.t_ns > before.t_ns:
                    rate = (b - a) / ((after.t_ns - before.t_ns) / 1e9)
                    row = rows[after.t_ns]
                    row["generation_tokens_per_s"] = row.get("generation_tokens_per_s", 0) + rate
    return [{"t_s": (t - origin_ns) / 1e9, **rows[t]} for t in sorted(rows)]


def client_vs_server(
    summary: Mapping[str, Any], server: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Client figure minus the server's own, for TTFT and E2E at p50 and p99, in ms, each
    with the server figure's bound (``bound_ms``); None when the server has neither."""
    gaps: dict[str, Any] = {}
    bounds: dict[str, float | None] = {}
    for family, client_key, server_key in (
        ("ttft", "ttft_s", "server_ttft_s"),
        ("e2e", "e2e_s", "server_e2e_s"),
    ):
        ours, theirs = summary.get(client_key) or {}, server.get(server_key) or {}
        for stat in ("p50", "p99"):
            if ours.get(stat) is None or theirs.get(stat) is None:
                continue
            gaps[f"{family}_{stat}_ms"] = (ours[stat] - theirs[stat]) * 1000
            bound = (theirs.get("bound_s") or {}).get(stat)
            bounds[f"{family}_{stat}_ms"] = None if bound is None else bound * 1000
    if not gaps:
        return None
    return {**gaps, "bound_ms": bounds}
