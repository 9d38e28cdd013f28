"""The HTML report: self-contained, escaped, with its figures, deterministic."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report.html import render_html, saturation_knee
from harness.results import read_records
from tests.report.conftest import IMAGE, SCRIPT

ROOT = Path(__file__).resolve().parents[2]
ENV = {"python": "3.x", "sse-harness": "test"}


def load(run_dir: Path) -> tuple[dict, list]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary, list(read_records(run_dir / "results.jsonl"))


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's parser sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_loads_nothing(page: str) -> None:
    """No script, no frame, no external resource; every link points inside the page."""
    tags = Elements(page).tags
    names = {tag for tag, _ in tags}
    assert not names & {"script", "iframe", "link", "img", "object", "embed", "base", "image"}
    assert "svg" in names
    for tag, attrs in tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "xlink:href", "action"):
                assert (value or "").startswith("#"), (tag, name, value)
    assert "url(http" not in page
    assert "@import" not in page
    assert "default-src 'none'" in page


@pytest.mark.slow  # a real run against the mock
def test_every_run_writes_a_self_contained_report(runs: Callable[[str], Path]) -> None:
    page = (runs("base") / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert_loads_nothing(page)
    assert page.count("<svg") == 6  # the client did not watch itself in these runs
    for title in ("TTFT distribution", "Inter-token latency", "Latency over time",
                  "Throughput and concurrency over time", "Requests ending per second",
                  "Request timeline"):  # fmt: skip
        assert title in page
    for heading in ("Latency", "Errors", "Configuration", "Environment"):
        assert f"<h2>{heading}</h2>" in page
    assert "No errors." in page
    assert "matplotlib" in page  # versions of the machine that ran it


@pytest.mark.slow  # a real run against the mock
def test_the_report_is_deterministic(runs: Callable[[str], Path]) -> None:
    summary, records = load(runs("base"))
    first = render_html(summary, records, env=ENV)
    assert render_html(summary, records, env=ENV) == first


def test_a_hostile_endpoint_cannot_inject_markup(hostile_run: Path) -> None:
    page = (hostile_run / "report.html").read_text(encoding="utf-8")
    assert_loads_nothing(page)
    summary = json.loads((hostile_run / "summary.json").read_text())
    assert summary["errors_by_kind"] == {"http_status": 3, "stream_error": 3}
    assert "alert(" in page  # the text is shown, inert
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;" in page
    assert SCRIPT not in page
    assert IMAGE not in page
    assert "[redacted]" in page  # header values never reach the report
    assert "secret-header-value" not in page
    assert "HTTP 500: &lt;script&gt;" in page


@pytest.mark.slow  # a real run against the mock
def test_the_report_command_rewrites_the_page(runs: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", str(runs("base")), "--out", str(out),
         "--title", "nightly <b>"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out}"
    page = out.read_text(encoding="utf-8")
    assert "<h1>nightly &lt;b&gt;</h1>" in page
    assert page.count("<svg") == 6


def sweep_segments(summary: dict, *, saturated_at: int | None) -> list[dict]:
    """Three segments made from a real summary, throughput growing then flat."""
    segments = []
    for i, (label, gain) in enumerate((("concurrency=1", 1.0), ("concurrency=4", 3.5),
                                       ("concurrency=16", 3.6))):  # fmt: skip
        segment = {"segment": label, "summary": copy.deepcopy(summary)}
        segment["summary"]["output_tokens_per_s"] *= gain
        segment["summary"]["ttft_s"]["p99"] *= 1 + i
        if i == saturated_at:
            segment["saturated"] = True
        segments.append(segment)
    return segments


@pytest.mark.slow  # a real run against the mock
def test_a_sweep_draws_latency_against_throughput_with_the_knee(
    runs: Callable[[str], Path],
) -> None:
    summary, records = load(runs("base"))
    summary["segments"] = sweep_segments(summary, saturated_at=2)
    assert saturation_knee(summary["segments"])[0] == 1
    page = render_html(summary, records, env=ENV)
    assert page.count("<svg") == 7
    assert "Latency against throughput" in page
    assert "knee: concurrency=4" in page  # in the figure's legend and the note
    assert "<td>knee</td>" in page
    assert "<td>saturated</td>" in page


def test_the_knee_follows_the_runs_own_saturation_rule() -> None:
    base = {"output_tokens_per_s": 100.0}
    segments = [{"segment": f"c={c}", "summary": {**base, "output_tokens_per_s": t}}
                for c, t in ((1, 100.0), (2, 190.0), (4, 185.0))]  # fmt: skip
    assert saturation_knee(segments)[0] is None
    assert "no saturation" in saturation_knee(segments)[1]
    segments[2]["saturated"] = True
    assert saturation_knee(segments)[0] == 1
    probes = [{"segment": f"rate={r}", "rate": r, "passed": r <= 8, "summary": base}
              for r in (4, 8, 16, 12)]  # fmt: skip
    assert saturation_knee(probes)[0] == 1
    assert "highest rate meeting every SLO" in saturation_knee(probes)[1]
    assert saturation_knee([])[0] is None
