"""Conformance checks: a verdict on a streaming endpoint, with evidence.

``capture_suite`` sends a small, bounded suite of requests and keeps every byte with its
arrival time; ``judge`` runs the catalogue of checks over it (pure functions, no I/O)
and returns a ``Report``; ``render_json``, ``render_junit`` and ``render_markdown`` turn
the report into text::

    target = Target(spec=RequestSpec(url="http://127.0.0.1:8000"))
    report = judge(capture_suite(target), secrets=target.secrets)
    print(render_markdown(report))
"""

from __future__ import annotations

from harness.conformance.capture import Target, capture, capture_suite
from harness.conformance.captured import Captured, Exchange, Purpose, SuiteSettings
from harness.conformance.catalogue import CATALOGUE, judge
from harness.conformance.model import (
    Check,
    CheckResult,
    Evidence,
    Finding,
    Report,
    Severity,
    Status,
)
from harness.conformance.render import render_json, render_junit, render_markdown

__all__ = [
    "CATALOGUE",
    "Captured",
    "Check",
    "CheckResult",
    "Evidence",
    "Exchange",
    "Finding",
    "Purpose",
    "Report",
    "Severity",
    "Status",
    "SuiteSettings",
    "Target",
    "capture",
    "capture_suite",
    "judge",
    "render_json",
    "render_junit",
    "render_markdown",
]
