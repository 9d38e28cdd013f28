"""``sse-harness run``: the command itself. It reads its options (``run_options``), starts
the embedded mock when no ``--url`` is given, runs the load under a live display and the
stop signals, prints the summary (``run_display``) and returns the exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
import urllib.parse
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.request_options import embedded_mock_extra
from harness.cli.run_display import progress_table, show_summary
from harness.cli.run_options import (
    MOCK_JSON_PATH,
    add_run_arguments,
    check_options,
    config_from_args,
    gauge_from_args,
    run_parser,
    search_from_args,
)
from harness.cli.scenario_file import apply_scenario, located, write_scenario
from harness.cli.stop_signals import STOP_SIGNALS, StopSignals
from harness.errors import ConfigError
from harness.limits import raise_open_files_limit
from harness.load.config import RunConfig
from harness.load.placement import allowed_cpus
from harness.load.recorder import redact
from harness.load.schedule import ClosedLoop
from harness.transports import run_event_loop

if TYPE_CHECKING:  # harness.run brings the run's machinery: loaded when a run starts
    from rich.console import Console  # rich: loaded when a command prints (not for --help)

    from harness.load.runner import SegmentRunner
    from harness.run import RateSearch, RunResult, Sweep

__all__ = ["add_run_parser", "run_command", "run_failure"]


def add_run_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    run = commands.add_parser(
        "run",
        help=summary,
        description=(
            "Stream requests at an endpoint under a bounded load and measure time to first "
            "token, inter-token latency, throughput and errors. Without --url an embedded "
            "mock LLM server is started on a free loopback port. Writes results.jsonl, "
            "summary.json, requests.csv, timeseries.csv, report.md and report.html to --out "
            "(default reports/<time>-<id>/)."
        ),
    )
    add_run_arguments(run)
    run.set_defaults(handler=run_command)


async def _execute(
    args: argparse.Namespace,
    config: RunConfig,
    sweep: Sweep | None,
    search: RateSearch | None,
    out_dir: Path,
    truth_url: str | None,
    error: str | None,
    console: Console,
    signals: StopSignals,
) -> RunResult:
    """Run the load with a live display. SIGINT (Ctrl-C) and SIGTERM (``timeout``, ``docker
    stop``, a cancelled CI job) stop it alike: the first starts no new requests and gives
    those in flight ``--grace`` to finish, a second cancels them; the files are written
    either way. Every stop signal is counted in ``signals``."""
    from rich.live import Live

    loop = asyncio.get_running_loop()
    current: list[SegmentRunner] = []
    live = (
        None
        if args.quiet or not console.is_terminal
        else Live(console=console, refresh_per_second=4)
    )
    started_ns = [time.perf_counter_ns()]  # the current segment's start: rates per level

    def attach(runner: SegmentRunner) -> None:
        current[:] = [runner]
        started_ns[0] = time.perf_counter_ns()
        if signals.received:  # stopped before this segment began: it starts nothing
            runner.interrupt()
        if live is not None:
            live.update(progress_table(runner, started_ns[0]))

    def interrupt(signum: signal.Signals) -> None:
        stop = signals.add(signum)
        if stop == 0:  # the same SIGTERM again
            return
        if stop == 1:
            console.print(
                f"[yellow]stopping on {signum.name}: in-flight requests may finish within "
                f"{args.grace:g} s (Ctrl-C or SIGTERM again cancels them)[/]"
            )
        elif stop == 2:
            console.print(f"[yellow]cancelling in-flight requests on {signum.name}[/]")
        if current:
            current[0].interrupt()

    async def refresh() -> None:
        while True:
            await asyncio.sleep(0.25)
            if current and live is not None:
                live.update(progress_table(current[0], started_ns[0]))
            elif current and not args.quiet:
                runner = current[0]
                p = runner.progress
                level = f"{runner.segment}: " if runner.segment else ""
                console.print(
                    f"{level}done {p.completed}, in flight {p.in_flight}, errors {p.errors}"
                )
                await asyncio.sleep(4.75)

    def summarized(result: RunResult) -> None:
        # the figures are shown at once; the report's files are written after them
        ticker.cancel()
        if live is not None:
            live.stop()
        show_summary(result, console, search)

    for signum in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, interrupt, signum)
    ticker = asyncio.create_task(refresh())
    try:
        with live if live is not None else contextlib.nullcontext():
            from harness.run import execute

            return await execute(
                config,
                out_dir,
                sweep=sweep,
                search=search,
                truth_url=truth_url,
                measurement_error=error,
                metrics_gauge=gauge_from_args(args),
                server_metrics=args.server_metrics,
                server_series=args.server_series,
                scrape_interval_s=args.scrape_interval,
                prometheus_port=args.prometheus_port,
                on_runner=attach,
                command=_command_line(args, config),
                on_summary=summarized,
            )
    finally:
        ticker.cancel()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)


def _interrupted_exit_code(signals: StopSignals) -> int:
    """128 + the number of the signal that stopped the run, the shell's convention: 130
    for Ctrl-C (SIGINT), 143 for SIGTERM."""
    return signals.exit_code or 128 + signal.SIGINT


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def run_command(args: argparse.Namespace) -> int:
    """Run the load and print where its files went. Returns the exit code."""
    from rich.console import Console
    from rich.markup import escape

    from harness.calibration.stored import measurement_error
    from harness.run import default_out_dir

    console = Console(stderr=True)
    parser = run_parser()
    if args.scenario is not None:
        if args.config is not None:
            raise ConfigError("config", "give the scenario file once (--config or its path)")
        args.config = args.scenario
    if args.config is not None:
        apply_scenario(args, parser)
    with located(args):
        check_options(args)  # before the embedded mock starts
    objectives = None
    if args.gate:  # the gate's code loads only for a run that has one
        from harness.analysis.gate import load_objectives

        objectives = load_objectives(args.gate)  # malformed: exit 2 now
    raise_open_files_limit()
    with ExitStack() as stack:
        truth_url: str | None
        allowed = allowed_cpus()
        mock_cpu = allowed[0] if len(allowed) > 1 else None  # the client keeps the others
        if args.url is None:
            from harness.servers.embedded import embedded_mock, mock_arguments

            mock = stack.enter_context(
                embedded_mock(
                    mock_arguments(
                        ttft_ms=args.mock_ttft_ms,
                        itl_ms=args.mock_itl_ms,
                        tokens=args.mock_tokens,
                        seed=args.seed,
                        extra=embedded_mock_extra(args),
                    ),
                    cpu=mock_cpu,
                )
            )
            if mock_cpu is not None and hasattr(os, "sched_setaffinity"):
                with contextlib.suppress(OSError):  # the client off the mock's core
                    os.sched_setaffinity(0, set(allowed) - {mock_cpu})
            url, truth_url = mock.base_url, mock.base_url
            if args.request == "json":  # the mock's endpoint for plain JSON bodies
                url += MOCK_JSON_PATH
            console.print(
                f"embedded mock LLM server at {url} (TTFT {args.mock_ttft_ms:g} ms, "
                f"ITL {args.mock_itl_ms:g} ms, {args.mock_tokens} tokens)"
            )
        else:
            url = args.url
            truth_url = _origin(url) if _is_loopback(url) else None
        with located(args):
            config, sweep = config_from_args(args, url)
        mock_cpus = (mock_cpu,) if args.url is None and mock_cpu is not None else ()
        config = replace(config, cpus=allowed, mock_cpus=mock_cpus)
        placement = config.placement()
        if config.processes > 1 or mock_cpus:  # one process against a target: nothing chosen
            console.print(placement.describe())
        if placement.warning is not None:
            console.print(f"[yellow]warning: {escape(placement.warning)}[/]")
        search = search_from_args(args, config)
        out_dir = args.out or default_out_dir()
        concurrency = config.profile.concurrency if isinstance(config.profile, ClosedLoop) else None
        error = measurement_error(config.transport, concurrency)
        signals = StopSignals()
        result = run_event_loop(
            _execute(args, config, sweep, search, out_dir, truth_url, error, console, signals)
        )
        # once the run has its folder: a refused start (an unreadable gauge) leaves none
        write_scenario(out_dir, args, parser, config.spec.secrets)
    console.print(
        f"wrote {out_dir}/ (results.jsonl, summary.json, requests.csv, report.md, report.html)"
    )
    if result.interrupted:
        return _interrupted_exit_code(signals)
    failure = run_failure(result.summary, max_error_rate=args.max_error_rate)
    if failure is not None:
        console.print(f"[red]run failed: {escape(failure)}[/]")
    exit_code = 1 if failure is not None else 0
    if objectives is not None:
        from harness.cli.gate_command import GATE_FILES, apply_gate

        md, junit = (out_dir / name for name in GATE_FILES)
        gate = apply_gate(objectives, result.summary, run=str(out_dir), junit=junit, markdown=md)
        exit_code = max(exit_code, gate)
    return exit_code


def run_failure(summary: dict[str, Any], *, max_error_rate: float | None) -> str | None:
    """Why a finished run did not do its job (exit 1), or None when it did."""
    if summary.get("gave_up"):
        return f"stopped early: {summary['gave_up']}"
    if not summary["requests"]:
        return "measured nothing: no request was made inside the measurement window"
    if summary["ok"] + summary["abandoned"] + summary["cut"] == 0:
        return f"no request succeeded ({summary['errors']} errors)"
    if max_error_rate is not None and summary["error_rate"] > max_error_rate:
        return (
            f"error rate {summary['error_rate']:.1%} is above --max-error-rate {max_error_rate:g}"
        )
    return None


def _command_line(args: argparse.Namespace, config: RunConfig) -> list[str]:
    """``sse-harness run ...`` as given, with every secret redacted."""
    secrets = config.spec.secrets
    return ["sse-harness", *(redact(a, secrets) for a in getattr(args, "argv", None) or [])]


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
