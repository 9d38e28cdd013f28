"""One run end to end: its segments under load, its figures, the server's view, its files.

Records are appended to ``results.jsonl`` as each request completes and are not kept;
each segment's figures, and the run's, are read back from the file. At the end the run
writes ``summary.json``, ``requests.csv``, ``timeseries.csv``, ``report.md`` and
``report.html`` beside it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__

# The figures' modules are imported where they are first needed, after the load: the
# summary's bring numpy, the files' pandas (a third of a second, after the summary shows).
from harness.errors import ConfigError
from harness.load.config import RunConfig
from harness.load.health import ClientSamples, client_verdict
from harness.load.ledger import ScheduleLedger, schedule_summary, send_lateness_ns
from harness.load.runner import Runner, SegmentRunner
from harness.record import RequestRecord
from harness.results import ResultsWriter, RunSummary, read_all_records
from harness.run.files import write_run_files
from harness.run.levels import (
    RateSearch,
    Sweep,
    abandons,
    levels_figures,
    saturated,
    search_rates,
    segments_of,
)
from harness.run.result import RunResult, default_out_dir
from harness.run.server import GaugeWatch, recognised_gauge, server_view, truths
from harness.servers.gauge import GaugeSelector
from harness.servers.scrape import DEFAULT_INTERVAL_S, Scraper
from harness.transports import run_event_loop

if TYPE_CHECKING:
    from harness.load.processes import ProcessRunner
    from harness.servers.export import LiveExport

__all__ = ["execute", "run_load"]


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
    if metrics_gauge is None and server_metrics and abandons(config, sweep):
        derived = metrics_gauge = await asyncio.to_thread(recognised_gauge, server_metrics)
    try:
        gauge = await GaugeWatch.start(metrics_gauge)  # an unreadable gauge: no run, no folder
    except ConfigError:
        if derived is None:
            raise
        derived, gauge = None, GaugeWatch(None, 0.0)  # a gauge nobody asked for: no judge
    out_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(out_dir=out_dir, summary={})
    export = None
    if prometheus_port is not None:
        from harness.servers.export import LiveExport  # prometheus_client: only when asked

        export = LiveExport(prometheus_port)
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
                else segments_of(config, sweep)
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
    found = await truths(result.records, truth_url)
    figures["disconnect"] = summarize_disconnects(
        result.records,
        found,
        gauge=settling_seen,
        samples=samples,
        max_tokens=config.spec.max_tokens,
    )
    if derived is not None and "gauge" in figures["disconnect"]:
        figures["disconnect"]["gauge"]["read"] = f"{derived[1]} at {derived[0]} (--server-metrics)"
    if sweep is not None and sweep.name == "disconnect-rate":
        figures["disconnect"]["ttft_of_others"] = ttft_of_others(result.segments)
    if scraper is not None:
        figures.update(server_view(config, result, scraper.path, selectors, figures))
    figures.update(_about(config, result, measurement_error=measurement_error, command=command))
    figures.update(levels_figures(result, sweep=sweep, search=search))
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
        runner: SegmentRunner
        processes: ProcessRunner | None = None
        if segment_config.processes > 1:
            from harness.load.processes import ProcessRunner  # multiprocessing: only here

            runner = processes = ProcessRunner(segment_config, sink, segment=label)
        else:
            runner = Runner(segment_config, sink, segment=label)
        if on_runner is not None:
            on_runner(runner)
        first = writer.offset
        await runner.run()
        if processes is not None and processes.failed:
            result.lost_processes.extend(processes.failed)
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
        if saturated(result.segments, sweep):
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
    from harness.analysis.summary import Window, summarize

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
    from harness.analysis.prompt_cache import prompt_cache
    from harness.analysis.summary import Window, summarize

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


def _self_judged(
    config: RunConfig,
    records: Sequence[RequestRecord],
    ledger: ScheduleLedger,
    client: ClientSamples | None,
) -> dict[str, Any]:
    """The summary's ``schedule`` (what became of every offered request) and ``client``
    (whether the client itself was the bottleneck)."""
    from harness.analysis.summary import merged_reads_share

    lateness = send_lateness_ns(records)
    verdict = client_verdict(
        client,
        send_lateness_ns=lateness,
        merged_reads_share=merged_reads_share(records),
        transport=config.transport,
        http2=config.http2,
        processes=config.processes,
        cores=config.placement().client_cpus or os.cpu_count() or 1,
        kernel_stamps=sys.platform.startswith("linux"),
    )
    return {"schedule": schedule_summary(ledger, lateness), "client": verdict}


def run_load(config: RunConfig, out_dir: Path | None = None, **options: Any) -> RunResult:
    """``execute`` on its own event loop (uvloop where installed), for synchronous callers.

    Args:
        config: the run.
        out_dir: where the run's files go (default ``reports/<time>-<id>/``).
        options: ``execute``'s keyword arguments (``sweep``, ``search``, ``truth_url``,
            ...).
    """
    return run_event_loop(execute(config, out_dir or default_out_dir(), **options))
