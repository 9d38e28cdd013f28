"""``sse-harness bench run``: the fixed costs of a ``run``, measured from outside it.

Each round starts ``sse-harness run --url`` in a process of its own against a mock that
is already running (TTFT 0, ITL 0), and times, on the monotonic clock every process
shares: from the start of the process to the first request sent (from ``results.jsonl``),
from the last byte of the last stream to the summary table on the terminal, and to the
process's exit (the files written). Then, in a fresh process again, it times each step
of writing the files of that run's records (imports counted where they fall).
Rounds alternate between the record counts; the medians and ranges are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["add_run_bench_parser", "file_costs"]


def add_run_bench_parser(targets: Any) -> None:
    """Register ``bench run`` under the ``bench`` command's targets."""
    bench = targets.add_parser(
        "run",
        help="a run's fixed costs: start to first request, last byte to summary and exit",
        description=(
            "Run `sse-harness run --url` against an already running mock (TTFT 0, ITL 0) "
            "in processes of their own, and time from the process's start to its first "
            "request, and from the last byte to the summary on the terminal and to the "
            "process's exit; then time each step of writing the run's files in a fresh "
            "process. Prints the median and range over the rounds."
        ),
    )
    bench.add_argument(
        "--requests", default="100,10000", help="comma-separated record counts (one run each)"
    )
    bench.add_argument("--rounds", type=int, default=3, help="runs per record count")
    bench.add_argument("--concurrency", type=int, default=50)
    bench.add_argument("--tokens", type=int, default=10, help="mock tokens per answer")
    bench.add_argument("--json", action="store_true", help="print JSON lines instead")
    bench.set_defaults(handler=_bench_run)


def _bench_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.servers.embedded import embedded_mock, mock_arguments

    try:
        counts = [int(n) for n in args.requests.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or args.rounds < 1 or args.concurrency < 1:
        print(
            "sse-harness: error: --requests takes positive whole numbers; --rounds and "
            "--concurrency must be >= 1",
            file=sys.stderr,
        )
        return 2
    console = Console(stderr=True)
    rows: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    arguments = mock_arguments(ttft_ms=0, itl_ms=0, tokens=args.tokens)
    with (
        tempfile.TemporaryDirectory(prefix="sse-harness-bench-") as tmp,
        embedded_mock(arguments) as mock,
    ):
        url = f"{mock.base_url}/v1/chat/completions"
        for round_ in range(args.rounds):
            for n in counts:
                out = Path(tmp) / f"run-{n}-{round_}"
                row = time_run(url, out, requests=n, concurrency=args.concurrency)
                row.update(file_costs_in_process(out))
                rows[n].append(row)
                if args.json:
                    print(json.dumps({"requests": n, "round": round_, **row}), flush=True)
                else:
                    console.print(
                        f"{n:,} requests, round {round_ + 1}: first request after "
                        f"{row['start_to_first_request_s']:.3f} s, summary "
                        f"{row['last_byte_to_summary_s']:.3f} s and exit "
                        f"{row['last_byte_to_exit_s']:.3f} s after the last byte"
                    )
    if args.json:
        return 0
    for n, measured in rows.items():
        table = Table(title=f"sse-harness run --requests {n:,}: seconds, median (range)")
        table.add_column("step")
        table.add_column(f"median of {len(measured)}", justify="right")
        table.add_column("range", justify="right")
        for key in measured[0]:
            values = [m[key] for m in measured]
            table.add_row(
                key.removesuffix("_s").replace("_", " "),
                f"{statistics.median(values):.3f}",
                f"{min(values):.3f}-{max(values):.3f}",
            )
        Console().print(table)
    return 0


def time_run(url: str, out: Path, *, requests: int, concurrency: int) -> dict[str, float]:
    """One ``sse-harness run --url`` in a process of its own, timed from outside.

    Returns seconds: ``start_to_first_request_s``, ``last_byte_to_summary_s`` (the first
    line of the summary table on standard output) and ``last_byte_to_exit_s``.

    Raises:
        RuntimeError: the run failed (its error output is in the message).
    """
    from harness.results import read_all_records

    command = [sys.executable, "-m", "harness.cli", "run", "--url", url, "--quiet"]
    command += ["--requests", str(requests), "--concurrency", str(concurrency)]
    command += ["--warmup", "0", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "120"}
    started = time.perf_counter_ns()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    shown = time.perf_counter_ns()
    _, errors = process.communicate()
    ended = time.perf_counter_ns()
    if process.returncode != 0 or not first_line:
        raise RuntimeError(f"the run failed ({process.returncode}): {errors.strip()[-2000:]}")
    records = read_all_records(out / "results.jsonl")
    first_sent = min(r.t_sent_ns for r in records)
    last_byte = max((r.t_end_ns or r.t_close_ns or r.t_sent_ns) for r in records)
    return {
        "start_to_first_request_s": (first_sent - started) / 1e9,
        "last_byte_to_summary_s": (shown - last_byte) / 1e9,
        "last_byte_to_exit_s": (ended - last_byte) / 1e9,
    }


def file_costs_in_process(out: Path) -> dict[str, float]:
    """``file_costs`` of a run folder in a fresh process (its imports counted)."""
    code = (
        "import json, sys; from pathlib import Path;"
        "from harness.cli.run_bench_command import file_costs;"
        "print(json.dumps(file_costs(Path(sys.argv[1]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"timing the files failed: {done.stderr.strip()[-2000:]}")
    costs: dict[str, float] = json.loads(done.stdout)
    return costs


def file_costs(out: Path) -> dict[str, float]:
    """Seconds of each step from a run's records on disk to its files, in this process:
    reading the records, the summary's figures, then each file as ``write_run_files``
    writes it (into a folder of its own beside ``out``). The client's own samples are not
    on disk, so the time series is drawn without them."""
    clock = time.perf_counter
    costs: dict[str, float] = {}
    t = clock()
    from harness.results import read_all_records, read_summary
    from harness.run import RunResult, write_run_files

    records = read_all_records(out / "results.jsonl")
    summary = read_summary(out).as_dict()
    costs["read_records_s"] = clock() - t
    t = clock()
    from harness.analysis.summary import Window, summarize

    costs["import_numpy_s"] = clock() - t
    t = clock()
    summarize(records, window=Window.around(records))
    costs["summarize_s"] = clock() - t
    t = clock()
    import harness.analysis.frames  # pandas, for the files

    costs["import_pandas_s"] = clock() - t
    t = clock()
    import harness.report.run_figures  # noqa: F401  (matplotlib)

    costs["import_matplotlib_s"] = clock() - t
    copy = out.with_name(out.name + "-files")
    copy.mkdir()
    steps: dict[str, float] = {}
    write_run_files(RunResult(out_dir=copy, summary=summary, records=records), timings=steps)
    costs.update({f"{name}_s": seconds for name, seconds in steps.items()})
    return costs
