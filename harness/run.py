"""``sse-harness run``: one run end to end, from configuration to the files it writes.

A run is one segment, or one per level of a sweep. Records are appended to
``results.jsonl`` as each request completes; at the end the run writes
``summary.json``, ``requests.csv`` and ``report.md`` beside it.

A sweep stops early once the target is saturated: a level whose output tokens/s is
less than 5% above the best level before it, or whose error rate passes 20%.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import __version__

# The figures' modules (harness.analysis.metrics and those on it) are imported where they
# are first needed, after the load: they bring pandas, a third of a second that a run
# would otherwise spend before its first request.
from harness.analysis.server_figures import client_vs_server, server_figures, server_series
from harness.analysis.server_vocabulary import recognise, vocabulary
from harness.errors import ConfigError
from harness.load.config import RunConfig
from harness.load.health import ClientSamples, client_verdict
from harness.load.ledger import ScheduleLedger, schedule_summary, send_lateness_ns
from harness.load.processes import ProcessRunner
from harness.load.runner import Runner, SegmentRunner
from harness.load.schedule import ClosedLoop, OpenLoop
from harness.load.stopping import GUARD_NS, Sample, settling, watch_until_ns
from harness.record import Outcome, RequestRecord
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.results import (
    ResultsWriter,
    RunSummary,
    read_all_records,
    read_scrapes,
    read_summary,
    write_summary,
)
from harness.servers.embedded import fetch_truths
from harness.servers.export import LiveExport
from harness.servers.gauge import GaugeSampler, GaugeSelector, check_gauge
from harness.servers.scrape import DEFAULT_INTERVAL_S, Scraper, scrape_once
from harness.transports import run_event_loop

__all__ = [
    "RateSearch",
    "RunResult",
    "add_server_view",
    "Sweep",
    "default_out_dir",
    "execute",
    "run_load",
    "search_rates",
    "server_rows",
    "write_run_files",
]

SATURATION_GAIN = 0.05
SATURATION_ERROR_RATE = 0.2
#: At most this many abandoned streams are checked against the server's ground truth.
MAX_TRUTH_LOOKUPS = 2000
#: How long to wait for the server's records of abandoned streams to settle.
TRUTH_SETTLE_S = 1.0
#: The longest the server's gauge is read after the load, for the abandoned streams to
#: stop or to end by themselves; ``GAUGE_WAIT_S`` when they would end is unknown.
GAUGE_WATCH_MAX_S = 30.0
GAUGE_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Sweep:
    """One segment per level of ``name`` (concurrency, rate or disconnect-rate)."""

    name: str
    levels: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class RateSearch:
    """Find the highest open-loop rate whose segment still meets every SLO.

    A rate passes when at least ``share`` of its requests met every ``--slo`` target and
    its error rate is at most ``max_error_rate``. The search doubles (or halves) from the
    starting rate until it has a passing and a failing rate, then bisects between them,
    for at most ``probes`` segments or until they are within 5% of each other.
    """

    start_rate: float
    probes: int = 12
    share: float = 0.95
    max_error_rate: float = 0.01

    def passes(self, summary: dict[str, Any]) -> bool:
        goodput = summary.get("goodput") or {}
        return (
            summary["requests"] > 0
            and summary["error_rate"] <= self.max_error_rate
            and goodput.get("share", 0.0) >= self.share
        )


@dataclass(slots=True)
class RunResult:
    out_dir: Path
    summary: dict[str, Any]
    segments: list[dict[str, Any]] = field(default_factory=list)
    records: list[RequestRecord] = field(default_factory=list)
    interrupted: bool = False
    #: why the run stopped before its bounds by itself (the target cannot be reached)
    gave_up: str | None = None
    #: client processes that ended without reporting back (``--processes``)
    lost_processes: list[str] = field(default_factory=list)
    #: what became of every request the schedule offered, over all segments
    ledger: ScheduleLedger = field(default_factory=ScheduleLedger)
    #: what the client process(es) saw of themselves (None when the self-watch was off)
    client: ClientSamples | None = None
    #: ``summary`` as its type (None for results gathered by another entry point)
    run_summary: RunSummary | None = None


def default_out_dir(root: Path = Path("reports")) -> Path:
    """``reports/<timestamp>-<short id>/``."""
    return root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def search_rates(
    config: RunConfig, search: RateSearch, segments: list[dict[str, Any]]
) -> Iterator[tuple[str, RunConfig]]:
    """The segments of a rate search; each probe's verdict is read from ``segments``,
    where the caller appends the summary of the segment it just ran."""
    good: float | None = None
    bad: float | None = None
    rate = search.start_rate
    for _ in range(search.probes):
        yield f"rate={rate:.4g}", _at_rate(config, rate)
        segment = segments[-1]
        segment["rate"] = rate  # the label is rounded; the probe's own rate is kept here
        segment["passed"] = search.passes(segment["summary"])
        if segment["passed"]:
            good = rate
        else:
            bad = rate
        if good is not None and bad is not None:
            if (bad - good) / bad < 0.05:
                return
            rate = (good + bad) / 2
        else:
            rate = rate * 2 if bad is None else rate / 2


def _at_rate(config: RunConfig, rate: float) -> RunConfig:
    """``config`` as an open loop at ``rate`` (keeping its arrival process, if it has one)."""
    base = config.profile if isinstance(config.profile, OpenLoop) else OpenLoop(rate=rate)
    return replace(config, profile=replace(base, rate=rate))


def _segments(config: RunConfig, sweep: Sweep | None) -> Iterator[tuple[str, RunConfig]]:
    if sweep is None:
        yield "", config
        return
    for level in sweep.levels:
        if sweep.name == "concurrency":
            ramp = config.profile.ramp_up_s if isinstance(config.profile, ClosedLoop) else 1.0
            segment = replace(config, profile=ClosedLoop(concurrency=int(level), ramp_up_s=ramp))
            label = f"concurrency={int(level)}"
        elif sweep.name == "rate":
            segment = _at_rate(config, level)
            label = f"rate={level:g}"
        else:
            segment = replace(config, disconnect_rate=level)
            label = f"disconnect-rate={level:g}"
        yield label, segment


def _saturated(segments: list[dict[str, Any]], sweep: Sweep | None) -> bool:
    if sweep is None or sweep.name == "disconnect-rate" or len(segments) < 2:
        return False
    last = segments[-1]["summary"]
    best_before = max(s["summary"]["output_tokens_per_s"] for s in segments[:-1])
    return last["error_rate"] > SATURATION_ERROR_RATE or last[
        "output_tokens_per_s"
    ] < best_before * (1 + SATURATION_GAIN)


async def execute(
    config: RunConfig,
    out_dir: Path,
    *,
    sweep: Sweep | None = None,
    search: RateSearch | None = None,
    truth_url: str | None = None,
    measurement_error: str | None = None,
    metrics_gauge: tuple[str, str] | None = None,
    server_metrics: Sequence[str] = (),
    server_series: Sequence[str] = (),
    scrape_interval_s: float = DEFAULT_INTERVAL_S,
    prometheus_port: int | None = None,
    on_runner: Callable[[SegmentRunner], None] | None = None,
    command: Sequence[str] | None = None,
    on_summary: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Run ``config`` (each level of ``sweep``) and write the run's files to ``out_dir``.

    Args:
        config: the run.
        out_dir: where ``results.jsonl``, ``summary.json``, ``requests.csv`` and
            ``report.md`` go; created if missing.
        sweep: run one segment per level instead of one.
        search: search for the highest rate that meets the SLO instead (``--find-max-rate``).
        truth_url: a mock's base URL, to check abandoned streams against its ground truth.
        measurement_error: a line on the machine's measurement error, for the report.
        metrics_gauge: ``(url, selector)`` of the server's Prometheus gauge of running
            requests, to check that abandoned streams were stopped where there is no
            ground truth: read before the run, then in a thread of its own through the
            run and after it, until the abandoned streams stopped or would have ended.
        server_metrics: servers' Prometheus ``/metrics`` to scrape through the run
            (``server_metrics.jsonl``; the summary's ``server`` and ``client_vs_server``).
        server_series: metrics (selectors, ``name{label="v"}``) to report as gauges
            whatever the server.
        scrape_interval_s: time between scrapes of each server. Where the run abandons
            streams and no ``metrics_gauge`` is given, a recognised server's gauge of
            running requests (``vllm:num_requests_running``, ...) judges them instead.
        prometheus_port: serve the run's live figures as Prometheus metrics on this
            loopback port while it runs (``harness.servers.export``).
        on_runner: called with each segment's ``Runner`` before it starts (progress
            display, signal handlers).
        command: the command line that ran it, secrets redacted (kept in the summary, so
            the run can be repeated from its own output).
        on_summary: called with the result once its summary is known, before the files
            beside ``results.jsonl`` are written (the terminal's summary, shown while the
            report is drawn).

    Raises:
        ConfigError: the gauge cannot be read before the run (naming ``metrics-url`` or
            ``metrics-gauge``).
    """
    selectors = [GaugeSelector.parse(text) for text in server_series]
    scraper = None
    if server_metrics:
        scraper = Scraper(
            server_metrics, out_dir / "server_metrics.jsonl", interval_s=scrape_interval_s
        )
    derived = None
    if metrics_gauge is None and server_metrics and _abandons(config, sweep):
        derived = metrics_gauge = await asyncio.to_thread(recognised_gauge, server_metrics)
    try:
        gauge = await _GaugeWatch.start(metrics_gauge)  # an unreadable gauge: no run, no folder
    except ConfigError:
        if derived is None:
            raise
        derived, gauge = None, _GaugeWatch(None, 0.0)  # a gauge nobody asked for: no judge
    out_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(out_dir=out_dir, summary={})
    export = LiveExport(prometheus_port) if prometheus_port is not None else None
    if export is not None:
        on_runner = _exported(export, on_runner)
    if scraper is not None:
        await asyncio.to_thread(scraper.start)  # a baseline scrape of each server first
    # records go to the file as they complete and are not kept: memory stays flat however
    # long the run; each segment's figures, and the run's, are read back from the file
    try:
        with ResultsWriter(out_dir / "results.jsonl") as writer, gauge.stopped_on_error():
            plan = (
                search_rates(config, search, result.segments)
                if search
                else _segments(config, sweep)
            )
            await _run_segments(
                plan,
                writer,
                result,
                sweep=sweep,
                search=search,
                on_runner=on_runner,
                observe=export.observe if export is not None else None,
            )
            result.records = read_all_records(writer.path, offset=writer.start_offset)
    finally:
        if scraper is not None:
            await asyncio.to_thread(scraper.stop)  # and a last one after the load
        if export is not None:
            export.close()
    settling_seen, samples = await gauge.after_load(result.records, config, result.interrupted)
    from harness.analysis.disconnects import summarize_disconnects, ttft_of_others

    figures = _figures(config, result)
    truths = await _truths(result.records, truth_url)
    figures["disconnect"] = summarize_disconnects(
        result.records,
        truths,
        gauge=settling_seen,
        samples=samples,
        max_tokens=config.spec.max_tokens,
    )
    if derived is not None and "gauge" in figures["disconnect"]:
        figures["disconnect"]["gauge"]["read"] = f"{derived[1]} at {derived[0]} (--server-metrics)"
    if sweep is not None and sweep.name == "disconnect-rate":
        figures["disconnect"]["ttft_of_others"] = ttft_of_others(result.segments)
    if scraper is not None:
        figures.update(_server(config, result, scraper.path, selectors, figures))
    figures.update(_about(config, result, measurement_error=measurement_error, command=command))
    figures.update(_levels(result, sweep=sweep, search=search))
    result.run_summary = RunSummary.of(figures)
    result.summary = result.run_summary.as_dict()
    if on_summary is not None:
        on_summary(result)
    write_run_files(result)
    return result


