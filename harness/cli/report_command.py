"""``sse-harness report RUN_DIR``: (re)write a run folder's ``report.html``."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import ConfigError
from harness.results import read_all_records, read_summary

__all__ = ["add_report_parser", "report_command"]


def add_report_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    report = commands.add_parser(
        "report",
        help=summary,
        description=(
            "Render a run folder (results.jsonl and summary.json) as one self-contained HTML "
            "page: summary tables, figures as inline SVG, errors with samples, configuration "
            "(secrets redacted) and environment. It loads nothing from the network. Every "
            "`run` writes it too."
        ),
    )
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder `run` wrote")
    report.add_argument("--out", type=Path, help="where to write it (default RUN_DIR/report.html)")
    report.add_argument("--title", default="sse-harness run", help="the page's heading")
    report.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace) -> int:
    """Write the report and say where. Raises ConfigError when RUN_DIR holds no run."""
    from harness.report.html import read_series, render_html
    from harness.run import server_rows

    run_dir: Path = args.run_dir
    try:
        summary = read_summary(run_dir).as_dict()
        records = read_all_records(run_dir / "results.jsonl")
    except (OSError, ValueError) as exc:
        raise ConfigError(str(run_dir), f"not a run folder: {exc}") from exc
    series = read_series(run_dir / "timeseries.csv")
    out: Path = args.out or run_dir / "report.html"
    page = render_html(
        summary, records, title=args.title, series=series, server_rows=server_rows(run_dir, records)
    )
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}")
    return 0
