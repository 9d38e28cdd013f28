"""``sse-harness compare BASE_DIR CURRENT_DIR``: a run against a baseline run.

Exit codes: 0 no significant regression beyond the tolerance, 1 at least one, 2 a
folder holds no run or an option is invalid, 3 no verdict: a run's client was its own
bottleneck (its summary's ``client.bound``), so its figures cannot be trusted to compare.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import ConfigError
from harness.results import read_summary

__all__ = ["add_compare_parser", "compare_command", "parse_share"]


def parse_share(text: str, name: str) -> float:
    """``"10%"`` or ``"0.1"`` as 0.1.

    Raises:
        ConfigError: neither form, or not between 0 and 1.
    """
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError as exc:
        raise ConfigError(name, f"expected a share like 10% or 0.1, not {text!r}") from exc
    if not 0 <= value < 1:
        raise ConfigError(name, f"expected a share from 0% to 100% (10% or 0.1), not {text!r}")
    return value


def add_compare_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    compare = commands.add_parser(
        "compare",
        help=summary,
        description=(
            "Compare TTFT, ITL, TPOT and E2E percentiles, throughput and error rate of "
            "CURRENT_DIR against BASE_DIR. Each change comes with a bootstrap confidence "
            "interval from the per-request values in results.jsonl; a change counts as a "
            "regression only when it is significant and beyond the tolerance. No verdict "
            "(exit 3) when either run's client was its own bottleneck."
        ),
    )
    compare.add_argument("base_dir", type=Path, metavar="BASE_DIR", help="the baseline run")
    compare.add_argument("current_dir", type=Path, metavar="CURRENT_DIR", help="the run to judge")
    compare.add_argument("--tolerance", default="10%", help="relative change allowed (10%%)")
    compare.add_argument(
        "--error-tolerance", default="1%", help="error-rate rise allowed, in points (1%%)"
    )
    compare.add_argument("--confidence", type=float, default=0.95, help="interval level (0.95)")
    compare.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    compare.add_argument("--markdown", type=Path, metavar="FILE", help="also append it here")
    compare.set_defaults(handler=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from harness.analysis.compare import compare_runs, render_comparison
    from harness.report.server import server_comparison

    comparison = compare_runs(
        args.base_dir,
        args.current_dir,
        tolerance=parse_share(args.tolerance, "tolerance"),
        error_tolerance=parse_share(args.error_tolerance, "error-tolerance"),
        confidence=args.confidence,
        seed=args.seed,
    )
    text = render_comparison(comparison, base=args.base_dir.name, current=args.current_dir.name)
    text += server_comparison(
        read_summary(args.base_dir).as_dict(),
        read_summary(args.current_dir).as_dict(),
        names=(args.base_dir.name, args.current_dir.name),
    )
    if args.markdown is not None:
        with args.markdown.open("a", encoding="utf-8") as file:
            file.write(text)
    print(text, end="")
    if comparison.refused is not None:
        return 3
    return 1 if comparison.regressions else 0
