"""The files of a finished run beside its ``results.jsonl``: ``summary.json``,
``requests.csv``, ``timeseries.csv``, ``report.md`` and ``report.html``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.analysis.server_figures import server_series
from harness.limits import frozen_collector
from harness.record import RequestRecord
from harness.results import read_scrapes, write_summary
from harness.run.result import RunResult

__all__ = ["server_rows", "write_run_files"]


def write_run_files(result: RunResult, *, timings: dict[str, float] | None = None) -> None:
    """Write ``summary.json``, ``requests.csv``, ``timeseries.csv``, ``report.md`` and
    ``report.html`` of a finished run beside its ``results.jsonl`` (any entry point that
    gathered records); ``timings``, if given, gets the seconds each file took."""
    with frozen_collector():
        _write_run_files(result, timings if timings is not None else {})


def _write_run_files(result: RunResult, times: dict[str, float]) -> None:
    from harness.analysis.frames import requests_frame, time_series
    from harness.report.html import render_html
    from harness.report.markdown import render_markdown

    out = result.out_dir
    clock = time.perf_counter
    t = clock()
    write_summary(out / "summary.json", result.run_summary or result.summary)
    times["summary_json"], t = clock() - t, clock()
    requests_frame(result.records).to_csv(out / "requests.csv", index=False)
    times["requests_csv"], t = clock() - t, clock()
    series = time_series(result.records, client=result.client)
    series.to_csv(out / "timeseries.csv", index=False)
    times["timeseries_csv"], t = clock() - t, clock()
    (out / "report.md").write_text(render_markdown(result.summary, segments=result.segments))
    times["report_md"], t = clock() - t, clock()
    rows = server_rows(out, result.records)
    page = render_html(result.summary, result.records, series=series, server_rows=rows)
    (out / "report.html").write_text(page, "utf-8")
    times["report_html"] = clock() - t


def server_rows(out: Path, records: Sequence[RequestRecord]) -> list[dict[str, Any]]:
    """The scraped servers' series over time (from the first request sent), if any."""
    path = out / "server_metrics.jsonl"
    if not path.exists() or not records:
        return []
    return server_series(read_scrapes(path), origin_ns=min(r.t_sent_ns for r in records))
