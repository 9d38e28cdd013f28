"""``sse-harness locust``: the locust scenarios, with a master and workers on this machine.

Everything but this command's own options goes to locust as it is (``--headless``,
``-u``, ``-r``, ``-t``, ``--host``, the scenario's options, ...). The command adds what a
local run needs: the scenario file (``harness/locust/scenarios/llm_stream.py``, with
``shapes.py`` beside it when ``--shape`` is given), an embedded mock when no ``--host``
is given, ``--out`` (so it can say where the report went), ``--stop-timeout 30`` (the
streams in flight at the end may finish, like ``run``'s grace) and loopback binds. With
``--workers N`` it starts a master and N worker processes and stops them all at the end.
SIGTERM stops locust as Ctrl-C does (its streams in flight may finish, the report is
written; a second signal ends it at once) and the command exits 143 (130 after Ctrl-C);
no locust process and no embedded mock outlives the command, even one killed by SIGKILL
(on Linux, for the locust processes).

Locust patches the standard library with gevent when it is imported, so this command
never imports it: locust runs in processes of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.cli.locust_scenario import parse_command
from harness.cli.request_options import add_mock_arguments, embedded_mock_extra
from harness.cli.scenario_file import write_scenario
from harness.cli.stop_signals import STOP_SIGNALS, StopSignals
from harness.errors import ConfigError
from harness.lifeline import end_process

__all__ = ["add_locust_bench_parser", "locust_main"]

SCENARIOS = Path(__file__).resolve().parents[1] / "locust" / "scenarios"
DEFAULT_STOP_TIMEOUT_S = "30"
WORKER_EXIT_TIMEOUT_S = 15.0

DESCRIPTION = """\
Run the locust scenarios. Of the options below, --workers and the server and mock
options are this command's; the others go on to locust and the scenario's user (the
request and workload options mean what they mean for run). Any other option goes to
locust unchanged (see `locust --help`; --shape is in the README). A scenario file
(sse-harness locust FILE.toml, or --config) sets them as run's does; flags override it.
Without -f the scenario
is the package's llm_stream.py (plus its shapes.py with --shape), shipped in
harness/locust/scenarios/; without --host an embedded mock LLM server is started;
without --out the report goes to reports/<time>-<id>/.
Example: sse-harness locust --headless -u 50 -r 10 -t 30s --host URL
"""


def _own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sse-harness locust",
        description=DESCRIPTION,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="start a master and this many worker processes (default 0: one process)",
    )
    parser.add_argument(
        "--server-metrics",
        action="append",
        default=[],
        metavar="URL",
        help="a server's Prometheus /metrics, scraped through the run (repeatable): the "
        "summary gets the server's own figures beside the client's, as with run",
    )
    parser.add_argument("--server-series", action="append", default=[], metavar="SELECTOR",
                        help="a metric to report as a gauge whatever the server")  # fmt: skip
    parser.add_argument("--scrape-interval", type=float, default=1.0, metavar="S",
                        help="seconds between scrapes of each server (default 1)")  # fmt: skip
    add_mock_arguments(parser, without="--host")
    return parser


def _has(args: Sequence[str], *names: str) -> bool:
    return any(a in names or a.startswith(tuple(f"{n}=" for n in names)) for a in args)


def _value(args: Sequence[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            return args[i + 1]
        for n in names:
            if a.startswith(f"{n}="):
                return a.split("=", 1)[1]
    return None


def locust_arguments(args: Sequence[str], *, host: str | None, out: Path) -> list[str]:
    """Locust's arguments: the user's, with what a local run needs added where missing."""
    args = list(args)
    extra: list[str] = []
    if not _has(args, "-f", "--locustfile"):
        files = [SCENARIOS / "llm_stream.py"]
        if _has(args, "--shape"):
            files.append(SCENARIOS / "shapes.py")
        extra += ["-f", ",".join(str(f) for f in files)]
    if host is not None:
        extra += ["--host", host]
    if not _has(args, "--out"):
        extra += ["--out", str(out)]
    if not _has(args, "--stop-timeout"):
        extra += ["--stop-timeout", DEFAULT_STOP_TIMEOUT_S]
    if not _has(args, "--headless") and not _has(args, "--web-host"):
        extra += ["--web-host", "127.0.0.1"]
    return extra + args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pin(process: subprocess.Popen[Any], cpus: set[int] | None) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(process.pid, cpus)


def _shares_terminal() -> bool:
    """True when this process is in its terminal's foreground process group: there the
    terminal's Ctrl-C reaches locust too, and locust reads its keys (w, s: users up, down)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (AttributeError, OSError, ValueError):  # no stdin, or no terminal: CI, docker
        return False


