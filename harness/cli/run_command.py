"""``sse-harness run``: its options, their translation into a ``RunConfig``, the live
progress display and the closing summary table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import urllib.parse
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.request_options import (
    add_mock_arguments,
    add_request_arguments,
    embedded_mock_extra,
    request_spec_from_args,
)
from harness.cli.scenario_file import apply_scenario, located, write_scenario
from harness.cli.stop_signals import STOP_SIGNALS, StopSignals
from harness.cli.workload_options import (
    add_workload_arguments,
    token_rule_from_args,
    turns_option,
)
from harness.errors import ConfigError
from harness.limits import raise_open_files_limit
from harness.load.config import RunConfig, parse_abandon, parse_slo
from harness.load.exchange import StreamBounds
from harness.load.lengths import TokenRule
from harness.load.payloads import Message, read_prompt_file, synthetic_prompt
from harness.load.placement import allowed_cpus
from harness.load.recorder import redact
from harness.load.schedule import ARRIVALS, Bounds, ClosedLoop, OpenLoop, Trace, parse_sweep
from harness.load.workload import Workload, fill_trace
from harness.load.workload_options import workload_from_options
from harness.report.labels import client_line, measured_rates, schedule_line, throughput_line
from harness.transports import Timeouts, run_event_loop

if TYPE_CHECKING:  # harness.run brings the analysis (pandas): loaded when a run starts
    from rich.console import Console  # rich: loaded when a command prints (not for --help)
    from rich.table import Table

    from harness.load.runner import SegmentRunner
    from harness.run import RateSearch, RunResult, Sweep

__all__ = ["add_run_arguments", "add_run_parser", "config_from_args", "run_command"]

#: Where a ``--request json`` run goes on the embedded mock: a tutorial-style endpoint that
#: takes ``{"prompt", "max_tokens"}`` and streams SSE.
MOCK_JSON_PATH = "/tutorial/events"

DEFAULT_REQUESTS = 100
DEFAULT_CONCURRENCY = 8


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


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        nargs="?",
        type=Path,
        metavar="SCENARIO.toml",
        help="a scenario file, as with --config",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="SCENARIO.toml",
        help="read the run's options from a scenario file (flags override it); the run "
        "folder gets the resolved one, scenario.toml, to repeat the run",
    )
    target = parser.add_argument_group("target")
    target.add_argument("--url", help="the endpoint; without it an embedded mock is started")
    add_request_arguments(target)

    prompts = parser.add_argument_group("prompts")
    prompts.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    prompts.add_argument("--prompt-file", type=Path, help="JSONL of prompts or message lists")
    prompts.add_argument("--prompt-words", type=int, help="synthetic prompts of this many words")
    prompts.add_argument("--max-tokens", type=int, help="output length to ask for")
    prompts.add_argument(
        "--turns",
        type=turns_option,
        default=1,
        help="turns per conversation, or 'dataset': replay each --dataset conversation turn "
        "by turn",
    )
    add_workload_arguments(parser)

    load = parser.add_argument_group("load (bounded by --requests and/or --duration)")
    load.add_argument(
        "--concurrency",
        type=int,
        help=f"closed loop users (default {DEFAULT_CONCURRENCY}); with --rate or --trace, "
        "the most requests in flight at once (later arrivals wait for a slot)",
    )
    load.add_argument("--ramp-up", type=float, default=1.0, help="seconds to start the users over")
    load.add_argument("--rate", type=float, help="open loop: requests per second")
    load.add_argument("--arrival", choices=ARRIVALS, default="constant")
    load.add_argument("--burstiness", type=float, default=1.0, help="gamma shape (<1 burstier)")
    load.add_argument("--trace", type=Path, help="replay a JSONL trace")
    load.add_argument("--sweep", help="e.g. concurrency=1,8,32 or rate=1,5,10")
    load.add_argument(
        "--find-max-rate",
        action="store_true",
        help="search the highest --rate whose segments meet every --slo (each probe: --duration)",
    )
    load.add_argument(
        "--requests", type=int, help=f"stop after this many (default {DEFAULT_REQUESTS})"
    )
    load.add_argument(
        "--duration", type=float, help="stop starting requests after this many seconds"
    )
    load.add_argument("--warmup", type=float, default=0.0, help="seconds left out of the figures")
    load.add_argument(
        "--grace", type=float, default=30.0, help="seconds in-flight requests may finish"
    )
    load.add_argument("--seed", type=int, default=0)
    load.add_argument(
        "--processes",
        type=int,
        default=1,
        help="client processes to spread the load over, one event loop each (use every core)",
    )
    parser.add_argument(
        "--no-self-watch",
        dest="self_watch",
        action="store_false",
        help="do not sample the client's own event-loop lag and CPU share; the summary then "
        "cannot say whether the client itself was the bottleneck (client.bound)",
    )

    limits = parser.add_argument_group("timeouts and per-request bounds")
    limits.add_argument("--connect-timeout", type=float, default=10.0)
    limits.add_argument("--ttft-timeout", type=float, default=60.0)
    limits.add_argument("--idle-timeout", type=float, default=60.0)
    limits.add_argument("--total-timeout", type=float, default=600.0)
    limits.add_argument(
        "--max-stream-seconds", type=float, help="cut streams after this (not an error)"
    )
    limits.add_argument("--max-events", type=int, help="cut streams after this many events")
    limits.add_argument(
        "--retry-429",
        type=int,
        default=0,
        metavar="N",
        help="send a request answered 429 or 503 again, up to N times, after its Retry-After "
        "(at most 30 s; 1 s when it gives none); every attempt stays in its record",
    )
    limits.add_argument(
        "--max-error-rate",
        type=float,
        metavar="P",
        help="exit 1 when the share of requests that failed is above P (0 to 1); "
        "without it, run exits 1 only when no request succeeded",
    )
    limits.add_argument("--disconnect-rate", help="share of streams to abandon, or a list to sweep")
    limits.add_argument("--disconnect-after", help="abandon after N tokens or Ns seconds")
    limits.add_argument(
        "--slo", action="append", default=[], help="goodput targets: ttft=0.5,tpot=0.05"
    )

    limits.add_argument(
        "--metrics-url",
        help="the server's Prometheus /metrics, read every "
        "100 ms through the run to check that abandoned streams were stopped "
        "before they would have ended by themselves",
    )
    limits.add_argument(
        "--metrics-gauge",
        help="its gauge of running requests: a name or a "
        "selector, e.g. vllm:num_requests_running or "
        "'app_streams{route=\"chat\"}'; the samples whose labels include the "
        "given ones are summed",
    )

    server = parser.add_argument_group("the server's own view")
    server.add_argument(
        "--server-metrics",
        action="append",
        default=[],
        metavar="URL",
        help="a server's Prometheus /metrics, scraped through the run into "
        "server_metrics.jsonl (repeatable, one per replica); vLLM, SGLang, TGI and the "
        "mock are recognised and put beside the client's figures",
    )
    server.add_argument(
        "--server-series",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="a metric to report as a gauge whatever the server, e.g. "
        "'app_streams{route=\"chat\"}' (repeatable)",
    )
    server.add_argument(
        "--prometheus-port",
        type=int,
        metavar="PORT",
        help="serve the run's own live figures (requests, errors by kind, TTFT/ITL/E2E "
        "histograms, tokens, in flight, send lateness) as Prometheus metrics on "
        "127.0.0.1:PORT while it runs (examples/grafana-dashboard.json graphs them)",
    )
    server.add_argument(
        "--scrape-interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between scrapes of each server (default 1)",
    )

    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help="run folder (default reports/<time>-<id>/)")
    output.add_argument("--quiet", action="store_true", help="no live progress")
    output.add_argument(
        "--gate",
        type=Path,
        metavar="FILE",
        help="judge the run against this SLO file: exit 1 on a breach (gate.md, gate-junit.xml)",
    )
    add_mock_arguments(parser, without="--url")


def _prompts(args: argparse.Namespace) -> tuple[tuple[Message, ...], ...]:
    prompts: list[tuple[Message, ...]] = [({"role": "user", "content": p},) for p in args.prompt]
    if args.prompt_file is not None:
        prompts += read_prompt_file(args.prompt_file)
    if args.prompt_words is not None:
        prompts += [
            ({"role": "user", "content": synthetic_prompt(args.prompt_words, seed)},)
            for seed in range(16)
        ]
    return tuple(prompts) or (({"role": "user", "content": "Tell me a story."},),)


def _workload(args: argparse.Namespace, rule: TokenRule, requests: int | None) -> Workload | None:
    """The pool of prompts a dataset, lengths or shared prefixes make (None without)."""
    return workload_from_options(args, _prompts(args), rule, seed=args.seed, requests=requests)


def search_from_args(args: argparse.Namespace, config: RunConfig) -> RateSearch | None:
    """The rate search of ``--find-max-rate``, checked against the rest of the options.

    Raises:
        ConfigError: no --slo, no --duration, or a sweep or closed loop asked for too.
    """
    if not args.find_max_rate:
        return None
    if not config.slo:
        raise ConfigError("find-max-rate", "give the targets to meet with --slo")
    if config.bounds.duration_s is None:
        raise ConfigError("find-max-rate", "give --duration: every probe runs that long")
    if args.sweep or args.concurrency or args.trace:
        raise ConfigError(
            "find-max-rate", "searches open-loop rates: drop --sweep, --concurrency, --trace"
        )
    from harness.run import RateSearch

    return RateSearch(start_rate=args.rate or 1.0)


#: Options that must be positive where given, and those that may also be zero.
_POSITIVE = (
    *("concurrency", "rate", "requests", "duration", "burstiness", "max_tokens", "prompt_words"),
    *("connect_timeout", "ttft_timeout", "idle_timeout", "total_timeout"),
    *("max_stream_seconds", "max_events"),
)
_NOT_NEGATIVE = ("ramp_up", "warmup", "grace", "retry_429")


def _check_options(args: argparse.Namespace) -> None:
    """Refuse values that cannot mean what they say, naming the option.

    Raises:
        ConfigError: the first impossible value.
    """
    for name in _POSITIVE:
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            raise ConfigError(name.replace("_", "-"), f"must be more than 0, not {value:g}")
    for name in _NOT_NEGATIVE:
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise ConfigError(name.replace("_", "-"), f"must be 0 or more, not {value:g}")
    if args.duration is not None and args.warmup >= args.duration:
        raise ConfigError(
            "warmup",
            f"{args.warmup:g} s leaves nothing of --duration {args.duration:g} s to measure",
        )
    if args.max_error_rate is not None and not 0 <= args.max_error_rate <= 1:
        raise ConfigError("max-error-rate", f"is a share from 0 to 1, not {args.max_error_rate:g}")
    if args.trace is not None and args.rate is not None:
        raise ConfigError("rate", "a --trace sets its own arrival times; give one or the other")
    if args.prometheus_port is not None and not 0 <= args.prometheus_port <= 65535:
        raise ConfigError("prometheus-port", f"is a TCP port, not {args.prometheus_port}")
    if not args.scrape_interval > 0:
        raise ConfigError("scrape-interval", f"must be more than 0, not {args.scrape_interval:g}")
    for url in args.server_metrics:
        if not url.lower().startswith(("http://", "https://")):
            raise ConfigError("server-metrics", f"{url!r} is not an http:// or https:// URL")


def config_from_args(args: argparse.Namespace, url: str) -> tuple[RunConfig, Sweep | None]:
    """Translate ``run``'s options into a configuration (and a sweep, if asked for).

    Raises:
        ConfigError: an option is invalid, named as the user spells it.
    """
    from harness.run import Sweep

    _check_options(args)
    spec = request_spec_from_args(args, url)
    sweep = None
    if args.sweep:
        name, levels = parse_sweep(args.sweep)
        sweep = Sweep(name, tuple(levels))
    disconnect_rate = 0.0
    if args.disconnect_rate:
        rates = [r for r in args.disconnect_rate.split(",") if r.strip()]
        if len(rates) > 1:
            _, levels = parse_sweep(f"disconnect-rate={args.disconnect_rate}")
            sweep = Sweep("disconnect-rate", tuple(levels))
        else:
            try:
                disconnect_rate = float(rates[0])
            except ValueError as exc:
                raise ConfigError("disconnect-rate", f"not a number: {rates[0]!r}") from exc
    rule = token_rule_from_args(args)
    if args.trace is not None:
        try:
            profile: Any = Trace.from_lines(
                args.trace.read_text().splitlines(), source=str(args.trace)
            )
        except OSError as exc:
            raise ConfigError("trace", f"cannot read {args.trace}: {exc.strerror}") from exc
        profile = fill_trace(profile, rule, seed=args.seed)
    elif args.rate is not None:
        profile = OpenLoop(
            rate=args.rate, arrival=args.arrival, burstiness=args.burstiness, seed=args.seed
        )
    else:
        profile = ClosedLoop(
            concurrency=args.concurrency or DEFAULT_CONCURRENCY, ramp_up_s=args.ramp_up
        )
    open_loop = not isinstance(profile, ClosedLoop)
    requests = args.requests
    if requests is None and args.duration is None:
        requests = len(profile.entries) if isinstance(profile, Trace) else DEFAULT_REQUESTS
    workload = _workload(args, rule, requests)
    config = RunConfig(
        spec=spec,
        profile=profile,
        bounds=Bounds(
            requests=requests, duration_s=args.duration, warmup_s=args.warmup, grace_s=args.grace
        ),
        dialect=args.dialect,
        pointer=args.pointer,
        transport=args.transport,
        http2=args.http2,
        follow_redirects=args.follow_redirects,
        timeouts=Timeouts(
            connect_s=args.connect_timeout,
            ttft_s=args.ttft_timeout,
            idle_s=args.idle_timeout,
            total_s=args.total_timeout,
        ),
        stream_bounds=StreamBounds(
            max_stream_s=args.max_stream_seconds, max_events=args.max_events
        ),
        disconnect_rate=disconnect_rate,
        disconnect_after=parse_abandon(args.disconnect_after) if args.disconnect_after else None,
        prompts=workload.prompts if workload else _prompts(args),
        prompt_max_tokens=workload.max_tokens if workload else (),
        workload=workload.info if workload else None,
        turns=args.turns if isinstance(args.turns, int) else 1,
        turn_max_tokens=workload.turn_max_tokens if workload else (),
        slo=parse_slo(args.slo),
        seed=args.seed,
        processes=args.processes,
        self_watch=args.self_watch,
        retry_429=args.retry_429,
        # with --rate, --concurrency caps the requests in flight: arrivals wait for a slot
        **({"max_in_flight": args.concurrency} if open_loop and args.concurrency else {}),
    )
    if sweep is not None and sweep.name == "disconnect-rate" and config.disconnect_after is None:
        raise ConfigError(
            "disconnect-after", "give it with --disconnect-rate (tokens, or Ns for seconds)"
        )
    return config, sweep


def _progress(runner: SegmentRunner, started_ns: int) -> Table:
    from rich.table import Table

    p = runner.progress
    elapsed_s = max((time.perf_counter_ns() - started_ns) / 1e9, 1e-9)
    recent = sorted(p.recent_ttft_s)
    ttft = f"{recent[len(recent) // 2] * 1000:,.0f} ms" if recent else "-"
    table = Table.grid(padding=(0, 2))
    segment = f"[bold]{runner.segment or 'run'}[/]"
    table.add_row(
        segment,
        f"done {p.completed}",
        f"in flight {p.in_flight}",
        f"TTFT p50 {ttft}",
        f"{p.tokens / elapsed_s:,.0f} tokens/s",
        f"errors {p.errors}",
        f"{elapsed_s:,.1f} s",
    )
    return table


def run_parser() -> argparse.ArgumentParser:
    """A parser of ``run``'s options alone (scenario files are read against it)."""
    parser = argparse.ArgumentParser(prog="sse-harness run", add_help=False)
    add_run_arguments(parser)
    return parser


