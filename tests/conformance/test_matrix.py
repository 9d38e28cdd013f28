"""The fault-to-check matrix: every fault of the mock is caught by the check meant for
it, and the clean mock passes every check, in every dialect, with no finding at all."""

from __future__ import annotations

import pytest

from harness.conformance import Status, SuiteSettings
from harness.conformance.replay_js import EVENTSOURCE_PARSER, OPENAI, Runtime, find_runtime
from harness.servers.embedded import EmbeddedMock
from tests.conformance.conftest import SMALL, TUTORIAL_BODY, check, findings_text, statuses

pytestmark = pytest.mark.slow  # the whole suite against the mock, fault by fault

#: Faults that add a second to every request run with a suite this small.
ONE_STREAM = SuiteSettings(
    streams=1, max_tokens=8, long_tokens=16, burst=2, timeout_s=10.0, disconnect_wait_s=2.0
)

CHAT = ("openai-chat", "", None)
COMPLETIONS = ("openai-completions", "", None)
ANTHROPIC = ("anthropic", "", None)
RESPONSES = ("openai-responses", "", None)
TUTORIAL = ("json", "/tutorial/content", TUTORIAL_BODY)

#: The JavaScript replays, skipped (with the reason) where Node or its packages are missing.
JS_CLIENTS = (EVENTSOURCE_PARSER, OPENAI)
JS_CHECKS = ("sdk.js-eventsource-parser", "sdk.js-openai")
#: fault, target, {the check meant for it (and any it implies): the status it gives}
MATRIX = [
    ("http_429", CHAT, {"http.status": "FAIL"}),
    ("http_500", CHAT, {"http.status": "FAIL"}),
    ("http_503", ANTHROPIC, {"http.status": "FAIL"}),
    ("disconnect_after=3", CHAT, {"http.complete-body": "FAIL", "openai.done": "FAIL"}),
    ("disconnect_after=3", COMPLETIONS, {"openai.finish-reason-once": "FAIL"}),
    ("disconnect_after=3", ANTHROPIC, {"anthropic.message-stop": "FAIL"}),
    ("disconnect_after=3", RESPONSES, {"responses.final-event": "FAIL"}),
    ("malformed_json@2", CHAT, {"openai.json": "FAIL", "sdk.openai": "FAIL"}),
    ("malformed_json@2", ANTHROPIC, {"anthropic.json": "FAIL", "sdk.anthropic": "FAIL"}),
    ("malformed_json@2", TUTORIAL, {"generic.json-text": "FAIL"}),
    ("malformed_json@2", RESPONSES, {"responses.json": "FAIL"}),
    ("no_terminator", CHAT, {"openai.done": "WARN"}),
    ("no_terminator", ANTHROPIC, {"anthropic.message-stop": "FAIL"}),
    ("no_terminator", TUTORIAL, {"generic.terminator": "WARN"}),
    ("no_terminator", RESPONSES, {"responses.final-event": "FAIL"}),
    ("crlf", CHAT, {"framing.line-endings": "INFO"}),
    ("cr", CHAT, {"framing.bare-cr": "WARN"}),
    ("keepalive=5", CHAT, {"framing.comments": "INFO"}),
    ("split_bytes", CHAT, {"framing.split-reads": "INFO"}),
    ("split_random", ANTHROPIC, {"framing.split-reads": "INFO"}),
    ("error_event@2", CHAT, {"errors.in-stream": "FAIL", "errors.in-stream-shape": "pass"}),
    ("error_event@2", ANTHROPIC, {"errors.in-stream": "FAIL", "errors.in-stream-shape": "pass"}),
    ("error_event@2", TUTORIAL, {"errors.in-stream": "FAIL"}),
    ("error_event@2", RESPONSES, {"errors.in-stream": "FAIL", "responses.event-order": "pass"}),
    ("stall=1.3@9", CHAT, {"streaming.stall": "WARN", "streaming.keepalive": "INFO"}),
]


@pytest.mark.parametrize(
    ("fault", "target", "expected"),
    MATRIX,
    ids=[f"{fault}-{target[0]}" for fault, target, _ in MATRIX],
)
def test_each_fault_is_caught_by_its_check(
    mock: EmbeddedMock, fault: str, target: tuple, expected: dict[str, str]
) -> None:
    request, path, body = target
    report = check(
        mock.base_url + path,
        request=request,
        body_json=body,
        headers=(("X-Mock-Fault", fault),),
        truth_url=mock.base_url,
    )
    found = statuses(report)
    assert {key: found[key] for key in expected} == expected, findings_text(report)
    assert report.failed is ("FAIL" in found.values())