async def _run_segments(
    plan: Iterable[tuple[str, RunConfig]],
    writer: ResultsWriter,
    result: RunResult,
    *,
    sweep: Sweep | None,
    search: RateSearch | None,
    on_runner: Callable[[SegmentRunner], None] | None,
    observe: Callable[[RequestRecord], None] | None = None,
) -> None:
    """Run each segment of ``plan`` in turn, its records to ``writer`` (and to
    ``observe``), and gather into ``result`` what the runners saw; stop at an
    interruption, a target that cannot be reached, or a saturated sweep."""
    sink = writer.write
    if observe is not None:

        def sink(record: RequestRecord) -> None:
            writer.write(record)
            observe(record)

    for label, segment_config in plan:
        if segment_config.processes > 1:
            runner: SegmentRunner = ProcessRunner(segment_config, sink, segment=label)
        else:
            runner = Runner(segment_config, sink, segment=label)
        if on_runner is not None:
            on_runner(runner)
        first = writer.offset
        await runner.run()
        if isinstance(runner, ProcessRunner) and runner.failed:
            result.lost_processes.extend(runner.failed)
        result.ledger.add(runner.ledger)
        if runner.client is not None:
            result.client = result.client or ClientSamples()
            result.client.extend(runner.client)
        if sweep is not None or search is not None:
            records = read_all_records(writer.path, offset=first)
            result.segments.append(_segment(label, segment_config, records, runner, sweep))
        if runner.interrupted:
            result.interrupted = True
            return
        if runner.gave_up is not None:
            result.gave_up = runner.gave_up
            return
        if _saturated(result.segments, sweep):
            result.segments[-1]["saturated"] = True
            return


