"""Conformance checks: a verdict on a streaming endpoint, with evidence.

``capture_suite`` sends a small, bounded suite of requests and keeps every byte with its
arrival time; ``judge`` runs the catalogue of checks over it (pure functions, no I/O)
and returns a ``Report``; ``render_json``, ``render_junit`` and ``render_markdown`` turn
the report into text::

    target = Target(spec=RequestSpec(url="http://127.0.0.1:8000"))
    report = judge(capture_suite(target), secrets=target.secrets)
    print(render_markdown(report))

``check_endpoint`` does both steps in one call.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.conformance.capture import DEFAULT_SETTINGS, Target, capture, capture_suite
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
    "check_endpoint",
    "judge",
    "render_json",
    "render_junit",
    "render_markdown",
]


def check_endpoint(
    target: Target,
    settings: SuiteSettings = DEFAULT_SETTINGS,
    *,
    fail_on: str = "fail",
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Send the suite to ``target`` and judge what came back: ``sse-harness check``'s
    verdict, with the target's secrets kept out of the evidence. With ``fail_on="warn"``
    a WARN fails the verdict too (``report.failed``).

    Raises:
        ConnectFailed: the endpoint cannot be reached at all.
    """
    captured = capture_suite(target, settings, progress=progress)
    return judge(captured, secrets=target.secrets, fail_on=fail_on)
