"""The report as JSON, JUnit XML (one testcase per check) and Markdown."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

from rich.console import Console

from harness.cli.check_command import report_table
from harness.conformance import judge, render_json, render_junit, render_markdown
from harness.conformance.captured import Purpose
from harness.conformance.display import printable
from harness.conformance.model import Check, CheckResult, Evidence, Report, Severity
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


#: What a server can put in any text of a report: terminal escapes, NUL, BEL, C1 CSI, a
#: lone surrogate, a bidi override, and Markdown that would make a link.
HOSTILE = "\x1b[2J\x00\x07\x9b\ud800\u202e|`*_[x](http://e/p.png)"
RAW_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e]")


def hostile_report() -> Report:
    check = Check(
        id="http.status",
        area="http",
        severity=Severity.FAIL,
        title="t",
        rationale="r",
        run=lambda suite: [],
    )
    evidence = Evidence(
        request="stream-1",
        offset=0,
        excerpt=HOSTILE.encode("utf-8", "surrogatepass"),
        detail="detail " + HOSTILE,
    )
    result = CheckResult.of(check, [check.finding("message " + HOSTILE, evidence)])
    return Report(
        target="http://127.0.0.1:1/" + HOSTILE,
        request="openai-chat",
        dialect="openai-chat",
        results=(result,),
        requests=({"label": "stream-1", "content_type": HOSTILE},),
    )


def test_printable_shows_every_control_character_one_way() -> None:
    assert printable("\x1b\x00\n\t\r\x7f\x9b\ud800\u202e\u2028ok é") == (
        "\\x1b\\x00\\n\\t\\r\\x7f\\x9b\\ud800\\u202e\\u2028ok é"
    )


def test_every_renderer_shows_control_characters_escaped() -> None:
    report = hostile_report()
    console = Console(file=io.StringIO(), width=400)
    console.print(report_table(report))
    shown = {
        "json": render_json(report),
        "junit": render_junit(report),
        "markdown": render_markdown(report),
        "terminal": console.file.getvalue(),  # type: ignore[attr-defined]
    }
    visible = "\\x1b[2J\\x00\\x07\\x9b\\ud800\\u202e"
    for name, text in shown.items():
        assert not RAW_CONTROLS.search(text), name
        assert visible in (json.loads(text)["target"] if name == "json" else text), name
        text.encode("utf-8")  # writable as UTF-8
    ET.fromstring(shown["junit"])  # well-formed: XML 1.0 has no NUL, even as an entity
    row = next(line for line in shown["markdown"].splitlines() if line.startswith("| http |"))
    assert row.endswith("\\|\\`\\*\\_\\[x\\](http://e/p.png) |")  # no link, image or column
    assert row.count(" | ") == 3