def _segment(
    label: str,
    config: RunConfig,
    records: list[RequestRecord],
    runner: SegmentRunner,
    sweep: Sweep | None,
) -> dict[str, Any]:
    """One level of a sweep or a search: its own figures over its own window."""
    from harness.analysis.metrics import Window, summarize

    window = Window.around(records, warmup_s=config.bounds.warmup_s)
    summary = summarize(records, window=window, slo=config.slo)
    summary.update(_self_judged(config, records, runner.ledger, runner.client))
    segment: dict[str, Any] = {"segment": label, "summary": summary}
    if sweep is not None and sweep.name == "disconnect-rate":
        segment["disconnect_rate"] = config.disconnect_rate
    return segment


def _figures(config: RunConfig, result: RunResult) -> dict[str, Any]:
    """The run's figures over its window, with its schedule's books and its client's
    verdict on itself."""
    from harness.analysis.metrics import Window, summarize
    from harness.analysis.prompt_cache import prompt_cache

    window = Window.around(result.records, warmup_s=config.bounds.warmup_s)
    figures = summarize(result.records, window=window, slo=config.slo)
    figures.update(_self_judged(config, result.records, result.ledger, result.client))
    figures["prompt_cache"] = prompt_cache(result.records, window)
    return figures


def _exported(
    export: LiveExport, on_runner: Callable[[SegmentRunner], None] | None
) -> Callable[[SegmentRunner], None]:
    """``on_runner`` that also points the live export's in-flight gauge at each runner."""

    def attach(runner: SegmentRunner) -> None:
        export.watch(lambda: runner.progress.in_flight)
        if on_runner is not None:
            on_runner(runner)

    return attach


