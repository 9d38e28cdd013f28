"""``sse-harness calibrate``: this machine's client error against the mock's ground truth."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, fmt, levels, usage_error
from harness.transports import TRANSPORTS

__all__ = ["add_calibrate_parser"]


def add_calibrate_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    calibrate = commands.add_parser(
        "calibrate",
        help=summary,
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

    chosen = levels(args.levels)
    if chosen is None or args.seconds <= 0:
        return usage_error("--levels takes positive whole numbers and --seconds a positive time")
    if args.rounds < 1:
        return usage_error("--rounds must be >= 1")
    console = Console(stderr=True)
    transports = args.transport or list(TRANSPORTS)
    rounds: list[list[LevelResult]] = []
    lines = []
    for number in range(args.rounds):
        results: list[LevelResult] = []
        rounds.append(results)
        calibration = run_calibration(
            transports,
            chosen,
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
                f"{fmt(result.lag_p99_ms)} ms, {result.errors} errors"
                + (f" (user-space stamps: {fmt(user)} ms)" if user is not None else "")
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
            fmt(r.lag_p50_ms),
            fmt(r.lag_p99_ms),
            fmt(r.lag_max_ms),
            fmt(r.first_token_lag_p99_ms),
            fmt(r.user_lag_p99_ms),
            fmt(r.itl_error_p99_ms),
            fmt(r.cpu_us_per_event),
            fmt(r.cpu_vs_baseline),
            fmt(r.loop_lag_p99_ms),
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
                else f"{fmt(figure['median'])} ({fmt(figure['min'])}-{fmt(figure['max'])})"
            )
        table.add_row(row["transport"], str(row["concurrency"]), *cells, str(row["errors"]))
    return table
