"""``sse-harness run``'s options: its arguments, the checks of their values, and the
``RunConfig`` (with the sweep or rate search) they make."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.request_options import (
    add_mock_arguments,
    add_request_arguments,
    request_spec_from_args,
)
from harness.cli.workload_options import (
    add_workload_arguments,
    token_rule_from_args,
    turns_option,
)
from harness.errors import ConfigError
from harness.load.config import RunConfig, parse_abandon, parse_slo
from harness.load.exchange import StreamBounds
from harness.load.lengths import TokenRule
from harness.load.payloads import Message, read_prompt_file, synthetic_prompt
from harness.load.schedule import ARRIVALS, Bounds, ClosedLoop, OpenLoop, Trace, parse_sweep
from harness.load.workload import Workload, fill_trace
from harness.load.workload_options import workload_from_options
from harness.transports import Timeouts

if TYPE_CHECKING:  # harness.run brings the run's machinery: loaded when a run starts
    from harness.run import RateSearch, Sweep

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_REQUESTS",
    "MOCK_JSON_PATH",
    "add_run_arguments",
    "check_options",
    "config_from_args",
    "gauge_from_args",
    "run_parser",
    "search_from_args",
]

#: Where a ``--request json`` run goes on the embedded mock: a tutorial-style endpoint that
#: takes ``{"prompt", "max_tokens"}`` and streams SSE.
MOCK_JSON_PATH = "/tutorial/events"

DEFAULT_REQUESTS = 100
DEFAULT_CONCURRENCY = 8


def run_parser() -> argparse.ArgumentParser:
    """A parser of ``run``'s options alone (scenario files are read against it)."""
    parser = argparse.ArgumentParser(prog="sse-harness run", add_help=False)
    add_run_arguments(parser)
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``run``: the target and its request, the load, the bounds, the
    workload, the checks of the server and the files."""
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


def check_options(args: argparse.Namespace) -> None:
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

    check_options(args)
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


def gauge_from_args(args: argparse.Namespace) -> tuple[str, str] | None:
    """``(url, selector)`` of ``--metrics-url`` and ``--metrics-gauge``, None without them.

    Raises:
        ConfigError: one is given without the other.
    """
    if (args.metrics_url is None) != (args.metrics_gauge is None):
        raise ConfigError("metrics-gauge", "give --metrics-url and --metrics-gauge together")
    return (args.metrics_url, args.metrics_gauge) if args.metrics_url else None
