"""The checker against small servers written the way tutorials teach, each relaying the
mock through the official openai SDK: what it finds is what is wrong with them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.conformance import Report, SuiteSettings, Target, capture_suite, judge
from harness.load.payloads import RequestSpec
from harness.servers.embedded import EmbeddedMock
from tests.apps.conftest import ROOT

pytestmark = pytest.mark.slow  # app servers in subprocesses, checked end to end

#: What the tutorial apps take: a prompt and a length (the suite asks short and long).
BODY = '{"prompt": "{prompt}", "max_tokens": {max_tokens}}'
SUITE = SuiteSettings(
    streams=2, max_tokens=8, long_tokens=100, burst=4, timeout_s=15.0, disconnect_wait_s=3.0
)
GAUGE = "mock_active_streams"


def check_app(url: str, upstream: EmbeddedMock, *, request: str = "json") -> Report:
    spec = RequestSpec(request=request, url=url, body_json=BODY if request == "json" else None)
    target = Target(spec=spec, metrics_url=upstream.base_url + "/metrics", metrics_gauge=GAUGE)
    return judge(capture_suite(target, SUITE))


def results(report: Report) -> dict[str, tuple[str, str]]:
    """check id -> (status, first message or note)."""
    return {
        r.check.id: (r.status.value, r.findings[0].message if r.findings else (r.note or ""))
        for r in report.results
    }


def fails(report: Report) -> set[str]:
    return {r.check.id for r in report.results if r.status.value == "FAIL"}


def test_the_tutorial_streaming_response_lacks_cache_control(
    apps: dict[str, str], upstream: EmbeddedMock
) -> None:
    report = check_app(apps["content_app"] + "/chat", upstream)
    found = results(report)
    assert report.dialect == "generic"
    assert found["http.cache-control"][0] == "WARN"
    assert "Cache-Control is missing" in found["http.cache-control"][1]
    assert found["http.accel-buffering"][0] == "INFO"
    assert found["generic.json-text"][0] == "pass"
    assert found["generic.terminator"][0] == "pass"  # data: [DONE]
    assert found["streaming.incremental"][0] == "pass"
    assert found["concurrency.overlap"][0] == "pass"
    # the client's close reaches the upstream: the mock's gauge falls back at once
    assert found["disconnect.stops"][0] == "pass", found["disconnect.stops"]
    assert "gauge fell back" in found["disconnect.stops"][1]
    assert not report.failed


def test_named_events_with_ids_read_cleanly_but_the_producer_task_outlives_the_client(
    apps: dict[str, str], upstream: EmbeddedMock
) -> None:
    report = check_app(apps["events_app"] + "/chat", upstream)
    found = results(report)
    assert report.dialect == "generic"
    assert found["http.cache-control"][0] == "pass"
    assert found["generic.json-text"][0] == "pass"
    assert found["generic.terminator"][0] == "pass"  # the complete event
    assert found["framing.unknown-fields"][0] == "pass"  # event: and id: lines are fields
    assert fails(report) == {"disconnect.stops"}
    assert "kept producing" in found["disconnect.stops"][1]


def test_a_text_plain_stream_is_read_as_text(apps: dict[str, str], upstream: EmbeddedMock) -> None:
    report = check_app(apps["text_app"] + "/chat", upstream)
    found = results(report)
    assert report.dialect == "text"
    assert found["http.content-type"][0] == "INFO"
    assert found["http.cache-control"][0] == "WARN"
    assert found["streaming.incremental"][0] == "pass"
    assert not report.failed


def test_sse_starlette_sends_crlf_and_the_right_headers(
    apps: dict[str, str], upstream: EmbeddedMock
) -> None:
    report = check_app(apps["sse_starlette_app"] + "/chat", upstream)
    found = results(report)
    assert found["framing.line-endings"][0] == "INFO"
    assert "CRLF" in found["framing.line-endings"][1]
    assert found["http.cache-control"][0] == "pass"
    assert found["http.accel-buffering"][0] == "pass"
    assert not report.failed


def test_a_synchronous_client_in_an_async_handler_serializes_the_streams(
    apps: dict[str, str], upstream: EmbeddedMock
) -> None:
    report = check_app(apps["sync_client_app"] + "/chat", upstream)
    overlap = next(r for r in report.results if r.check.id == "concurrency.overlap")
    assert overlap.status.value == "FAIL"
    (finding,) = overlap.findings
    assert len(finding.evidence) == SUITE.burst  # when each stream of the burst ran
    assert all("first token +" in e.detail for e in finding.evidence)
    firsts = [
        int(e.detail.split("first token +")[1].split(" ms")[0].replace(",", ""))
        for e in finding.evidence
    ]
    assert firsts == sorted(firsts)
    assert firsts[-1] - firsts[0] > 150  # each waited for the ones before it
    assert results(report)["streaming.incremental"][0] == "pass"  # each stream still streams


def test_a_buffering_proxy_is_caught_by_the_streaming_check(
    apps: dict[str, str], upstream: EmbeddedMock
) -> None:
    report = check_app(apps["buffering_proxy"], upstream, request="openai-chat")
    found = results(report)
    assert report.dialect == "openai-chat"
    assert found["streaming.incremental"][0] == "FAIL"
    assert "buffers" in found["streaming.incremental"][1]
    assert found["http.no-content-length"][0] == "WARN"
    assert found["openai.done"][0] == "pass"  # the bytes themselves are intact
    assert found["sdk.openai"][0] == "pass"
    # the upstream had finished before the client saw a token: nothing left to stop
    assert found["disconnect.stops"][0] == "INFO"
    assert "not verifiable" in found["disconnect.stops"][1]


def test_the_command_checks_disconnect_propagation_through_the_metrics_gauge(
    apps: dict[str, str], upstream: EmbeddedMock, tmp_path
) -> None:
    report_file = tmp_path / "check.json"
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "check",
        apps["events_app"] + "/chat",
        "--request",
        "json",
        "--body-json",
        BODY,
        "--streams",
        "2",
        "--max-tokens",
        "8",
        "--long-tokens",
        "100",
        "--burst",
        "3",
        "--disconnect-wait",
        "3",
        "--metrics-url",
        upstream.base_url + "/metrics",
        "--metrics-gauge",
        GAUGE,
        "--json",
        str(report_file),
        "--quiet",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "disconnect.stops" in result.stdout
    document = json.loads(report_file.read_text())
    stops = next(c for c in document["checks"] if c["id"] == "disconnect.stops")
    assert stops["status"] == "FAIL"
    (evidence,) = stops["findings"][0]["evidence"]
    assert evidence["request"] == "abandon"
    assert "back to baseline after" in evidence["detail"]