def add_server_view(out_dir: Path, *, series: Sequence[str] = ()) -> RunSummary:
    """Add the server's own figures to a finished run folder whose
    ``server_metrics.jsonl`` was scraped beside another entry point's load (``sse-harness
    locust --server-metrics``): ``summary.json`` gets ``server`` and
    ``client_vs_server``, and the reports are written again.

    Raises:
        ConfigError: the folder holds no summary this version reads, or a selector of
            ``series`` is malformed.
    """
    from harness.analysis.metrics import Window

    selectors = [GaugeSelector.parse(text) for text in series]
    summary = read_summary(out_dir).as_dict()
    records = read_all_records(out_dir / "results.jsonl")
    window = Window.around(records)
    server = server_figures(
        read_scrapes(out_dir / "server_metrics.jsonl"),
        start_ns=window.start_ns,
        end_ns=window.end_ns,
        series=selectors,
    )
    summary.update(server=server, client_vs_server=client_vs_server(summary, server))
    result = RunResult(out_dir=out_dir, summary=summary, records=records)
    result.run_summary = RunSummary.of(summary)
    write_run_files(result)
    return result.run_summary


def _abandons(config: RunConfig, sweep: Sweep | None) -> bool:
    """Whether the run abandons streams (``--disconnect-rate``, or a sweep of it)."""
    if sweep is not None and sweep.name == "disconnect-rate":
        return any(level > 0 for level in sweep.levels)
    return config.disconnect_rate > 0


