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
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import __version__
from harness.analysis.disconnects import summarize_disconnects, ttft_of_others
from harness.analysis.metrics import (
    Window,
    merged_reads_share,
    requests_frame,
    summarize,
    time_series,
)
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
from harness.results import ResultsWriter, read_records
from harness.servers.embedded import fetch_truths
from harness.servers.gauge import GaugeSampler, check_gauge

__all__ = [
    "RateSearch",
    "RunResult",
    "Sweep",
    "default_out_dir",
    "execute",
    "search_rates",
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
    on_runner: Callable[[SegmentRunner], None] | None = None,
    command: Sequence[str] | None = None,
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
        on_runner: called with each segment's ``Runner`` before it starts (progress
            display, signal handlers).
        command: the command line that ran it, secrets redacted (kept in the summary, so
            the run can be repeated from its own output).

    Raises:
        ConfigError: the gauge cannot be read before the run (naming ``metrics-url`` or
            ``metrics-gauge``).
    """
    baseline = 0.0
    if metrics_gauge is not None:
        baseline = await asyncio.to_thread(check_gauge, *metrics_gauge)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(out_dir=out_dir, summary={})
    sampler = None
    if metrics_gauge is not None:
        sampler = GaugeSampler(*metrics_gauge)
        sampler.start()
    results_path = out_dir / "results.jsonl"
    # records go to the file as they complete and are not kept: memory stays flat however
    # long the run; each segment's figures, and the run's, are read back from the file
    with ResultsWriter(results_path) as writer, _stopped_on_error(sampler):
        sink = writer.write

        plan = search_rates(config, search, result.segments) if search else _segments(config, sweep)
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
                records = list(read_records(results_path, offset=first))
                window = Window.around(records, warmup_s=segment_config.bounds.warmup_s)
                summary = summarize(records, window=window, slo=segment_config.slo)
                summary.update(_self_judged(segment_config, records, runner.ledger, runner.client))
                result.segments.append({"segment": label, "summary": summary})
                if sweep is not None and sweep.name == "disconnect-rate":
                    result.segments[-1]["disconnect_rate"] = segment_config.disconnect_rate
            if runner.interrupted:
                result.interrupted = True
                break
            if runner.gave_up is not None:
                result.gave_up = runner.gave_up
                break
            if _saturated(result.segments, sweep):
                result.segments[-1]["saturated"] = True
                break
        result.records = list(read_records(results_path, offset=writer.start_offset))
    gauge, samples = None, []
    if sampler is not None:
        gauge, samples = await _watch_gauge(
            sampler, baseline, result.records, config, interrupted=result.interrupted
        )
    window = Window.around(result.records, warmup_s=config.bounds.warmup_s)
    summary = summarize(result.records, window=window, slo=config.slo)
    summary.update(_self_judged(config, result.records, result.ledger, result.client))
    truths = await _truths(result.records, truth_url)
    summary["disconnect"] = summarize_disconnects(
        result.records, truths, gauge=gauge, samples=samples, max_tokens=config.spec.max_tokens
    )
    if sweep is not None and sweep.name == "disconnect-rate":
        summary["disconnect"]["ttft_of_others"] = ttft_of_others(result.segments)
    dialects = sorted({r.dialect for r in result.records if r.dialect})
    summary["dialect"] = ", ".join(dialects) or None
    summary["config"] = config.redacted()
    summary["interrupted"] = result.interrupted
    if result.gave_up is not None:
        summary["gave_up"] = result.gave_up
    if result.lost_processes:
        summary["lost_processes"] = result.lost_processes
    summary["version"] = __version__
    if measurement_error:
        summary["measurement_error"] = measurement_error
    if result.segments:
        summary["segments"] = result.segments
    if sweep is not None:
        summary["sweep"] = {
            "name": sweep.name,
            "levels": list(sweep.levels),
            "ran": [segment["segment"] for segment in result.segments],
            "stopped": _stop_reason(result),
        }
    if command is not None:
        summary["command"] = list(command)
    if search is not None:
        passed = [s for s in result.segments if s.get("passed")]
        best = max(passed, key=lambda s: s["rate"]) if passed else None
        summary["max_rate"] = {
            "rate": best["rate"] if best else None,
            "requests_per_s": best["summary"]["requests_per_s"] if best else None,
            "probes": len(result.segments),
            "start_rate": search.start_rate,
            "rates": [segment["rate"] for segment in result.segments],
            "stopped": _stop_reason(result),
            "rule": f">= {search.share:.0%} of requests meet every SLO, errors <= "
            f"{search.max_error_rate:.0%}",
        }
    result.summary = summary
    write_run_files(result)
    return result


def _self_judged(
    config: RunConfig,
    records: Sequence[RequestRecord],
    ledger: ScheduleLedger,
    client: ClientSamples | None,
) -> dict[str, Any]:
    """The summary's ``schedule`` (what became of every offered request) and ``client``
    (whether the client itself was the bottleneck)."""
    lateness = send_lateness_ns(records)
    verdict = client_verdict(
        client,
        send_lateness_ns=lateness,
        merged_reads_share=merged_reads_share(records),
        transport=config.transport,
        http2=config.http2,
        processes=config.processes,
        cores=os.cpu_count() or 1,
    )
    return {"schedule": schedule_summary(ledger, lateness), "client": verdict}


@contextlib.contextmanager
def _stopped_on_error(sampler: GaugeSampler | None) -> Iterator[None]:
    """Stop the gauge's sampler if the load fails; after the load it reads on."""
    try:
        yield
    except BaseException:
        if sampler is not None:
            sampler.stop()
        raise


async def _watch_gauge(
    sampler: GaugeSampler,
    baseline: float,
    records: list[RequestRecord],
    config: RunConfig,
    *,
    interrupted: bool,
) -> tuple[dict[str, Any], list[Sample]]:
    """Read the gauge on after the load until it is back at ``baseline`` (after the last
    close), or until the last abandoned stream would have ended by itself, at most
    ``GAUGE_WATCH_MAX_S``; then stop the sampler. Returns what it did after the load,
    and every sample."""
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
                sampler.wait_settled, baseline=baseline, since_ns=since, until_ns=until
            )
    finally:
        samples = await asyncio.to_thread(sampler.stop)
    return settling(samples, baseline=baseline, since_ns=load_end), samples


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
        unsettled = [i for i in wanted if truths.get(i) is not None and not _settled(truths[i])]
        if not unsettled:
            break
        await asyncio.sleep(0.05)
        truths.update(await asyncio.to_thread(fetch_truths, truth_url, unsettled, timeout_s=2.0))
    return truths


def _settled(truth: dict[str, Any]) -> bool:
    return truth.get("disconnect_detected_ns") is not None or bool(truth.get("done"))


def write_run_files(result: RunResult) -> None:
    """Write ``summary.json``, ``requests.csv``, ``timeseries.csv`` and ``report.md`` of a
    finished run beside its ``results.jsonl`` (any entry point that gathered records)."""
    out = result.out_dir
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str) + "\n")
    requests_frame(result.records).to_csv(out / "requests.csv", index=False)
    time_series(result.records, client=result.client).to_csv(out / "timeseries.csv", index=False)
    (out / "report.md").write_text(render_markdown(result.summary, segments=result.segments))
    (out / "report.html").write_text(render_html(result.summary, result.records), "utf-8")
