"""``sse-harness bench client``: the client's CPU per event, offline, beside a raw reader."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_client_bench_parser"]


def add_client_bench_parser(targets: Any) -> None:
    """Register ``bench client`` under the ``bench`` command's targets."""
    bench = targets.add_parser(
        "client",
        help="the client's CPU per event for a chat stream, offline, beside a raw reader",
        description=(
            "Read the same HTTP-chunked OpenAI chat responses, one event per read and no "
            "socket, four ways: a raw reader (framing off, content marker found), the "
            "aiohttp transport's path (its ResponseTap, the SSE decoder, the openai-chat "
            "dialect and the RequestRecord), aiohttp's readany() path to the same record, "
            "and the kernel transport's path (the stamped socket's read callback, its "
            "head read and chunk framing, the same record with both stamps); print CPU "
            "microseconds per event of the best round of each. The event "
            "loop's and the kernel's share is not in these figures: `calibrate` measures "
            "the whole client under load."
        ),
    )
    bench.add_argument("--streams", type=int, default=200, help="responses per round")
    bench.add_argument("--tokens", type=int, default=150, help="content events per response")
    bench.add_argument("--rounds", type=int, default=5, help="rounds (the best counts)")
    bench.add_argument("--json", action="store_true", help="print JSON lines instead")
    bench.set_defaults(handler=_bench_client)


def _bench_client(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.calibration.client_path import run_client_bench

    if args.streams < 1 or args.tokens < 1 or args.rounds < 1:
        print("sse-harness: error: --streams, --tokens and --rounds must be >= 1", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    with console.status("reading…"):
        results = run_client_bench(streams=args.streams, tokens=args.tokens, rounds=args.rounds)
    raw = next(m for m in results if m.case == "raw").us_per_event
    if args.json:
        for m in results:
            print(
                json.dumps(
                    {
                        "case": m.case,
                        "streams": m.streams,
                        "events": m.events,
                        "best_s": round(m.best_s, 6),
                        "us_per_event": round(m.us_per_event, 3),
                    }
                )
            )
        return 0
    table = Table(title="client CPU per event, offline (best round)")
    for column in ("path", "events", "µs/event", "x raw"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for m in results:
        ratio = m.us_per_event / raw if raw else float("nan")
        table.add_row(m.case, f"{m.events:,}", f"{m.us_per_event:.2f}", f"{ratio:.1f}")
    Console().print(table)
    return 0