def _start_locust(arguments: list[str], *, shares_terminal: bool) -> subprocess.Popen[Any]:
    """``python -m locust ARGUMENTS``, which gets SIGTERM, and so stops and writes its
    report, when this process ends however it ends (Linux: ``harness.lifeline``).

    Unless it shares this process's terminal, the locust process has a process group of
    its own, so that a signal to this command's group (``timeout`` sends one, as CI runners
    may) reaches it once, relayed by ``_relay_stops``, never twice: a second SIGTERM or a
    Ctrl-C during locust's shutdown cuts its report short. It gets no terminal input there,
    which a background process group could not read. Workers never share the terminal: the
    master, not a Ctrl-C of their own, tells them to stop, once it has asked for their last
    records.
    """
    command = [sys.executable, "-m", "harness.lifeline", str(os.getpid()), "locust", *arguments]
    if shares_terminal:
        return subprocess.Popen(command)
    return subprocess.Popen(command, process_group=0, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def _relay_stops(
    master: subprocess.Popen[Any], stops: StopSignals, *, shares_terminal: bool
) -> Iterator[None]:
    """While inside, this process's SIGINT and SIGTERM stop locust as they stop ``run``.

    The first is passed on to the master (or the one locust process): locust stops its
    users, lets their streams finish within ``--stop-timeout``, gathers the workers' last
    records and writes the report, then tells the workers to quit. A second stop is passed
    on as SIGINT, locust's second Ctrl-C, which ends it at once. A Ctrl-C from the terminal
    that locust shares has reached it already, and is not passed on.
    """

    def relay(signum: int, _: object) -> None:
        stop = stops.add(signum)
        if stop == 0 or (signum == signal.SIGINT and shares_terminal):
            return
        master.send_signal(signum if stop == 1 else signal.SIGINT)

    try:
        previous = {signum: signal.signal(signum, relay) for signum in STOP_SIGNALS}
    except ValueError:  # not the main thread: the signals stay as they were
        previous = {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(args: list[str], workers: int, cpus: set[int] | None, stops: StopSignals) -> int:
    shared = _shares_terminal()
    if workers == 0:
        process = _start_locust(args, shares_terminal=shared)
        _pin(process, cpus)
        with _relay_stops(process, stops, shares_terminal=shared):
            return process.wait()
    port = str(_free_port())
    files = _value(args, "-f", "--locustfile") or ""
    quiet = [] if _has(args, "--loglevel", "-L") else ["--loglevel", "WARNING"]
    # the scenario's options reach the workers with each spawn message from the master
    worker_args = ["-f", files, "--worker", "--master-host", "127.0.0.1", "--master-port", port]
    started = [_start_locust([*worker_args, *quiet], shares_terminal=False) for _ in range(workers)]
    master_args = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port]
    if not _has(args, "--expect-workers"):
        master_args += ["--expect-workers", str(workers)]
    master = _start_locust([*master_args, *args], shares_terminal=shared)
    for process in (*started, master):
        _pin(process, cpus)
    with _relay_stops(master, stops, shares_terminal=shared):
        try:
            return master.wait()
        finally:
            for process in started:  # they quit with the master; stop any that did not
                end_process(process, wait_s=WORKER_EXIT_TIMEOUT_S)


def _report_line(out: Path) -> str | None:
    from harness.report.labels import throughput_line
    from harness.results import read_summary

    try:
        summary = read_summary(out).as_dict()
    except ValueError:  # no summary, or none this version reads
        return None
    ttft = summary.get("ttft_s") or {}
    p50, p99 = ttft.get("p50"), ttft.get("p99")
    figures = (
        f"TTFT p50 {p50 * 1000:,.1f} ms, p99 {p99 * 1000:,.1f} ms, "
        if p50 is not None and p99 is not None
        else ""
    )
    return (
        f"wrote {out}/ ({summary['requests']} requests, {summary['errors']} errors, {figures}"
        f"{throughput_line(summary)})"
    )


def locust_main(argv: Sequence[str]) -> int:
    """``sse-harness locust ...``: returns locust's (the master's) exit code, or 128 + the
    number of the signal that stopped it (130: Ctrl-C, 143: SIGTERM)."""
    from harness.servers.embedded import embedded_mock, mock_arguments

    parser = _own_parser()
    try:
        own, rest = parse_command(list(argv), parser)
    except ConfigError as exc:
        print(f"sse-harness locust: error: {exc}", file=sys.stderr)
        return 2
    if own.workers < 0:
        print("sse-harness locust: error: --workers must be 0 or more", file=sys.stderr)
        return 2
    if not _has(rest, "-f", "--locustfile") and not (SCENARIOS / "llm_stream.py").exists():
        print(f"sse-harness locust: error: no scenarios at {SCENARIOS}; give -f", file=sys.stderr)
        return 2
    from harness.run import add_server_view, default_out_dir

    out = Path(_value(rest, "--out") or default_out_dir())
    write_scenario(out, own, parser, command="locust")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    with ExitStack() as stack:
        host = own.host
        cpus = None
        if host is None:
            arguments = mock_arguments(
                ttft_ms=own.mock_ttft_ms,
                itl_ms=own.mock_itl_ms,
                tokens=own.mock_tokens,
                extra=embedded_mock_extra(own),
            )
            mock = stack.enter_context(
                embedded_mock(arguments, cpu=cores[0] if len(cores) > 1 else None)
            )
            host = mock.base_url
            cpus = set(cores[1:]) if len(cores) > 1 else None  # locust off the mock's core
            print(f"embedded mock LLM server at {host}", file=sys.stderr)
        stops = StopSignals()
        scraper = None
        if own.server_metrics:
            from harness.servers.scrape import Scraper

            scraper = Scraper(
                own.server_metrics, out / "server_metrics.jsonl", interval_s=own.scrape_interval
            )
            scraper.start()
            stack.callback(scraper.stop)
        code = _run(locust_arguments(rest, host=host, out=out), own.workers, cpus, stops)
    if own.server_metrics and (out / "summary.json").exists():
        add_server_view(out, series=own.server_series)
    line = _report_line(out)
    if line is not None:
        print(line, file=sys.stderr)
    return stops.exit_code or code


def add_locust_bench_parser(targets: Any) -> None:
    """``sse-harness bench locust``: the locust user against the async client."""
    bench = targets.add_parser(
        "locust",
        help="the locust user (both HTTP clients) against the async client at N users",
        description=(
            "Against one embedded mock (pinned to core 0), run the locust user with "
            "geventhttpclient and with requests, then the async client (aiohttp, as `run` "
            "does), each with --users streams for --seconds, and report client CPU per SSE "
            "event and the TTFT error: first-token arrival minus the mock's write time."
        ),
    )
    bench.add_argument("--users", type=int, default=100)
    bench.add_argument("--seconds", type=float, default=10.0)
    bench.add_argument("--itl-ms", type=float, default=20.0)
    bench.add_argument("--tokens", type=int, default=50, help="tokens per stream")
    bench.add_argument("--json", action="store_true", help="print JSON lines instead")
    bench.set_defaults(handler=_bench_locust)


def _bench_locust(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from harness.calibration.locust_bench import run_locust_bench

    if args.users < 1 or args.seconds <= 0 or args.tokens < 2:
        print("sse-harness: error: --users, --seconds positive; --tokens >= 2", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    results = []
    for figures in run_locust_bench(
        users=args.users, seconds=args.seconds, itl_ms=args.itl_ms, tokens=args.tokens
    ):
        results.append(figures)
        if args.json:
            print(json.dumps(asdict(figures)), flush=True)
        else:
            console.print(f"{figures.client}: {figures.requests} requests, {figures.errors} errors")
    if args.json:
        return 0
    table = Table(title=f"{args.users} users against the mock (ITL {args.itl_ms:g} ms)")
    columns = (
        "client",
        "requests",
        "errors",
        "events",
        "CPU us/event",
        "TTFT err p50 (ms)",
        "p99",
        "max",
        "token lag p99",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "client" else "right")
    for f in results:
        table.add_row(
            f.client,
            str(f.requests),
            str(f.errors),
            f"{f.events:,}",
            _fmt(f.cpu_us_per_event),
            _fmt(f.ttft_error_p50_ms),
            _fmt(f.ttft_error_p99_ms),
            _fmt(f.ttft_error_max_ms),
            _fmt(f.token_lag_p99_ms),
        )
    out = Console()
    (out if out.is_terminal else Console(width=140)).print(table)
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"
