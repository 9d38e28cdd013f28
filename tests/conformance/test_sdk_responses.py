"""The openai SDK's replay of Responses API streams (``client.responses.create(...,
stream=True)``): the text it rebuilds is ours, on built streams and on the mock's."""

from __future__ import annotations

import pytest

from harness.conformance.model import Status
from harness.conformance.reading import read_suite
from harness.conformance.replay import replay_openai
from harness.servers.embedded import EmbeddedMock
from tests.conformance.builders import run
from tests.conformance.conftest import check, findings_text, statuses
from tests.conformance.test_checks_responses import events, stream, suite

openai = pytest.importorskip("openai")


def test_the_sdk_rebuilds_the_output_text_of_a_responses_stream() -> None:
    (reading,) = read_suite(suite(stream(events(("Hel", "lo", "!"))))).readings
    assert reading.dialect == "openai-responses"
    assert replay_openai(openai, reading) == "Hello!"
    result = run("sdk.openai", suite(stream(events())))
    assert result.status is Status.PASS
    assert result.note == f"openai {openai.__version__} read 1 streams to the same text as ours"


def test_a_responses_stream_the_sdk_cannot_read_fails_with_what_it_raises() -> None:
    chunks = stream(events())
    chunks.insert(5, b'event: response.output_text.delta\ndata: {"type": "response.out\n\n')
    result = run("sdk.openai", suite(chunks))
    assert result.status is Status.FAIL
    assert result.findings[0].message == "the openai SDK raises JSONDecodeError"


@pytest.mark.slow
def test_the_mock_s_responses_streams_replay_to_our_text(mock: EmbeddedMock) -> None:
    report = check(mock.base_url, request="openai-responses")
    assert report.dialect == "openai-responses"
    replayed = next(r for r in report.results if r.check.id == "sdk.openai")
    assert replayed.status.value == "pass", findings_text(report)
    assert replayed.note is not None
    assert replayed.note.startswith(f"openai {openai.__version__} read ")


@pytest.mark.slow
def test_the_mock_s_broken_responses_json_fails_the_sdk_replay(mock: EmbeddedMock) -> None:
    report = check(
        mock.base_url, request="openai-responses", headers=(("X-Mock-Fault", "malformed_json@2"),)
    )
    assert statuses(report)["sdk.openai"] == "FAIL", findings_text(report)
