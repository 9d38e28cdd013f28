"""What the server says of a run: its gauge of running requests after the load, the
mock's ground truth of abandoned streams, and the figures of its scraped metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.analysis.server_figures import client_vs_server, server_figures
from harness.analysis.server_vocabulary import recognise, vocabulary
from harness.load.config import RunConfig
from harness.load.stopping import GUARD_NS, Sample, settling, watch_until_ns
from harness.record import Outcome, RequestRecord
from harness.results import RunSummary, read_all_records, read_scrapes, read_summary
from harness.run.files import write_run_files
from harness.run.result import RunResult
from harness.servers.gauge import GaugeSampler, GaugeSelector, check_gauge
from harness.servers.scrape import scrape_once

__all__ = ["GaugeWatch", "add_server_view", "recognised_gauge", "server_view", "truths"]

#: At most this many abandoned streams are checked against the server's ground truth.
MAX_TRUTH_LOOKUPS = 2000
#: How long to wait for the server's records of abandoned streams to settle.
TRUTH_SETTLE_S = 1.0
#: The longest the server's gauge is read after the load, for the abandoned streams to
#: stop or to end by themselves; ``GAUGE_WAIT_S`` when they would end is unknown.
GAUGE_WATCH_MAX_S = 30.0
GAUGE_WAIT_S = 10.0


class GaugeWatch:
    """The server's gauge of running requests through a run (``metrics_gauge``): read
    once before the load, sampled in a thread of its own through it, and after it until
    the abandoned streams stopped or would have ended by themselves."""

    def __init__(self, sampler: GaugeSampler | None, baseline: float) -> None:
        self._sampler = sampler
        self._baseline = baseline

    @classmethod
    async def start(cls, metrics_gauge: tuple[str, str] | None) -> GaugeWatch:
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


async def truths(records: list[RequestRecord], truth_url: str | None) -> dict[str, Any]:
    """The server's record of each abandoned stream, once it has settled.

    A stream closed in the last moments of the run may not be noticed by the server yet
    (the mock notices before its next write, or by a probe within 50 ms): such records
    are asked for again until they say the stream was noticed or ended, for at most
    ``TRUTH_SETTLE_S``.
    """
    if truth_url is None:
        return {}
    from harness.servers.embedded import fetch_truths  # urllib: only for a mock's truths

    wanted = [
        r.mock_request_id for r in records if r.outcome is Outcome.ABANDONED and r.mock_request_id
    ]
    wanted = wanted[:MAX_TRUTH_LOOKUPS]
    if not wanted:
        return {}
    found = await asyncio.to_thread(fetch_truths, truth_url, wanted, timeout_s=2.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TRUTH_SETTLE_S
    while loop.time() < deadline:
        unsettled = [i for i in wanted if (t := found.get(i)) is not None and not _settled(t)]
        if not unsettled:
            break
        await asyncio.sleep(0.05)
        found.update(await asyncio.to_thread(fetch_truths, truth_url, unsettled, timeout_s=2.0))
    return found


def _settled(truth: dict[str, Any]) -> bool:
    return truth.get("disconnect_detected_ns") is not None or bool(truth.get("done"))


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


def server_view(
    config: RunConfig,
    result: RunResult,
    path: Path,
    selectors: Sequence[GaugeSelector],
    figures: dict[str, Any],
) -> dict[str, Any]:
    """The server's own figures over the run's window, and the client's minus them; a
    sweep's or a search's segments get theirs over their own windows."""
    from harness.analysis.summary import Window

    scrapes = list(read_scrapes(path))  # read once, for the run and each of its segments
    window = Window.around(result.records, warmup_s=config.bounds.warmup_s)
    server = server_figures(
        scrapes, start_ns=window.start_ns, end_ns=window.end_ns, series=selectors
    )
    for segment in result.segments:
        records = [r for r in result.records if r.segment == segment["segment"]]
        if not records:
            continue
        around = Window.around(records, warmup_s=config.bounds.warmup_s)
        own = server_figures(
            scrapes, start_ns=around.start_ns, end_ns=around.end_ns, series=selectors
        )
        segment["server"] = own
        segment["client_vs_server"] = client_vs_server(segment["summary"], own)
    return {"server": server, "client_vs_server": client_vs_server(figures, server)}


def add_server_view(out_dir: Path, *, series: Sequence[str] = ()) -> RunSummary:
    """Add the server's own figures to a finished run folder whose
    ``server_metrics.jsonl`` was scraped beside another entry point's load (``sse-harness
    locust --server-metrics``): ``summary.json`` gets ``server`` and
    ``client_vs_server``, and the reports are written again.

    Raises:
        ConfigError: the folder holds no summary this version reads, or a selector of
            ``series`` is malformed.
    """
    from harness.analysis.summary import Window

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
