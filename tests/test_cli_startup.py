"""The command starts light: building its parser and printing ``--help`` loads none of the
heavy libraries that only some commands need (the analysis's pandas and numpy, the report's
matplotlib, locust and gevent, the conformance capture, rich for the terminal). Pinned by
what is imported, not by a time, so a busy machine cannot fail it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "pandas",
    "numpy",
    "matplotlib",
    "locust",
    "gevent",
    "harness.run",
    "harness.analysis.summary",
    "harness.analysis.frames",
    "harness.conformance.capture",
    "harness.conformance.catalogue",
    "rich",  # the terminal output: loaded when a command prints
    "harness.servers.embedded",  # with urllib.request and http.client: when a mock starts
)

_PROBE = """
import contextlib, io, json, sys
import harness.cli
parser = harness.cli.build_parser()
for argv in {argvs!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        harness.cli.main(argv)
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


@pytest.mark.parametrize(
    "argvs",
    [
        [["--help"]],
        [["run", "--help"], ["check", "--help"], ["calibrate", "--help"]],
        [
            ["bench", "--help"],
            ["decode", "--help"],
            ["compare", "--help"],
            ["report", "--help"],
            ["gate", "--help"],
        ],
    ],
    ids=["top", "run-check-calibrate", "others"],
)
def test_help_loads_no_heavy_library(argvs: list[list[str]]) -> None:
    probe = _PROBE.format(argvs=argvs, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


_COMMAND_ONLY = """
import contextlib, io, json, sys
import harness.cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    harness.cli.main({argv!r})
print(json.dumps(sorted(
    name for name in sys.modules
    if name.startswith("harness.cli.") and name.endswith("_command") or name == "asyncio"
)))
"""


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [
        (["--help"], []),
        (["--version"], []),
        (["decode", "--help"], ["harness.cli.decode_command"]),
        (["gate", "--help"], ["harness.cli.gate_command"]),
    ],
)
def test_a_command_loads_only_its_own_module(argv: list[str], loaded: list[str]) -> None:
    """``--help`` lists every command from the registry without loading one; a command
    loads its own module, and no other command's."""
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND_ONLY.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == loaded


def test_every_command_is_listed_and_builds() -> None:
    from harness.cli import COMMANDS, build_parser

    parser = build_parser()  # every command built in full
    listed = parser.format_help()
    for name, (summary, _) in COMMANDS.items():
        assert name in listed
        assert summary.split()[0] in listed


def test_conformance_names_still_resolve() -> None:
    import harness.conformance as conformance

    for name in conformance.__all__:
        assert getattr(conformance, name) is not None
    with pytest.raises(AttributeError):
        _ = conformance.no_such_name  # type: ignore[attr-defined]


#: What ``run --url`` imports before its first request: the command, this machine's
#: calibration, the load and the default transport. The analysis's pandas and numpy and
#: the report's matplotlib come after the load, the mock only when it is embedded, the
#: live export, the client processes and the report's pages only when asked for, so a run
#: against a running target sends its first request promptly.
_BEFORE_FIRST_REQUEST = """
import json, sys
import harness.cli, harness.cli.run_command, harness.calibration.stored, harness.run
import harness.load.runner, harness.transports.aiohttp_transport
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def test_run_imports_no_analysis_library_before_its_first_request() -> None:
    heavy = (
        "pandas",
        "numpy",
        "matplotlib",
        "harness.analysis.summary",
        "harness.analysis.frames",
        "harness.analysis.gate",  # the SLO gate: only for a run given --gate, after its load
        "locust",
        "gevent",
        "harness.servers.embedded",  # the mock: only when the run embeds it
        "harness.calibration.calibrate",  # the calibration itself: only its stored figures
        "prometheus_client",  # the live export: only with --prometheus-port
        "harness.load.processes",  # with multiprocessing: only with --processes
        "multiprocessing",
        "harness.report.html",  # the report's pages: written after the summary
        "harness.report.markdown",
    )
    probe = _BEFORE_FIRST_REQUEST.format(heavy=heavy)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
