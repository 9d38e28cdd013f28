"""``sse-harness bench memory``: a long run's resident memory, sampled every second."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_memory_bench_parser"]

DEFAULT_RUN = (
    "--concurrency 500 --ramp-up 2 --duration 60 --requests 1000000 "
    "--mock-ttft-ms 200 --mock-itl-ms 20 --mock-tokens 200"
)


def add_memory_bench_parser(targets: Any) -> None:
    """Register ``bench memory`` under the ``bench`` command's targets."""
    bench = targets.add_parser(
        "memory",
        help="a long run's resident memory: flat, or growing with the load?",
        description=(
            "Start `sse-harness run` with the given options (default: "
            f"{DEFAULT_RUN}), read its RSS every second, and print the RSS once settled, "
            "the peak under load, their ratio, and the peak while the reports are written. "
            "Options after `--` go to `run` as they are, e.g. "
            "`sse-harness bench memory -- --transport aiohttp --concurrency 200 --duration 30`."
        ),
    )
    bench.add_argument(
        "--settle", type=float, default=10.0, help="seconds before the reference sample"
    )
    bench.add_argument("--max-growth", type=float, default=0.10, help="growth that fails (0.10)")
    bench.add_argument("run_options", nargs=argparse.REMAINDER, help="-- then options of `run`")
    bench.set_defaults(handler=_bench_memory)


def _bench_memory(args: argparse.Namespace) -> int:
    from harness.calibration.memory_bench import trace_run_memory

    options = [o for o in args.run_options if o != "--"] or DEFAULT_RUN.split()
    if args.settle <= 0:
        print("sse-harness: error: --settle must be > 0", file=sys.stderr)
        return 2

    def show(elapsed: float, mb: float) -> None:
        print(f"\r{elapsed:6.0f} s  {mb:8.1f} MB", end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="sse-harness-memory-") as out:
        trace = trace_run_memory(options, Path(out) / "run", settle_s=args.settle, on_sample=show)
    print(file=sys.stderr)
    if trace.exit_code != 0 or trace.growth is None:
        why = f"the run exited {trace.exit_code}, after {len(trace.samples)} samples"
        print(f"sse-harness: error: no settled figure: {why}", file=sys.stderr)
        return 1
    settled, peak = trace.settled_mb or 0.0, trace.peak_load_mb or 0.0
    overall = max(mb for _, mb in trace.samples)
    print(f"run options     {' '.join(options)}")
    print(f"RSS at {args.settle:g} s    {settled:.1f} MB")
    print(f"peak under load {peak:.1f} MB  ({trace.growth:+.1%})")
    print(f"peak overall    {overall:.1f} MB  (reading back the records, writing reports)")
    verdict = "flat" if trace.growth <= args.max_growth else "GROWS"
    print(f"verdict         {verdict} (bound {args.max_growth:.0%})")
    return 0 if verdict == "flat" else 1
