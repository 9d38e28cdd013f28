"""Every fault is observable from a client as what it is."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.errors import DialectError
from mock_server.server import RunningMock
from tests.mock.streams import read

ITL_NS = 5_000_000


@dataclass(frozen=True)
class Api:
    name: str
    path: str
    body: dict[str, Any]
    dialect: str
    terminator: bytes
    error_key: str


CHAT = Api(
    "chat",
    "/v1/chat/completions",
    {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi there"}]},
    "openai-chat",
    b"data: [DONE]",
    "error",
)
MESSAGES = Api(
    "messages",
    "/v1/messages",
    {
        "model": "m",
        "stream": True,
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "anthropic",
    b"event: message_stop",
    "error",
)
RESPONSES = Api(
    "responses",
    "/v1/responses",
    {"model": "m", "stream": True, "input": "hi there"},
    "openai-responses",
    b"event: response.completed",
    "error",
)
APIS = [CHAT, MESSAGES, RESPONSES]
IDS = [api.name for api in APIS]


def fault(mock: RunningMock, api: Api, spec: str, **kwargs: Any):
    headers = {"X-Mock-Fault": spec, **kwargs.pop("headers", {})}
    return read(mock.base_url, api.path, api.body, headers=headers, dialect=api.dialect, **kwargs)


def clean(mock: RunningMock, api: Api):
    return read(mock.base_url, api.path, api.body, dialect=api.dialect)


@pytest.mark.parametrize(
    ("spec", "status"), [("http_429", 429), ("http_500", 500), ("http_503", 503)]
)
@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_http_error_faults_answer_with_the_status_and_the_dialect_error_body(
    mock: RunningMock, api: Api, spec: str, status: int
) -> None:
    reading = fault(mock, api, spec)
    assert reading.status == status
    body = reading.json()
    if api is MESSAGES:
        assert body["type"] == "error"
        assert body["error"]["type"] in ("rate_limit_error", "api_error", "overloaded_error")
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    assert ("retry-after" in reading.headers) == (status == 429)


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_disconnect_after_n_tokens_ends_the_body_early_without_terminator(
    mock: RunningMock, api: Api
) -> None:
    reading = fault(mock, api, "disconnect_after=3")
    assert isinstance(reading.failure, httpx.RemoteProtocolError)  # an incomplete chunked body
    assert reading.reader is not None
    assert reading.reader.content_events == 3
    assert not reading.reader.result().done
    assert api.terminator not in reading.body
    truth = mock.truth(reading.request_id, wait_s=5)
    assert truth is not None
    assert truth["outcome"] == "cut"
    assert truth["tokens_sent"] == 3


def test_a_stall_delays_the_token_it_names(mock: RunningMock) -> None:
    reading = fault(mock, CHAT, "stall=0.2@4")
    gaps = [b - a for a, b in itertools.pairwise(reading.token_arrivals_ns)]
    assert len(gaps) == 7
    assert gaps[2] >= 180_000_000  # between token 3 and token 4
    assert max(gaps[:2] + gaps[3:]) < 150_000_000
    assert reading.reader is not None
    assert reading.reader.result().done


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_malformed_json_is_a_protocol_error_in_one_event(mock: RunningMock, api: Api) -> None:
    reading = fault(mock, api, "malformed_json@2")
    assert reading.reader is not None
    assert len(reading.reader.errors) == 1
    assert isinstance(reading.reader.errors[0], DialectError)
    assert reading.reader.content_events == 7
    assert reading.reader.result().done


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_no_terminator_ends_the_body_cleanly_without_it(mock: RunningMock, api: Api) -> None:
    reading = fault(mock, api, "no_terminator")
    assert reading.failure is None
    assert api.terminator not in reading.body
    assert reading.reader is not None
    assert reading.reader.content_events == 8
    assert not reading.reader.result().done


@pytest.mark.parametrize(("spec", "newline"), [("crlf", b"\r\n"), ("cr", b"\r")])
@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_crlf_and_cr_line_ends_decode_to_the_same_stream(
    mock: RunningMock, api: Api, spec: str, newline: bytes
) -> None:
    reading = fault(mock, api, spec)
    assert newline * 2 in reading.body
    if spec == "cr":
        assert b"\n" not in reading.body
    assert reading.reader is not None
    assert reading.reader.result().text == clean(mock, api).reader.result().text  # type: ignore[union-attr]
    assert reading.reader.result().done


def test_keepalive_comments_are_interleaved_and_ignored(mock: RunningMock) -> None:
    reading = fault(mock, CHAT, "keepalive=5", headers={"X-Mock-Itl-Ms": "20"})
    assert reading.body.count(b": keep-alive\n\n") >= 10
    assert reading.reader is not None
    assert reading.reader.result().text == clean(mock, CHAT).reader.result().text  # type: ignore[union-attr]


def test_split_bytes_sends_every_byte_in_its_own_chunk(mock: RunningMock) -> None:
    reading = fault(mock, CHAT, "split_bytes")
    assert max(len(chunk) for chunk in reading.chunks) == 1
    assert len(reading.chunks) == len(reading.body)
    assert reading.reader is not None
    assert reading.reader.result().text == clean(mock, CHAT).reader.result().text  # type: ignore[union-attr]


def test_split_random_cuts_events_at_random_offsets(mock: RunningMock) -> None:
    reading = fault(mock, MESSAGES, "split_random")
    normal = clean(mock, MESSAGES)
    assert len(reading.chunks) > 2 * len(normal.chunks)
    assert any(not chunk.endswith(b"\n\n") for chunk in reading.chunks)  # cut inside events
    assert reading.reader is not None
    assert normal.reader is not None
    assert reading.reader.result().text == normal.reader.result().text


def test_slow_headers_delay_the_status_line(mock: RunningMock) -> None:
    reading = fault(mock, CHAT, "slow_headers=0.2")
    assert reading.headers_ns - reading.sent_ns >= 190_000_000
    truth = mock.truth(reading.request_id, wait_s=5)
    assert truth is not None
    assert truth["headers_ns"] - truth["received_ns"] >= 200_000_000
    assert reading.reader is not None
    assert reading.reader.result().done


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_error_event_mid_stream_arrives_in_the_dialect_shape(mock: RunningMock, api: Api) -> None:
    reading = fault(mock, api, "error_event@3")
    assert reading.reader is not None
    result = reading.reader.result()
    assert result.error is not None
    assert "error_event" in str(result.error)
    assert reading.reader.content_events == 2
    assert reading.reader.errors == []
    assert api.terminator not in reading.body


def test_faults_can_be_asked_for_in_the_body_mock_object(mock: RunningMock) -> None:
    body = {**CHAT.body, "mock": {"fault": ["no_terminator"], "tokens": 3}}
    reading = read(mock.base_url, CHAT.path, body, dialect=CHAT.dialect)
    assert reading.reader is not None
    assert reading.reader.content_events == 3
    assert not reading.reader.result().done


def test_configured_fault_rates_apply_to_every_request_at_rate_one(make_mock) -> None:
    from mock_server.config import FaultRates

    mock = make_mock(faults=FaultRates(no_terminator=1.0, crlf=1.0))
    reading = clean(mock, CHAT)
    assert b"\r\n\r\n" in reading.body
    assert b"[DONE]" not in reading.body
    truth = mock.truth(reading.request_id, wait_s=5)
    assert truth is not None
    assert set(truth["faults"]) == {"no_terminator", "crlf"}