def test_the_stall_evidence_names_the_token_and_the_gap(mock: EmbeddedMock) -> None:
    report = check(mock.base_url, headers=(("X-Mock-Fault", "stall=1.3@9"),))
    stall = next(r for r in report.results if r.check.id == "streaming.stall")
    (finding,) = stall.findings  # only the long stream has a ninth token
    (evidence,) = finding.evidence
    assert evidence.request == "long"
    gap_ms = int(evidence.detail.split(" ms")[0].replace(",", ""))
    assert gap_ms >= 1000
    assert "before token event 9" in evidence.detail
    assert evidence.excerpt.startswith(b"data: {")


def test_slow_headers_are_caught_by_the_early_headers_check(mock: EmbeddedMock) -> None:
    report = check(
        mock.base_url, headers=(("X-Mock-Fault", "slow_headers=0.6"),), settings=ONE_STREAM
    )
    assert statuses(report)["streaming.early-headers"] == "INFO", findings_text(report)


def test_an_error_response_in_the_dialects_shape_passes_the_error_body_check(
    mock: EmbeddedMock,
) -> None:
    report = check(mock.base_url, headers=(("X-Mock-Fault", "http_500"),))
    found = statuses(report)
    assert found["errors.error-body"] == "pass"
    assert found["errors.invalid-rejected"] == "pass"  # validation comes before faults


CLEAN = [
    CHAT,
    COMPLETIONS,
    ANTHROPIC,
    RESPONSES,
    TUTORIAL,
    ("json", "/tutorial/events", TUTORIAL_BODY),
]


@pytest.mark.parametrize("target", CLEAN, ids=[f"{t[0]}{t[1]}" for t in CLEAN])
def test_the_clean_mock_passes_every_check(mock: EmbeddedMock, target: tuple) -> None:
    request, path, body = target
    report = check(mock.base_url + path, request=request, body_json=body, truth_url=mock.base_url)
    assert not report.failed
    assert findings_text(report) == ""  # not even a WARN or an INFO
    found = statuses(report)
    assert found["disconnect.stops"] == "pass"  # verified through the mock's ground truth
    assert found["concurrency.overlap"] == "pass"
    assert found["streaming.incremental"] == "pass"
    skipped = {r.check.id: r.note for r in report.results if r.status is Status.SKIP}
    assert set(skipped) <= {
        "openai.tool-call-json",
        "anthropic.tool-input-json",
        "responses.tool-arguments-json",
        "errors.in-stream-shape",
        *(JS_CHECKS if any(not isinstance(find_runtime(c), Runtime) for c in JS_CLIENTS) else ()),
    }, skipped


def test_the_clean_plain_text_stream_passes_with_one_note(mock: EmbeddedMock) -> None:
    url = mock.base_url + "/tutorial/text?prompt={prompt}&max_tokens={max_tokens}"
    report = check(url, request="json", method="GET", truth_url=mock.base_url)
    assert report.dialect == "text"
    assert not report.failed
    found = statuses(report)
    assert found["http.content-type"] == "INFO"  # text/plain: not for EventSource
    assert found["errors.invalid-rejected"] == "skip"  # a GET has no body to spoil
    assert found["streaming.incremental"] == "pass"
    assert all(s in ("pass", "skip") for k, s in found.items() if k != "http.content-type")


def test_the_suite_is_small_and_bounded(mock: EmbeddedMock) -> None:
    report = check(mock.base_url, truth_url=mock.base_url, settings=SMALL)
    labels = [r["label"] for r in report.requests]
    assert labels == [
        "stream-1",
        "usage",
        "long",
        "abandon",
        "invalid-json",
        "invalid-no-messages",
        "invalid-type-max_tokens",
        "burst-1",
        "burst-2",
        "burst-3",
    ]
    assert all(r["seconds"] < SMALL.long_s for r in report.requests)
    abandoned = next(r for r in report.requests if r["label"] == "abandon")
    assert abandoned["ending"] == "abandoned"