def recognised_gauge(urls: Sequence[str]) -> tuple[str, str] | None:
    """The gauge of running requests of a recognised server (vLLM, SGLang, TGI, the
    mock), as ``(url, name)``, read from one scrape of the first URL; None when that
    scrape fails, the server is not recognised, or there are several replicas (a gauge
    is read from one server)."""
    if len(urls) != 1:
        return None
    scrape = scrape_once(urls[0], 5.0)
    names = {name for name, _, _ in scrape.samples}
    kind, name = vocabulary(recognise(names), names).get("running", ("", ""))
    return (urls[0], name) if kind == "gauge" else None


def _server(
    config: RunConfig,
    result: RunResult,
    path: Path,
    selectors: Sequence[GaugeSelector],
    figures: dict[str, Any],
) -> dict[str, Any]:
    """The server's own figures over the run's window, and the client's minus them; a
    sweep's or a search's segments get theirs over their own windows."""
    from harness.analysis.metrics import Window

    window = Window.around(result.records, warmup_s=config.bounds.warmup_s)
    server = server_figures(
        read_scrapes(path), start_ns=window.start_ns, end_ns=window.end_ns, series=selectors
    )
    for segment in result.segments:
        records = [r for r in result.records if r.segment == segment["segment"]]
        if not records:
            continue
        around = Window.around(records, warmup_s=config.bounds.warmup_s)
        own = server_figures(
            read_scrapes(path), start_ns=around.start_ns, end_ns=around.end_ns, series=selectors
        )
        segment["server"] = own
        segment["client_vs_server"] = client_vs_server(segment["summary"], own)
    return {"server": server, "client_vs_server": client_vs_server(figures, server)}


def _about(
    config: RunConfig,
    result: RunResult,
    *,
    measurement_error: str | None,
    command: Sequence[str] | None,
) -> dict[str, Any]:
    """What the run was: its configuration (secrets redacted), dialects, how it ended."""
    dialects = sorted({r.dialect for r in result.records if r.dialect})
    return {
        "dialect": ", ".join(dialects) or None,
        "config": config.redacted(),
        "interrupted": result.interrupted,
        "gave_up": result.gave_up,
        "lost_processes": result.lost_processes or None,
        "version": __version__,
        "measurement_error": measurement_error or None,
        "command": list(command) if command is not None else None,
    }


