"""The report's words on the server's own view, and the terminal's table."""

from __future__ import annotations

from rich.console import Console

from harness.cli.server_table import server_table
from harness.report.server import gap_sentence, server_comparison, server_markdown

SERVER = {
    "urls": ["http://127.0.0.1:8000/metrics"],
    "scrapes": 10,
    "scrape_errors": 1,
    "first_error": "http://127.0.0.1:8000/metrics: timed out",
    "recognised": "vllm",
    "running": {"min": 0.0, "max": 8.0, "mean": 6.0, "last": 0.0},
    "kv_cache_usage": {"min": 0.0, "max": 0.42, "mean": 0.3, "last": 0.0},
    "server_ttft_s": {"p50": 0.016, "p99": 0.05, "bound_s": {"p50": 0.004, "p99": None},
                      "mean": 0.02, "count": 100},
}  # fmt: skip
SUMMARY = {
    "ttft_s": {"p50": 0.047, "p99": 0.2},
    "e2e_s": {"p50": 1.0, "p99": 2.0},
    "server": SERVER,
    "client_vs_server": {"ttft_p50_ms": 31.0, "ttft_p99_ms": 150.0,
                         "bound_ms": {"ttft_p50_ms": 4.0, "ttft_p99_ms": None}},
}  # fmt: skip


def test_the_gap_is_told_with_its_bound_and_what_it_holds() -> None:
    sentence = gap_sentence(SUMMARY)
    assert sentence is not None
    assert "TTFT +31.0 ms (server figure ± 4.0 ms)" in sentence
    assert "gateway or proxy" in sentence
    assert gap_sentence({"server": SERVER}) is None


def test_the_markdown_section_puts_client_and_server_side_by_side() -> None:
    lines = server_markdown(SUMMARY)
    assert "| TTFT p50 | 47.0 | 16.0 | ± 4.0 | +31.0 |" in lines
    assert "| TTFT p99 | 200.0 | 50.0 | unbounded (+Inf bucket) | +150.0 |" in lines
    assert any("1 failed (first: http://127.0.0.1:8000/metrics: timed out)" in x for x in lines)
    assert any("KV cache use max 42.0%" in x for x in lines)
    assert server_markdown({"ttft_s": {}}) == []


def test_a_run_without_a_scrape_has_no_server_section() -> None:
    summary = {"requests": 0, "ok": 0, "errors": 0, "error_rate": 0.0, "ttft_s": {}}
    assert server_table(summary) is None
    assert "server's own view" not in "\n".join(server_markdown(summary))


def test_the_terminal_table_shows_the_bound_beside_each_server_figure() -> None:
    table = server_table(SUMMARY)
    assert table is not None
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    assert "± 4.0" in text
    assert "unbounded" in text
    assert "KV cache max 42%" in text


def test_a_comparison_shows_both_runs_server_figures_without_a_verdict() -> None:
    current = {"server": {**SERVER, "kv_cache_usage": {"max": 0.5}}, "client_vs_server": {}}
    text = server_comparison(SUMMARY, current, names=("base", "new"))
    assert "| server TTFT p50 | 16.00 ms | 16.00 ms |" in text
    assert "| server KV cache use (max) | 42.0% | 50.0% |" in text
    assert "| client - server TTFT p50 | +31.00 ms | - |" in text
    assert "no verdict" in text
    assert server_comparison({}, {}, names=("a", "b")) == ""
