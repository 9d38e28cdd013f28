"""``sse-harness bench``: benchmarks of sse-harness's own parts, each beside a yardstick."""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.cli.client_bench_command import add_client_bench_parser
from harness.cli.common import EXIT_OK, fmt, levels, usage_error
from harness.cli.locust_command import add_locust_bench_parser
from harness.cli.memory_bench_command import add_memory_bench_parser
from harness.cli.run_bench_command import add_run_bench_parser

__all__ = ["add_bench_parser"]


def add_bench_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    bench = commands.add_parser("bench", help=summary)
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


def _bench_parser(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.calibration.parser_bench import run_parser_bench

    if args.rounds < 1 or args.size_mb <= 0:
        return usage_error("--rounds must be at least 1 and --size-mb positive")
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


def _bench_mock(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from harness.calibration.mock_bench import run_mock_bench

    chosen = levels(args.levels)
    if chosen is None or args.workers < 1 or args.seconds <= 0 or args.rounds < 1:
        return usage_error(
            "--levels takes positive whole numbers; --workers, --seconds, --rounds positive"
        )
    console = Console(stderr=True)
    rounds: list[list[Any]] = []
    for number in range(args.rounds):
        results: list[Any] = []
        rounds.append(results)
        measured = run_mock_bench(
            chosen,
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
                p99 = fmt(level.lateness_p99_ms)
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
            fmt(lv.lateness_p50_ms),
            fmt(lv.lateness_p99_ms),
            fmt(lv.lateness_max_ms),
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
    for (streams, _), rows in sorted(by_level.items()):
        table.add_row(
            _SERVER_NAMES[rows[0].server],
            str(streams),
            f"{statistics.median(lv.tokens_per_s for lv in rows):,.0f}",
            spread([lv.lateness_p99_ms for lv in rows], ",.2f"),
            spread([lv.mock_cpu_percent for lv in rows], ".0f"),
            f"{sum(lv.passes(target_ms) for lv in rows)} of {len(rows)}",
        )
    return table


#: ``bench mock``'s servers as its tables name them.
_SERVER_NAMES = {"mock": "mock", "plain": "plain"}
MOCK = "mock"