def _levels(result: RunResult, *, sweep: Sweep | None, search: RateSearch | None) -> dict[str, Any]:
    """A sweep's or a rate search's levels, and what they came to."""
    levels: dict[str, Any] = {"segments": result.segments or None}
    if sweep is not None:
        levels["sweep"] = {
            "name": sweep.name,
            "levels": list(sweep.levels),
            "ran": [segment["segment"] for segment in result.segments],
            "stopped": _stop_reason(result),
        }
    if search is not None:
        passed = [s for s in result.segments if s.get("passed")]
        best = max(passed, key=lambda s: s["rate"]) if passed else None
        levels["max_rate"] = {
            "rate": best["rate"] if best else None,
            "requests_per_s": best["summary"]["requests_per_s"] if best else None,
            "probes": len(result.segments),
            "start_rate": search.start_rate,
            "rates": [segment["rate"] for segment in result.segments],
            "stopped": _stop_reason(result),
            "rule": f">= {search.share:.0%} of requests meet every SLO, errors <= "
            f"{search.max_error_rate:.0%}",
        }
    return levels


def run_load(config: RunConfig, out_dir: Path | None = None, **options: Any) -> RunResult:
    """``execute`` on its own event loop (uvloop where installed), for synchronous callers.

    Args:
        config: the run.
        out_dir: where the run's files go (default ``reports/<time>-<id>/``).
        options: ``execute``'s keyword arguments (``sweep``, ``search``, ``truth_url``,
            ...).
    """
    return run_event_loop(execute(config, out_dir or default_out_dir(), **options))


def _self_judged(
    config: RunConfig,
    records: Sequence[RequestRecord],
    ledger: ScheduleLedger,
    client: ClientSamples | None,
) -> dict[str, Any]:
    """The summary's ``schedule`` (what became of every offered request) and ``client``
    (whether the client itself was the bottleneck)."""
    from harness.analysis.metrics import merged_reads_share

    lateness = send_lateness_ns(records)
    verdict = client_verdict(
        client,
        send_lateness_ns=lateness,
        merged_reads_share=merged_reads_share(records),
        transport=config.transport,
        http2=config.http2,
        processes=config.processes,
        cores=config.placement().client_cpus or os.cpu_count() or 1,
    )
    return {"schedule": schedule_summary(ledger, lateness), "client": verdict}


class _GaugeWatch:
    """The server's gauge of running requests through a run (``metrics_gauge``): read
    once before the load, sampled in a thread of its own through it, and after it until
    the abandoned streams stopped or would have ended by themselves."""

    def __init__(self, sampler: GaugeSampler | None, baseline: float) -> None:
        self._sampler = sampler
        self._baseline = baseline

    @classmethod
    async def start(cls, metrics_gauge: tuple[str, str] | None) -> _GaugeWatch:
        """Read the gauge's baseline and start sampling (nothing without a gauge).

        Raises:
            ConfigError: the gauge cannot be read.
        """
        if metrics_gauge is None:
            return cls(None, 0.0)
        baseline = await asyncio.to_thread(check_gauge, *metrics_gauge)
        sampler = GaugeSampler(*metrics_gauge)
        sampler.start()
        return cls(sampler, baseline)

    @contextlib.contextmanager
    def stopped_on_error(self) -> Iterator[None]:
        """Stop sampling if the load fails; after the load it reads on."""
        try:
            yield
        except BaseException:
            if self._sampler is not None:
                self._sampler.stop()
            raise

    async def after_load(
        self, records: list[RequestRecord], config: RunConfig, interrupted: bool
    ) -> tuple[dict[str, Any] | None, list[Sample]]:
        """Read the gauge on after the load until it is back at its baseline (after the
        last close), or until the last abandoned stream would have ended by itself, at
        most ``GAUGE_WATCH_MAX_S``; then stop. Returns what it did after the load, and
        every sample (None and none without a gauge)."""
        sampler = self._sampler
        if sampler is None:
            return None, []
        ends = [r.t_close_ns or r.t_end_ns or r.t_sent_ns for r in records]
        load_end = max(ends, default=sampler.now_ns())
        try:
            if not interrupted:
                closes = [r.t_close_ns for r in records if r.t_close_ns is not None]
                horizon = watch_until_ns(records, max_tokens=config.spec.max_tokens)
                if horizon is None:
                    until = load_end + int(GAUGE_WAIT_S * 1e9)
                else:
                    until = horizon + 2 * sampler.interval_ns + GUARD_NS
                    until = min(until, load_end + int(GAUGE_WATCH_MAX_S * 1e9))
                since = max(closes, default=load_end) + 2 * GUARD_NS
                await asyncio.to_thread(
                    sampler.wait_settled, baseline=self._baseline, since_ns=since, until_ns=until
                )
        finally:
            samples = await asyncio.to_thread(sampler.stop)
        return settling(samples, baseline=self._baseline, since_ns=load_end), samples


