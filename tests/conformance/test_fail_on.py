"""``--fail-on warn``: a strict verdict for CI, in the report, its files, the command's
exit code and the pytest plugin."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.conformance import judge, render_json, render_junit
from harness.conformance.model import Report
from harness.conformance.render import summary_line
from harness.servers.embedded import EmbeddedMock
from tests.conformance.builders import captured, chat_stream, exchange
from tests.conformance.test_cli import SMALL


def warned(fail_on: str) -> Report:
    """A stream whose only finding is a WARN: no ``[DONE]``."""
    return judge(captured(exchange(chat_stream(done=False))), fail_on=fail_on)


def test_a_warn_passes_by_default_and_fails_when_asked() -> None:
    lenient, strict = warned("fail"), warned("warn")
    assert lenient.counts()["WARN"] == 1
    assert lenient.counts()["FAIL"] == 0
    assert not lenient.failed
    assert strict.failed
    assert summary_line(lenient).startswith("PASS: 0 FAIL, 1 WARN")
    assert summary_line(strict).startswith("FAIL: 0 FAIL, 1 WARN")
    assert summary_line(strict).endswith("failing on warn")


def test_junit_and_json_carry_the_strict_verdict() -> None:
    for report, failures in ((warned("fail"), []), (warned("warn"), ["openai.done"])):
        (suite,) = ET.fromstring(render_junit(report)).findall("testsuite")
        failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
        assert [c.get("name") for c in failed] == failures
        assert int(suite.get("failures")) == len(failures)
        assert all(c.find("failure").get("type") == "WARN" for c in failed)
        document = json.loads(render_json(report))
        assert document["passed"] is not failures
        assert document["fail_on"] == report.fail_on


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="fail_on must be one of fail, warn"):
        warned("info")


@pytest.mark.slow
def test_the_command_exits_1_on_a_warn_only_with_fail_on_warn(
    mock: EmbeddedMock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faulty = [*SMALL, "--header", "X-Mock-Fault: no_terminator"]
    assert main(["check", mock.base_url, *faulty]) == 0
    junit = tmp_path / "junit.xml"
    assert main(["check", mock.base_url, *faulty, "--fail-on", "warn", "--junit", str(junit)]) == 1
    assert "failing on warn" in capsys.readouterr().out
    assert 'type="WARN"' in junit.read_text()
    assert main(["check", mock.base_url, *SMALL, "--fail-on", "warn"]) == 0  # the clean twin


@pytest.mark.slow
@pytest.mark.mock_llm(ttft_ms=5, itl_ms=1, tokens=8)
def test_the_plugin_checks_the_test_s_mock_with_the_same_knob(sse_check) -> None:
    faulty = {"X-Mock-Fault": "no_terminator"}
    lenient = sse_check(headers=faulty, streams=1, burst=2, timeout_s=10)
    assert not lenient.failed
    assert {r.check.id: r.status.value for r in lenient.results}["openai.done"] == "WARN"
    assert sse_check(headers=faulty, fail_on="warn", streams=1, burst=2, timeout_s=10).failed
