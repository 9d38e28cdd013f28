"""The ``sse-harness`` command: its subcommands, and the exit codes they share.

Every subcommand is a thin layer over a library call, in a module of its own; only the
command named on the command line is built (and its module loaded), so that ``--help`` and
a run start light. Exit codes: 0 success, 1 a check or gate failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Collection, Sequence

from harness import __version__
from harness.cli.common import EXIT_USAGE, usage_error
from harness.errors import HarnessError

__all__ = ["COMMANDS", "build_parser", "main"]

#: Every command: its line in ``sse-harness --help``, and the ``module:function`` that adds
#: its parser (called with the sub-parsers and that line); None for a command that reads
#: its own arguments (``main`` hands them over).
COMMANDS: dict[str, tuple[str, str | None]] = {
    "run": (
        "run a load against an endpoint (default: an embedded mock) and report",
        "harness.cli.run_command:add_run_parser",
    ),
    "check": (
        "check a streaming endpoint's conformance and print a verdict with evidence",
        "harness.cli.check_command:add_check_parser",
    ),
    "calibrate": (
        "measure this machine's client error against the mock's ground truth",
        "harness.cli.calibrate_command:add_calibrate_parser",
    ),
    "mock": ("serve the mock LLM server (see `sse-harness mock --help`)", None),
    "decode": (
        "decode a captured response body and print what it says, as JSON",
        "harness.cli.decode_command:add_decode_parser",
    ),
    "bench": (
        "benchmarks of sse-harness's own parts",
        "harness.cli.bench_command:add_bench_parser",
    ),
    "report": (
        "write a run folder's HTML report (report.html)",
        "harness.cli.report_command:add_report_parser",
    ),
    "gate": (
        "judge a run against an SLO file; exit 1 when an objective is breached",
        "harness.cli.gate_command:add_gate_parser",
    ),
    "compare": (
        "compare a run with a baseline run; exit 1 on a significant regression",
        "harness.cli.compare_command:add_compare_parser",
    ),
    "locust": ("run the locust scenarios (web UI or --headless; --workers N for master + N)", None),
}


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command's parser with ``commands`` built in full (None: every one); the others
    are only listed, with their line of help."""
    parser = argparse.ArgumentParser(
        prog="sse-harness",
        description=(
            "Load tests and conformance checks for LLM endpoints that stream Server-Sent Events."
        ),
    )
    parser.add_argument("--version", action="version", version=f"sse-harness {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (summary, where) in COMMANDS.items():
        if where is not None and (commands is None or name in commands):
            module, function = where.split(":")
            getattr(importlib.import_module(module), function)(subparsers, summary)
        else:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


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
    parser = build_parser(argv[:1])  # the command named, if any: the others stay unloaded
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, for a run's record of itself
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except HarnessError as exc:
        return usage_error(str(exc))
    except KeyboardInterrupt:
        print("sse-harness: interrupted", file=sys.stderr)
        return 130
