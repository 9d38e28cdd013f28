"""The report as JSON, JUnit XML (one testcase per check) and Markdown."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from harness.conformance import judge, render_json, render_junit, render_markdown
from harness.conformance.captured import Purpose
from tests.conformance.builders import captured, chat_stream, exchange


def failing_report():
    cut = exchange(chat_stream(finish=None, done=False))
    invalid = exchange(
        [b'{"error": {"message": "bad"}}'],
        label="invalid-json",
        status=400,
        purpose=Purpose.INVALID,
        headers=(("content-type", "application/json"),),
    )
    return judge(captured(cut, invalid))


def test_json_carries_every_check_with_its_findings_and_evidence() -> None:
    report = failing_report()
    document = json.loads(render_json(report))
    assert document["format"] == "sse-harness-check"
    assert document["version"] == 1
    assert document["passed"] is False
    assert len(document["checks"]) == len(report.results)
    done = next(c for c in document["checks"] if c["id"] == "openai.done")
    assert done["status"] == "FAIL"
    assert done["findings"][0]["evidence"][0]["request"] == "stream-1"
    assert {"id", "area", "severity", "title", "rationale", "status", "note"} <= set(done)
    assert [r["label"] for r in document["requests"]] == ["stream-1", "invalid-json"]


def test_junit_has_one_testcase_per_check() -> None:
    report = failing_report()
    root = ET.fromstring(render_junit(report))
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(report.results) == int(suite.get("tests"))
    failures = [c.get("name") for c in cases if c.find("failure") is not None]
    assert "openai.done" in failures
    assert int(suite.get("failures")) == len(failures)
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert int(suite.get("skipped")) == len(skipped)
    done = next(c for c in cases if c.get("name") == "openai.done")
    assert done.get("classname") == "conformance.openai"
    assert "stream-1" in done.find("failure").text


def test_markdown_has_the_verdict_a_table_and_the_evidence() -> None:
    text = render_markdown(failing_report())
    assert text.startswith("## sse-harness check: http://127.0.0.1:1/v1/chat/completions")
    assert "**FAIL: " in text
    assert "| openai | `openai.done` | FAIL |" in text
    assert "### Evidence" in text
    assert "- **FAIL** `openai.done`" in text