def _stop_reason(result: RunResult) -> str:
    """Why a sweep or search ran the levels it did."""
    if result.interrupted:
        return "interrupted"
    if result.gave_up is not None:
        return result.gave_up
    if result.segments and result.segments[-1].get("saturated"):
        return "saturated: throughput gained under 5%, or errors passed 20%"
    return "every level ran"


async def _truths(records: list[RequestRecord], truth_url: str | None) -> dict[str, Any]:
    """The server's record of each abandoned stream, once it has settled.

    A stream closed in the last moments of the run may not be noticed by the server yet
    (the mock notices before its next write, or by a probe within 50 ms): such records
    are asked for again until they say the stream was noticed or ended, for at most
    ``TRUTH_SETTLE_S``.
    """
    if truth_url is None:
        return {}
    wanted = [
        r.mock_request_id for r in records if r.outcome is Outcome.ABANDONED and r.mock_request_id
    ]
    wanted = wanted[:MAX_TRUTH_LOOKUPS]
    if not wanted:
        return {}
    truths = await asyncio.to_thread(fetch_truths, truth_url, wanted, timeout_s=2.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TRUTH_SETTLE_S
    while loop.time() < deadline:
        unsettled = [i for i in wanted if (t := truths.get(i)) is not None and not _settled(t)]
        if not unsettled:
            break
        await asyncio.sleep(0.05)
        truths.update(await asyncio.to_thread(fetch_truths, truth_url, unsettled, timeout_s=2.0))
    return truths


def _settled(truth: dict[str, Any]) -> bool:
    return truth.get("disconnect_detected_ns") is not None or bool(truth.get("done"))


def write_run_files(result: RunResult, *, timings: dict[str, float] | None = None) -> None:
    """Write ``summary.json``, ``requests.csv``, ``timeseries.csv``, ``report.md`` and
    ``report.html`` of a finished run beside its ``results.jsonl`` (any entry point that
    gathered records); ``timings``, if given, gets the seconds each file took."""
    from harness.analysis.metrics import requests_frame, time_series

    out = result.out_dir
    clock = time.perf_counter
    times = timings if timings is not None else {}
    t = clock()
    write_summary(out / "summary.json", result.run_summary or result.summary)
    times["summary_json"], t = clock() - t, clock()
    requests_frame(result.records).to_csv(out / "requests.csv", index=False)
    times["requests_csv"], t = clock() - t, clock()
    series = time_series(result.records, client=result.client)
    series.to_csv(out / "timeseries.csv", index=False)
    times["timeseries_csv"], t = clock() - t, clock()
    (out / "report.md").write_text(render_markdown(result.summary, segments=result.segments))
    times["report_md"], t = clock() - t, clock()
    rows = server_rows(out, result.records)
    page = render_html(result.summary, result.records, series=series, server_rows=rows)
    (out / "report.html").write_text(page, "utf-8")
    times["report_html"] = clock() - t


def server_rows(out: Path, records: Sequence[RequestRecord]) -> list[dict[str, Any]]:
    """The scraped servers' series over time (from the first request sent), if any."""
    path = out / "server_metrics.jsonl"
    if not path.exists() or not records:
        return []
    return server_series(read_scrapes(path), origin_ns=min(r.t_sent_ns for r in records))
