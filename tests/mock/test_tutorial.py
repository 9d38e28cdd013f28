"""The tutorial formats, over GET (as EventSource asks) and POST, decode with harness.dialects."""

from __future__ import annotations

import pytest

from harness.dialects import get
from harness.sse import Decoder
from mock_server.plan import Endpoint
from mock_server.server import RunningMock
from tests.mock.conftest import FAST
from tests.mock.streams import expected_plan, read

PROMPT = "how do rivers find the sea"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_content_stream_decodes_as_generic_json_ended_by_done(
    mock: RunningMock, method: str
) -> None:
    plan = expected_plan(FAST, Endpoint.TUTORIAL_CONTENT, {"prompt": PROMPT})
    if method == "GET":
        reading = read(mock.base_url, "/tutorial/content", method="GET", params={"prompt": PROMPT})
    else:
        reading = read(mock.base_url, "/tutorial/content", {"prompt": PROMPT})
    assert reading.status == 200
    assert reading.headers["content-type"].startswith("text/event-stream")
    assert reading.reader is not None
    result = reading.reader.result()
    assert reading.reader.dialect is not None
    assert reading.reader.dialect.name == "generic"
    assert result.text == plan.text
    assert result.done
    assert reading.reader.content_events == FAST.timing.tokens
    assert reading.body.endswith(b"data: [DONE]\n\n")


def test_content_stream_accepts_openai_style_messages(mock: RunningMock) -> None:
    body = {"messages": [{"role": "user", "content": PROMPT}]}
    reading = read(mock.base_url, "/tutorial/content", body)
    assert reading.reader is not None
    assert reading.reader.result().text == expected_plan(FAST, Endpoint.TUTORIAL_CONTENT, body).text


def test_events_stream_has_start_ids_and_a_complete_event_with_usage(mock: RunningMock) -> None:
    reading = read(
        mock.base_url,
        "/tutorial/events",
        method="GET",
        params={"prompt": PROMPT},
        dialect="generic",
    )
    decoder = Decoder()
    events = decoder.feed(reading.body)
    assert events[0].type == "start"
    contents = [e for e in events if e.type == "content"]
    assert [e.id for e in contents] == [str(n) for n in range(1, 9)]
    assert events[-1].type == "complete"
    assert reading.reader is not None
    result = reading.reader.result()
    assert result.done
    assert result.finish_reason == "stop"
    assert result.full_text == result.text
    assert result.usage == {"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14}


def test_events_stream_sends_an_error_event_on_a_fault(mock: RunningMock) -> None:
    reading = read(
        mock.base_url,
        "/tutorial/events",
        {"prompt": PROMPT},
        headers={"X-Mock-Fault": "error_event@3"},
    )
    assert reading.reader is not None
    result = reading.reader.result()
    assert result.error == {"message": "mock fault: error_event", "type": "server_error"}
    assert reading.reader.content_events == 2
    assert not result.done
    assert b"event: error" in reading.body


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_text_stream_is_chunked_plain_text(mock: RunningMock, method: str) -> None:
    plan = expected_plan(FAST, Endpoint.TUTORIAL_TEXT, {"prompt": PROMPT})
    if method == "GET":
        reading = read(mock.base_url, "/tutorial/text", method="GET", params={"prompt": PROMPT})
    else:
        reading = read(mock.base_url, "/tutorial/text", {"prompt": PROMPT})
    assert reading.headers["content-type"].startswith("text/plain")
    assert reading.headers["transfer-encoding"] == "chunked"
    assert reading.body.decode() == plan.text
    assert reading.reader is not None
    assert reading.reader.result().text == plan.text


def test_counter_counts_up_to_max(mock: RunningMock) -> None:
    reading = read(
        mock.base_url,
        "/tutorial/counter",
        method="GET",
        params={"max": "5"},
        dialect="generic",
        pointer="/count",
        terminator=None,
    )
    assert [e.data for e in Decoder().feed(reading.body)] == [
        '{"count":1}', '{"count":2}', '{"count":3}', '{"count":4}', '{"count":5}'
    ]  # fmt: skip
    assert reading.reader is not None
    assert reading.reader.content_events == 5


def test_counter_is_bounded_by_the_server_maximum(make_mock) -> None:
    mock = make_mock(max_counter=3)
    reading = read(mock.base_url, "/tutorial/counter", {"max": 1000}, dialect="generic")
    assert len(Decoder().feed(reading.body)) == 3


def test_get_and_post_of_the_same_prompt_give_the_same_text(mock: RunningMock) -> None:
    by_get = read(mock.base_url, "/tutorial/text", method="GET", params={"prompt": PROMPT})
    by_post = read(mock.base_url, "/tutorial/text", {"prompt": PROMPT})
    assert by_get.body == by_post.body


def test_a_tutorial_get_without_prompt_is_a_fastapi_style_400(mock: RunningMock) -> None:
    reading = read(mock.base_url, "/tutorial/content", method="GET")
    assert reading.status == 400
    assert "prompt" in reading.json()["detail"]


def test_the_dialect_detects_every_sse_tutorial_format(mock: RunningMock) -> None:
    for path in ("/tutorial/content", "/tutorial/events"):
        reading = read(mock.base_url, path, {"prompt": PROMPT})
        assert reading.reader is not None
        assert reading.reader.dialect == get("generic")
        assert reading.reader.errors == []
