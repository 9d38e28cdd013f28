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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

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

#: Where each public name lives. The package loads a module only when one of its names is
#: first used, so that a command that needs one constant (the CLI's parser) does not pay for
#: the capture machinery and its numerical libraries.
_HOMES = {
    "CATALOGUE": "catalogue",
    "Captured": "captured",
    "Check": "model",
    "CheckResult": "model",
    "Evidence": "model",
    "Exchange": "captured",
    "Finding": "model",
    "Purpose": "captured",
    "Report": "model",
    "Severity": "model",
    "Status": "model",
    "SuiteSettings": "captured",
    "Target": "capture",
    "capture": "capture",
    "capture_suite": "capture",
    "judge": "catalogue",
    "render_json": "render",
    "render_junit": "render",
    "render_markdown": "render",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
    settings: SuiteSettings | None = None,
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
    from harness.conformance.capture import DEFAULT_SETTINGS, capture_suite
    from harness.conformance.catalogue import judge

    captured = capture_suite(target, settings or DEFAULT_SETTINGS, progress=progress)
    return judge(captured, secrets=target.secrets, fail_on=fail_on)
