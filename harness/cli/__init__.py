"""The ``sse-harness`` command: subcommands, printing and exit codes.

Every subcommand is a thin layer over a library call; this module is the only one that
prints. Exit codes: 0 success, 1 a check or gate failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.cli.check_command import add_check_parser
from harness.cli.client_bench_command import add_client_bench_parser
from harness.cli.compare_command import add_compare_parser
from harness.cli.gate_command import add_gate_parser
from harness.cli.locust_command import add_locust_bench_parser, add_locust_parser
from harness.cli.memory_bench_command import add_memory_bench_parser
from harness.cli.report_command import add_report_parser
from harness.cli.run_bench_command import add_run_bench_parser
from harness.cli.run_command import add_run_arguments, run_command
from harness.dialects import DIALECT_NAMES
from harness.errors import HarnessError
from harness.transports import TRANSPORTS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DIALECT_CHOICES = ("auto", *DIALECT_NAMES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sse-harness",
        description=(
            "Load tests and conformance checks for LLM endpoints that stream Server-Sent Events."
        ),
    )
    parser.add_argument("--version", action="version", version=f"sse-harness {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a load against an endpoint (default: an embedded mock) and report",
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
    add_check_parser(commands)

    calibrate = commands.add_parser(
        "calibrate",
        help="measure this machine's client error against the mock's ground truth",
        description=(
            "Run the client against the embedded mock at rising concurrency for each "
            "transport and report, from the mock's own write times, the arrival lag of "
            "every token (p50, p99, max; first tokens apart), the error of measured ITL, "
            "and client CPU per event; then name the highest concurrency per transport "
            "whose p99 lag stays within 2 ms. The result is saved for this machine and "
            "quoted in later run reports. With --baseline, each level first runs the "
            "leanest client Python allows (raw sockets, a byte scan per read) and each "
            "transport's CPU per event is also given as a multiple of it."
        ),
    )
    calibrate.add_argument(
        "--levels",
        default="1,10,100,500,1000,2000",
        help="concurrent streams, in order (stops at the first errors)",
    )
    calibrate.add_argument(
        "--transport",
        choices=TRANSPORTS,
        action="append",
        help="a transport to calibrate (default: all)",
    )
    calibrate.add_argument("--seconds", type=float, default=4.0, help="length of each stream")
    calibrate.add_argument("--json", type=Path, help="also write the levels as JSON lines here")
    calibrate.add_argument(
        "--baseline",
        action="store_true",
        help="run the leanest client at every level too, as this machine's floor",
    )
    calibrate.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every level this many times over and quote the median and range "
        "of each figure (the machine's calibration keeps the last round)",
    )
    calibrate.add_argument(
        "--no-self-watch",
        dest="self_watch",
        action="store_false",
        help="measure without the client's self-watch (its verdict column stays empty), "
        "to see what the watch costs",
    )
    calibrate.set_defaults(handler=_calibrate)

    commands.add_parser(
        "mock",
        help="serve the mock LLM server (see `sse-harness mock --help`)",
        add_help=False,
    )

    decode = commands.add_parser(
        "decode",
        help="decode a captured response body and print what it says, as JSON",
        description=(
            "Read a captured streaming response body (for example saved with `curl -N`) and "
            "print one JSON object: the dialect, the rebuilt text, reasoning, tool calls, "
            "finish reason, usage, event counts, and any in-stream or protocol error."
        ),
    )
    decode.add_argument("file", type=Path, help="the body to decode; - reads standard input")
    decode.add_argument(
        "--content-type",
        help="the response's Content-Type (text/plain selects plain text); default: SSE",
    )
    decode.add_argument(
        "--dialect",
        choices=DIALECT_CHOICES,
        default="auto",
        help="the API format of the stream (default: detected from the first event)",
    )
    decode.add_argument(
        "--pointer",
        help="for the generic dialect: a JSON pointer to the text field, e.g. /content",
    )
    decode.set_defaults(handler=_decode)

    bench = commands.add_parser("bench", help="benchmarks of sse-harness's own parts")
    targets = bench.add_subparsers(dest="target", metavar="TARGET", required=True)
    parser_bench = targets.add_parser(
        "parser",
        help="harness.sse against httpx-sse's decoder, side by side",
        description=(
            "Decode the same OpenAI chat streams with harness.sse and with httpx-sse's "
            "decoder in one process, rounds interleaved, and print events/s and MB/s of "
            "the best round of each: a 10 MB stream fed one event per feed and in 64 KiB "
            "feeds, and 100 KB fed one byte at a time."
        ),
    )
    parser_bench.add_argument("--rounds", type=int, default=5, help="rounds per case (best counts)")
    parser_bench.add_argument("--size-mb", type=float, default=10.0, help="stream size, MB")
    parser_bench.add_argument("--json", action="store_true", help="print JSON lines instead")
    parser_bench.set_defaults(handler=_bench_parser)
    mock_bench = targets.add_parser(
        "mock",
        help="the mock's capacity: concurrent streams held with p99 send lateness in bounds",
        description=(
            "Start the mock afresh for each concurrency level (pinned to core 0), hold that "
            "many chat streams with a lean client on another core, and read the send "
            "lateness of every token written in the steady window from the mock's own ground "
            "truth. Each level first measures the plainest aiohttp mock the same way, as this "
            "machine's yardstick. Reports tokens/s, lateness p50/p99/max and CPU per level and "
            "server, and the highest level whose p99 lateness stays within --target-ms."
        ),
    )
    mock_bench.add_argument(
        "--levels", default="250,500,750,1000,1250,1500", help="concurrent streams to try, in order"
    )
    mock_bench.add_argument("--workers", type=int, default=1, help="mock worker processes")
    mock_bench.add_argument("--itl-ms", type=float, default=20.0)
    mock_bench.add_argument("--seconds", type=float, default=6.0, help="steady window per level")
    mock_bench.add_argument(
        "--ramp", type=float, default=3.0, help="seconds to open the streams over"
    )
    mock_bench.add_argument("--target-ms", type=float, default=2.0, help="p99 lateness bound")
    mock_bench.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure the levels this many times over and add each level's median and range",
    )
    mock_bench.add_argument("--json", action="store_true", help="print JSON lines instead")
    mock_bench.add_argument(
        "--no-yardstick",
        dest="yardstick",
        action="store_false",
        help="leave out the plain aiohttp mock that each level measures first, the same "
        "way, as this machine's yardstick",
    )
    mock_bench.set_defaults(handler=_bench_mock)
    add_locust_bench_parser(targets)
    add_client_bench_parser(targets)
    add_memory_bench_parser(targets)
    add_run_bench_parser(targets)
    add_report_parser(commands)
    add_gate_parser(commands)
    add_compare_parser(commands)
    add_locust_parser(commands)
    return parser


def _decode(args: argparse.Namespace) -> int:
    from harness.dialects.decode import decode_body, render_summary

    try:
        body = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    except OSError as exc:
        return _usage_error(f"cannot read {args.file}: {exc.strerror or exc}")
    result = decode_body(
        body, content_type=args.content_type, dialect=args.dialect, pointer=args.pointer
    )
    print(render_summary(result))
    return EXIT_OK


def _bench_parser(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.calibration.parser_bench import run_parser_bench

    if args.rounds < 1 or args.size_mb <= 0:
        return _usage_error("--rounds must be at least 1 and --size-mb positive")
    console = Console(stderr=True)
    measurements = []
    with console.status("decoding…"):
        for m in run_parser_bench(rounds=args.rounds, stream_mb=args.size_mb):
            measurements.append(m)
    if args.json:
        for m in measurements:
            print(
                json.dumps(
                    {
                        "case": m.case,
                        "decoder": m.decoder,
                        "events": m.events,
                        "best_s": round(m.best_s, 6),
                        "events_per_s": round(m.events_per_s),
                        "mb_per_s": round(m.mb_per_s, 2),
                    }
                )
            )
        return EXIT_OK
    table = Table(title=f"SSE decoding, best of {args.rounds} rounds")
    for column in ("case", "decoder", "events/s", "MB/s", "vs httpx-sse"):
        table.add_column(column, justify="left" if column in ("case", "decoder") else "right")
    baseline = {m.case: m.events_per_s for m in measurements if m.decoder == "httpx-sse"}
    for m in measurements:
        table.add_row(
            m.case,
            m.decoder,
            f"{m.events_per_s:,.0f}",
            f"{m.mb_per_s:,.1f}",
            f"{m.events_per_s / baseline[m.case]:.2f}x",
        )
    Console().print(table)
    return EXIT_OK


def _levels(text: str) -> list[int] | None:
    """``"1,10,100"`` as concurrency levels; None when it is not positive whole numbers."""
    try:
        levels = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        return None
    return levels if levels and min(levels) >= 1 else None


def _calibrate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from harness.calibration.calibrate import (
        BASELINE,
        LevelResult,
        best_levels,
        run_calibration,
        save_calibration,
        spread_over_rounds,
    )

    levels = _levels(args.levels)
    if levels is None or args.seconds <= 0:
        return _usage_error("--levels takes positive whole numbers and --seconds a positive time")
    if args.rounds < 1:
        return _usage_error("--rounds must be >= 1")
    console = Console(stderr=True)
    transports = args.transport or list(TRANSPORTS)
    rounds: list[list[LevelResult]] = []
    lines = []
    for number in range(args.rounds):
        results: list[LevelResult] = []
        rounds.append(results)
        calibration = run_calibration(
            transports,
            levels,
            seconds=args.seconds,
            baseline=args.baseline,
            self_watch=args.self_watch,
        )
        for result in calibration:
            results.append(result)
            line = asdict(result) | ({"round": number + 1} if args.rounds > 1 else {})
            lines.append(json.dumps(line) + "\n")
            user = result.user_lag_p99_ms
            console.print(
                (f"round {number + 1}: " if args.rounds > 1 else "")
                + f"{result.transport} at {result.concurrency}: p99 lag "
                f"{_fmt(result.lag_p99_ms)} ms, {result.errors} errors"
                + (f" (user-space stamps: {_fmt(user)} ms)" if user is not None else "")
            )
    if args.json is not None:
        args.json.write_text("".join(lines))
    last = " (the last round)" if args.rounds > 1 else ""
    table = Table(title=f"client arrival lag against the mock's write times (ms){last}")
    for column in (
        "transport",
        "streams",
        "events",
        "lag p50",
        "p99",
        "max",
        "first p99",
        "user p99",
        "ITL err p99",
        "CPU us/event",
        "x baseline",
        "loop p99",
        "bound",
        "errors",
    ):
        table.add_column(column, justify="right")
    order = [BASELINE, *transports]
    for r in sorted(results, key=lambda r: (order.index(r.transport), r.concurrency)):
        table.add_row(
            r.transport,
            str(r.concurrency),
            f"{r.events:,}",
            _fmt(r.lag_p50_ms),
            _fmt(r.lag_p99_ms),
            _fmt(r.lag_max_ms),
            _fmt(r.first_token_lag_p99_ms),
            _fmt(r.user_lag_p99_ms),
            _fmt(r.itl_error_p99_ms),
            _fmt(r.cpu_us_per_event),
            _fmt(r.cpu_vs_baseline),
            _fmt(r.loop_lag_p99_ms),
            "-" if r.self_watch_bound is None else "yes" if r.self_watch_bound else "no",
            str(r.errors),
        )
    out = Console(width=None if sys.stdout.isatty() else 150)  # a log keeps every column
    out.print(table)
    if args.rounds > 1:
        out.print(_spread_table(spread_over_rounds(rounds), [BASELINE, *transports]))
    for transport, best in best_levels(results).items():
        out.print(f"{transport}: p99 arrival lag <= 2 ms up to {best or 'no'} concurrent streams")
    out.print(f"saved to {save_calibration(results)}")
    return EXIT_OK


def _spread_table(rows: list[dict[str, Any]], order: list[str]) -> Any:
    from rich.table import Table

    table = Table(title=f"over {rows[0]['rounds'] if rows else 0} rounds: median (lowest-highest)")
    for column in ("transport", "streams", "lag p99 (ms)", "CPU us/event", "x baseline", "errors"):
        table.add_column(column, justify="right")
    for row in sorted(rows, key=lambda r: (order.index(r["transport"]), r["concurrency"])):
        cells = []
        for name in ("lag_p99_ms", "cpu_us_per_event", "cpu_vs_baseline"):
            figure = row[name]
            cells.append(
                "-"
                if figure is None
                else f"{_fmt(figure['median'])} ({_fmt(figure['min'])}-{_fmt(figure['max'])})"
            )
        table.add_row(row["transport"], str(row["concurrency"]), *cells, str(row["errors"]))
    return table


def _bench_mock(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from harness.calibration.mock_bench import run_mock_bench

    levels = _levels(args.levels)
    if levels is None or args.workers < 1 or args.seconds <= 0 or args.rounds < 1:
        return _usage_error(
            "--levels takes positive whole numbers; --workers, --seconds, --rounds positive"
        )
    console = Console(stderr=True)
    rounds: list[list[Any]] = []
    for number in range(args.rounds):
        results: list[Any] = []
        rounds.append(results)
        measured = run_mock_bench(
            levels,
            workers=args.workers,
            itl_ms=args.itl_ms,
            seconds=args.seconds,
            ramp_s=args.ramp,
            target_p99_ms=args.target_ms,
            yardstick=args.yardstick,
        )
        for level in measured:
            results.append(level)
            if args.json:
                extra = {"round": number + 1} if args.rounds > 1 else {}
                print(json.dumps(asdict(level) | extra), flush=True)
            else:
                p99 = _fmt(level.lateness_p99_ms)
                prefix = f"round {number + 1}: " if args.rounds > 1 else ""
                server = _SERVER_NAMES[level.server]
                console.print(f"{prefix}{server}, {level.streams} streams: p99 lateness {p99} ms")
    mocks = [[lv for lv in r if lv.server == MOCK] for r in rounds]
    passing = [lv for lv in mocks[-1] if lv.passes(args.target_ms)]
    every = ""
    if args.rounds > 1:  # a level counts when it held the bound in every round
        missed = {lv.streams for r in mocks for lv in r if not lv.passes(args.target_ms)}
        measured_in = [{lv.streams for lv in r} for r in mocks]
        passing = [
            lv
            for lv in passing
            if lv.streams not in missed and all(lv.streams in m for m in measured_in)
        ]
        every = " in every round"
    best = max(passing, key=lambda lv: lv.streams) if passing else None
    if args.json:
        return EXIT_OK
    last = " (the last round)" if args.rounds > 1 else ""
    table = Table(title=f"mock capacity, {args.workers} worker(s), ITL {args.itl_ms:g} ms{last}")
    columns = ("server", "streams", "held", "tokens/s", "lateness p50", "p99", "max", "CPU", "ok")
    for column in columns:
        table.add_column(column, justify="right")
    for lv in results:
        table.add_row(
            _SERVER_NAMES[lv.server],
            str(lv.streams),
            str(lv.held),
            f"{lv.tokens_per_s:,.0f}",
            _fmt(lv.lateness_p50_ms),
            _fmt(lv.lateness_p99_ms),
            _fmt(lv.lateness_max_ms),
            "-" if lv.mock_cpu_percent is None else f"{lv.mock_cpu_percent:.0f}%",
            "yes" if lv.passes(args.target_ms) else "no",
        )
    out = Console()
    out.print(table)
    if args.rounds > 1:
        out.print(_mock_spread_table(rounds, args.target_ms))
    if args.yardstick:
        out.print("plain: the plainest aiohttp mock, measured the same way as the yardstick")
    if best is None:
        out.print(f"no level kept p99 send lateness <= {args.target_ms:g} ms{every}")
    else:
        out.print(
            f"highest level with p99 send lateness <= {args.target_ms:g} ms{every}: "
            f"{best.streams} streams, {best.tokens_per_s:,.0f} tokens/s"
        )
    return EXIT_OK


def _mock_spread_table(rounds: list[list[Any]], target_ms: float) -> Any:
    """Each level of ``bench mock`` over the rounds: median (lowest-highest)."""
    import statistics

    from rich.table import Table

    by_level: dict[tuple[int, bool], list[Any]] = {}
    for results in rounds:
        for level in results:
            by_level.setdefault((level.streams, level.server == MOCK), []).append(level)

    def spread(values: list[float | None], form: str) -> str:
        known = sorted(v for v in values if v is not None)
        if not known:
            return "-"
        median = statistics.median(known)
        return f"{median:{form}} ({known[0]:{form}}-{known[-1]:{form}})"

    table = Table(title=f"over {len(rounds)} rounds: median (lowest-highest)")
    columns = ("server", "streams", "tokens/s", "lateness p99 (ms)", "CPU %", "ok")
    for column in columns:
        table.add_column(column, justify="right")
    for (streams, _), levels in sorted(by_level.items()):
        table.add_row(
            _SERVER_NAMES[levels[0].server],
            str(streams),
            f"{statistics.median(lv.tokens_per_s for lv in levels):,.0f}",
            spread([lv.lateness_p99_ms for lv in levels], ",.2f"),
            spread([lv.mock_cpu_percent for lv in levels], ".0f"),
            f"{sum(lv.passes(target_ms) for lv in levels)} of {len(levels)}",
        )
    return table


#: ``bench mock``'s servers as its tables name them.
_SERVER_NAMES = {"mock": "mock", "plain": "plain"}
MOCK = "mock"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _usage_error(message: str) -> int:
    print(f"sse-harness: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """The ``sse-harness`` command; ``argv`` None reads the process's own arguments."""
    if argv is None:
        try:
            return main(sys.argv[1:])
        finally:
            # the process ends now: the collector's last passes over everything a large
            # run made (half a second after 10,000 records) are left out; the objects go
            # with the process, files and streams are flushed all the same
            gc.freeze()
    argv = list(argv)
    if argv[:1] == ["mock"]:  # the mock has its own options and help
        from harness.servers.embedded import serve_mock

        return serve_mock(argv[1:])
    if argv[:1] == ["locust"]:  # locust's own options pass through
        from harness.cli.locust_command import locust_main

        return locust_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, for a run's record of itself
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except HarnessError as exc:
        return _usage_error(str(exc))
    except KeyboardInterrupt:
        print("sse-harness: interrupted", file=sys.stderr)
        return 130
