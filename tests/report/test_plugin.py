"""The pytest plugin, used from a test project outside this repository (pytester)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

pytestmark = pytest.mark.slow  # each test runs pytest, or Python, in a subprocess

#: A project's tests: its app's streaming code against the mock, and a performance gate.
PROJECT_TESTS = '''
import httpx
import json
from pathlib import Path

import pytest

from harness.analysis.gate import check


def stream_answer(base_url, question, headers=None):
    """The app's code under test: ask the upstream LLM and yield the text as it comes."""
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": question}]}
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=body,
                      headers=headers or {}, timeout=10) as response:
        response.raise_for_status()
        yield response.headers["x-mock-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"][0]["delta"] if json.loads(
                    line[6:])["choices"] else {}
                if delta.get("content"):
                    yield delta["content"]


@pytest.mark.mock_llm(ttft_ms=10, itl_ms=2, tokens=6)
def test_the_app_relays_every_token(mock_llm):
    request_id, *chunks = stream_answer(mock_llm.base_url, "hi")
    assert len(chunks) == 6
    truth = mock_llm.truth(request_id)
    assert truth["tokens_sent"] == 6
    assert truth["outcome"] == "complete"


@pytest.mark.mock_llm(ttft_ms=10, itl_ms=2, tokens=6)
def test_per_request_overrides_and_faults(mock_llm):
    request_id, *chunks = stream_answer(mock_llm.base_url, "hi", mock_llm.headers(tokens=3))
    assert len(chunks) == 3
    headers = mock_llm.headers(fault=["disconnect_after=2"])
    with pytest.raises(httpx.RemoteProtocolError):
        list(stream_answer(mock_llm.base_url, "hi", headers))
    assert "mock_tokens=2" in mock_llm.url("/tutorial/events", tokens=2)


def test_factory_starts_mocks_of_several_kinds(mock_llm_factory):
    short = mock_llm_factory(ttft_ms=5, itl_ms=1, tokens=2)
    failing = mock_llm_factory(fault_rate={"http_500": 1.0})
    assert short.base_url != failing.base_url
    assert len(list(stream_answer(short.base_url, "hi"))) == 3
    with pytest.raises(httpx.HTTPStatusError):
        list(stream_answer(failing.base_url, "hi"))


@pytest.mark.mock_llm(ttft_ms=30, itl_ms=2, tokens=10)
def test_performance_gate(sse_load):
    summary = sse_load(requests=24, concurrency=6)
    # a bound a busy machine cannot miss: the gate is what is shown, not the machine's speed
    verdict = check(summary, {"ttft.p95": "< 5 s", "error_rate": "== 0", "requests": ">= 24"})
    assert verdict.passed, str(verdict)
    assert summary["ttft_s"]["p50"] >= 0.03
    assert Path(summary["run_dir"], "report.html").exists()


@pytest.mark.mock_llm(ttft_ms=60, itl_ms=2, tokens=4)
def test_a_breached_gate_fails_with_its_verdict(sse_load):
    verdict = check(sse_load(requests=8, concurrency=4), {"ttft.p50": "< 20 ms"})
    assert verdict.passed, str(verdict)
'''


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    found = [e for e in entry_points(group="pytest11") if e.name == "sse_harness"]
    assert found, "install the project (pip install -e .) to register its pytest plugin"
    assert found[0].value == "harness.pytest_plugin"


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    code = ("import sys, harness.pytest_plugin; "
            "print(sorted(m for m in ('pandas', 'numpy', 'matplotlib', 'aiohttp', 'httpx', "
            "'harness.run', 'mock_server') if m in sys.modules))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


def test_a_project_that_does_not_use_it_is_unaffected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "mock_llm" in pytester.runpytest_subprocess("--markers").stdout.str()


def test_fixtures_work_from_a_project_outside_the_repository(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=PROJECT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4, failed=1)
    output = result.stdout.str()
    assert "FAILED test_app.py::test_a_breached_gate_fails_with_its_verdict" in output
    assert "breaches ttft.p50 < 20 ms" in output
