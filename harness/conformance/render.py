"""A conformance report as JSON, JUnit XML (one testcase per check) and Markdown.

Renderers return strings; the command line writes them. Every text a report carries
goes through ``harness.conformance.display.printable`` on the way out, in every format:
no control character a server sent reaches a terminal, a CI summary or an XML parser.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from harness.conformance.display import printable
from harness.conformance.model import AREAS, CheckResult, Finding, Report, Status

__all__ = [
    "FORMAT",
    "VERSION",
    "finding_label",
    "render_json",
    "render_junit",
    "render_markdown",
    "summary_line",
]

FORMAT = "sse-harness-check"
VERSION = 1
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]<>|])")
_BACKTICKS = re.compile(r"`+")


def summary_line(report: Report) -> str:
    """``FAIL: 2 FAIL, 1 WARN, 3 INFO, 30 pass, 4 skipped`` (and ``, 1 error`` when a
    check could not judge)."""
    counts = report.counts()
    verdict = "FAIL" if report.failed else "PASS"
    parts = [f"{counts[s.value]} {s.value}" for s in (Status.FAIL, Status.WARN, Status.INFO)]
    parts += [f"{counts['pass']} pass", f"{counts['skip']} skipped"]
    if counts["error"]:
        parts.append(f"{counts['error']} error")
    if report.fail_on != "fail":
        parts.append(f"failing on {report.fail_on}")
    return f"{verdict}: " + ", ".join(parts)


def finding_label(result: CheckResult, finding: Finding) -> str:
    """What a finding is listed as: its severity, or ``error`` for a check that raised."""
    return Status.ERROR.value if result.status is Status.ERROR else finding.severity.value


def _printable(value: Any) -> Any:
    """Every string in a JSON-able value, printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def render_json(report: Report) -> str:
    """The report as one JSON document (format ``sse-harness-check``, version 1)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "target": report.target,
        "request": report.request,
        "dialect": report.dialect,
        "fail_on": report.fail_on,
        "passed": not report.failed,
        "counts": report.counts(),
        "checks": [result.as_dict() for result in report.results],
        "requests": list(report.requests),
    }
    return json.dumps(_printable(document), indent=2, ensure_ascii=False) + "\n"


def _findings_text(result: CheckResult) -> str:
    lines = []
    for finding in result.findings:
        lines.append(f"{finding_label(result, finding)}: {printable(finding.message)}")
        lines += [f"  {printable(evidence.describe())}" for evidence in finding.evidence]
    return "\n".join(lines)


def render_junit(report: Report) -> str:
    """JUnit XML: one testcase per check. FAIL is a failure (and WARN, with
    ``fail_on="warn"``), a check that raised is an error, a skipped check is skipped, and
    other findings pass with their text in ``system-out``. The XML is well-formed
    whatever the server sent."""
    counts = report.counts()
    failures = counts["FAIL"] + (counts["WARN"] if Status.WARN in report.failing else 0)
    suites = ET.Element("testsuites", name="sse-harness check")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"sse-harness check {printable(report.target)}",
        tests=str(len(report.results)),
        failures=str(failures),
        errors=str(counts["error"]),
        skipped=str(counts["skip"]),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", report.target),
        ("request", report.request),
        ("dialect", report.dialect or "unknown"),
        ("fail-on", report.fail_on),
    ):
        ET.SubElement(properties, "property", name=name, value=printable(value))
    for result in report.results:
        check = result.check
        case = ET.SubElement(
            suite, "testcase", classname=f"conformance.{check.area}", name=check.id
        )
        if result.status in (Status.FAIL, Status.WARN) and result.status in report.failing:
            first = next(f for f in result.findings if f.severity.value == result.status.value)
            failure = ET.SubElement(
                case, "failure", message=printable(first.message), type=result.status.value
            )
            failure.text = _findings_text(result)
        elif result.status is Status.ERROR:
            error = ET.SubElement(
                case, "error", message=printable(result.findings[0].message), type="error"
            )
            error.text = _findings_text(result)
        elif result.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=printable(result.note or "not applicable"))
        elif result.findings or result.note:
            out = ET.SubElement(case, "system-out")
            out.text = _findings_text(result) or printable(result.note or "")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _cell(text: str) -> str:
    """Text for Markdown outside code: printable, with Markdown's active characters
    escaped (a server's text cannot make a link, an image or a table column)."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", printable(text))


def _code(text: str) -> str:
    """Text as a Markdown code span, fenced by more backticks than it holds in a row."""
    text = printable(text)
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def render_markdown(report: Report) -> str:
    """Markdown for CI summaries: the verdict, a table of checks by area, the evidence."""
    lines = [
        f"## sse-harness check: {_cell(report.target)}",
        "",
        f"**{summary_line(report)}** (request {_code(report.request)}, dialect "
        f"{_code(report.dialect or 'unknown')})",
        "",
        "| area | check | result | what was found |",
        "|---|---|---|---|",
    ]
    order = {area: position for position, area in enumerate(AREAS)}
    results = sorted(report.results, key=lambda r: order[r.check.area])
    for result in results:
        found = result.findings[0].message if result.findings else (result.note or "")
        more = f" (+{len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
        lines.append(
            f"| {result.check.area} | `{result.check.id}` | {result.status.value} | "
            f"{_cell(found + more)} |"
        )
    noted = [r for r in results if r.findings]
    if noted:
        lines += ["", "### Evidence", ""]
        for result in noted:
            for finding in result.findings:
                lines.append(
                    f"- **{finding_label(result, finding)}** `{result.check.id}`: "
                    f"{_cell(finding.message)}"
                )
                lines += [f"  - {_code(e.describe())}" for e in finding.evidence]
    return "\n".join(lines) + "\n"
