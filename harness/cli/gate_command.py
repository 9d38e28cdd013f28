"""``sse-harness gate --slo FILE RUN_DIR``, and the gate that ``run --gate FILE`` applies.

Exit codes: 0 every objective holds, 1 one is breached, 2 the SLO file (or the run
folder) is not usable (the error names the file and line).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.analysis.gate import (
    Objective,
    evaluate,
    load_objectives,
    render_gate_markdown,
    render_junit,
)
from harness.errors import ConfigError
from harness.results import read_summary

__all__ = ["GATE_FILES", "add_gate_parser", "apply_gate", "gate_command"]

#: What ``run --gate`` writes into the run folder: (Markdown, JUnit XML).
GATE_FILES = ("gate.md", "gate-junit.xml")


def add_gate_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    gate = commands.add_parser(
        "gate",
        help=summary,
        description=(
            'Read an SLO file (TOML: an [slo] table of lines like "ttft.p95" = "< 0.5") and '
            "judge the run in RUN_DIR against it. Prints the verdict as Markdown; exits 0 "
            "when every objective holds, 1 when any is breached, 2 for a malformed file."
        ),
    )
    gate.add_argument("--slo", type=Path, required=True, metavar="FILE", help="the SLO file")
    gate.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder `run` wrote")
    gate.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    gate.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="also write the Markdown here (e.g. $GITHUB_STEP_SUMMARY)",
    )
    gate.set_defaults(handler=gate_command)


def apply_gate(
    objectives: Sequence[Objective],
    summary: Mapping[str, Any],
    *,
    run: str,
    junit: Path | None = None,
    markdown: Path | None = None,
) -> int:
    """Judge ``summary``, print the verdict, write the files asked for; the exit code."""
    verdict = evaluate(objectives, summary)
    text = render_gate_markdown(verdict, run=run)
    if junit is not None:
        junit.write_text(render_junit(verdict), encoding="utf-8")
    if markdown is not None:
        with markdown.open("a", encoding="utf-8") as file:  # a CI job summary accumulates
            file.write(text)
    print(text, end="")
    return 0 if verdict.passed else 1


def gate_command(args: argparse.Namespace) -> int:
    objectives = load_objectives(args.slo)
    try:
        summary = read_summary(args.run_dir).as_dict()
    except (OSError, ValueError) as exc:
        raise ConfigError(str(args.run_dir), f"not a run folder: {exc}") from exc
    return apply_gate(
        objectives, summary, run=str(args.run_dir), junit=args.junit, markdown=args.markdown
    )