def _levels_table(result: RunResult) -> Table | None:
    """One row per level of a sweep or rate search, as each level ran."""
    from rich import box
    from rich.table import Table

    if not result.segments:
        return None
    table = Table(title="per level (latencies in ms)", box=box.SIMPLE_HEAD, padding=(0, 1))
    columns = ("level", "reqs", "err", "TTFT p50", "TTFT p99", "ITL p50", "tok/s", "req/s")
    for column in columns:
        table.add_column(column, justify="left" if column == "level" else "right", no_wrap=True)
    marked = any("passed" in s or s.get("saturated") for s in result.segments)
    if marked:
        table.add_column("", no_wrap=True)
    for segment in result.segments:
        s = segment["summary"]
        latencies = (s["ttft_s"]["p50"], s["ttft_s"]["p99"], s["itl_s"]["p50"])
        measured = measured_rates(s)
        rates = (f"{measured[0]:,.1f}", f"{measured[1]:,.2f}") if measured else ("-", "-")
        row = [segment["segment"], str(s["requests"]), str(s["errors"])]
        row += [*map(_ms, latencies), *rates]
        if marked:
            passed = segment.get("passed")
            verdict = "" if passed is None else "passed" if passed else "failed"
            row.append("saturated" if segment.get("saturated") else verdict)
        table.add_row(*row)
    return table


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def _summary_table(result: RunResult) -> Table:
    from rich.table import Table

    s = result.summary
    pooled = ", all levels pooled" if result.segments else ""
    table = Table(
        title=f"{s['requests']} requests, {s['errors']} errors ({s['error_rate']:.1%}){pooled}"
    )
    for column in ("metric", "p50", "p90", "p99", "mean", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for label, key in (
        ("TTFT (ms)", "ttft_s"),
        ("ITL (ms)", "itl_s"),
        ("TPOT (ms)", "tpot_s"),
        ("E2E (ms)", "e2e_s"),
    ):
        d = s[key]
        table.add_row(
            label,
            *(
                "-" if d[c] is None else f"{d[c] * 1000:,.1f}"
                for c in ("p50", "p90", "p99", "mean", "max")
            ),
        )
    table.caption = throughput_line(s)
    return table


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
            live.update(_progress(runner, started_ns[0]))

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
                live.update(_progress(current[0], started_ns[0]))
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
                metrics_gauge=_gauge(args),
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


def show_summary(result: RunResult, console: Console, search: RateSearch | None) -> None:
    """The run's figures on the terminal: its levels, its summary and the server's, and
    what else a reader should know (errors, the schedule, the client's health)."""
    from rich.console import Console

    from harness.cli.server_table import server_table

    levels = _levels_table(result)
    if levels is not None:
        # a log, or a pipe, keeps every column whole: rich would squeeze them to 80
        Console(width=None if sys.stdout.isatty() else 120).print(levels)
    Console().print(_summary_table(result))
    server = server_table(result.summary)
    if server is not None:
        Console().print(server)
    if search is not None:
        found = result.summary["max_rate"]
        console.print(
            f"highest rate meeting the SLO: {found['rate'] or 'none'} requests/s "
            f"({found['probes']} probes; {found['rule']})"
        )
    for line in error_lines(result.summary):
        console.print(line, markup=False, highlight=False)
    for line in health_lines(result.summary):
        bound = (result.summary.get("client") or {}).get("bound")
        console.print(line, markup=False, highlight=False, style="yellow" if bound else None)


def _interrupted_exit_code(signals: StopSignals) -> int:
    """128 + the number of the signal that stopped the run, the shell's convention: 130
    for Ctrl-C (SIGINT), 143 for SIGTERM."""
    return signals.exit_code or 128 + signal.SIGINT


def _gauge(args: argparse.Namespace) -> tuple[str, str] | None:
    if (args.metrics_url is None) != (args.metrics_gauge is None):
        raise ConfigError("metrics-gauge", "give --metrics-url and --metrics-gauge together")
    return (args.metrics_url, args.metrics_gauge) if args.metrics_url else None


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
        _check_options(args)  # before the embedded mock starts
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


#: How much of each error kind's first message the terminal shows.
ERROR_MESSAGE_CHARS = 160


def error_lines(summary: dict[str, Any]) -> list[str]:
    """One line per error kind (its count and the first message of its kind), then what
    else a reader should know: tokens that were not text, answers without terminator."""
    counts = summary.get("errors_by_kind") or {}
    first = summary.get("first_error_by_kind") or {}
    lines = []
    for kind, count in sorted(counts.items(), key=lambda item: -item[1]):
        message = " ".join(str(first.get(kind, "")).split())
        if len(message) > ERROR_MESSAGE_CHARS:
            message = message[:ERROR_MESSAGE_CHARS] + "..."
        lines.append(f"  {kind}: {count}" + (f", first: {message}" if message else ""))
    kinds = summary.get("token_events_by_kind") or {}
    if kinds.get("reasoning") or kinds.get("tool_call"):
        text, reasoning, tools = (kinds.get(k, 0) for k in ("text", "reasoning", "tool_call"))
        lines.append(
            f"  token events: {text} text, {reasoning} reasoning, {tools} tool-call arguments"
        )
    if summary.get("no_terminator"):
        habit = "ended without the stream's terminator ([DONE]): a habit, not an error"
        lines.append(f"  note: {summary['no_terminator']} complete answer(s) {habit}")
    return lines


def health_lines(summary: dict[str, Any]) -> list[str]:
    """What became of the schedule, and whether the client itself was the bottleneck,
    with the remedy when it was."""
    lines = [f"  {line}" for line in (schedule_line(summary), client_line(summary)) if line]
    client = summary.get("client") or {}
    if client.get("bound"):
        reasons = "; ".join(client["reasons"])
        lines.append(f"  the client's own delays may have moved the figures: {reasons}")
        lines.append(f"  remedy: {client['remedy']}")
    return lines


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
