"""Bad requests get a 4xx in the dialect's shape, never a stream; the cap answers 429; CORS."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from mock_server.server import RunningMock

CHAT = "/v1/chat/completions"
GOOD_CHAT = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def post(mock: RunningMock, path: str, **kwargs) -> httpx.Response:
    return httpx.post(mock.base_url + path, timeout=10, **kwargs)


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "m", "stream": true}', "messages"),
        (b'{"model": "m", "messages": "hi"}', "messages"),
        (b'{"model": "m", "messages": [{"content": "hi"}]}', "messages[0].role"),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}', "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
    ],
)
def test_bad_chat_requests_get_400_in_openai_shape(
    mock: RunningMock, content: bytes, param: str | None
) -> None:
    reply = post(mock, CHAT, content=content, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]
    assert "x-mock-request-id" in reply.headers


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},  # no max_tokens
        {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},  # no model
        {"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]},
        {"model": "m", "max_tokens": 5, "messages": []},
    ],
)
def test_bad_anthropic_requests_get_400_in_anthropic_shape(mock: RunningMock, body) -> None:
    reply = post(mock, "/v1/messages", json=body)
    assert reply.status_code == 400
    payload = reply.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"model": "m"}),
        ("/v1/completions", {"model": "m", "prompt": 5}),
        ("/v1/responses", {"model": "m"}),
        ("/v1/responses", {"model": "m", "input": [7]}),
    ],
)
def test_bad_completions_and_responses_requests_get_400(mock: RunningMock, path, body) -> None:
    reply = post(mock, path, json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_a_body_over_the_size_limit_gets_413(make_mock) -> None:
    mock = make_mock(max_body_bytes=1024)
    big = {**GOOD_CHAT, "messages": [{"role": "user", "content": "word " * 1000}]}
    reply = post(mock, CHAT, json=big)
    assert reply.status_code == 413
    assert "limit of 1024 bytes" in reply.json()["error"]["message"]
    anthropic = post(mock, "/v1/messages", json={**big, "max_tokens": 5})
    assert anthropic.status_code == 413
    assert anthropic.json()["error"]["type"] == "request_too_large"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Mock-Fault", "explode"),
        ("X-Mock-Fault", "stall=abc@2"),
        ("X-Mock-Fault", "disconnect_after"),
        ("X-Mock-Tokens", "-3"),
        ("X-Mock-Ttft-Ms", "soon"),
        ("X-Mock-Itl-Ms", "1e12"),
    ],
)
def test_invalid_overrides_get_400_naming_the_header(mock: RunningMock, header, value) -> None:
    reply = post(mock, CHAT, json=GOOD_CHAT, headers={header: value})
    assert reply.status_code == 400
    assert header in reply.json()["error"]["message"]
    assert reply.json()["error"]["param"] == header


def test_an_unknown_key_in_the_body_mock_object_gets_400(mock: RunningMock) -> None:
    reply = post(mock, CHAT, json={**GOOD_CHAT, "mock": {"speed": 3}})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "mock.speed"


def test_the_concurrency_cap_answers_429_with_retry_after(make_mock) -> None:
    mock = make_mock(max_concurrency=1, retry_after_s=2)
    headers = {"X-Mock-Tokens": "100", "X-Mock-Itl-Ms": "20"}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", mock.base_url + CHAT, json=GOOD_CHAT, headers=headers) as first,
    ):
        assert first.status_code == 200  # in progress: its headers are here
        second = post(mock, CHAT, json=GOOD_CHAT)
        anthropic = post(
            mock,
            "/v1/messages",
            json={**GOOD_CHAT, "max_tokens": 5},
            headers={"X-Mock-Tokens": "1"},
        )
    assert second.status_code == 429
    assert second.headers["retry-after"] == "2"
    assert second.json()["error"]["code"] == "rate_limit_exceeded"
    assert anthropic.status_code == 429
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    assert mock.metrics_snapshot()["counters"]["rejected"] == 2


def test_cors_headers_are_on_streams_and_errors(make_mock) -> None:
    mock = make_mock(cors_origin="http://app.test")
    stream = post(mock, CHAT, json=GOOD_CHAT)
    error = post(mock, CHAT, content=b"{")
    for reply in (stream, error):
        assert reply.headers["access-control-allow-origin"] == "http://app.test"
        assert "x-mock-request-id" in reply.headers["access-control-expose-headers"]
        assert reply.headers["vary"] == "Origin"


@pytest.mark.parametrize("path", [CHAT, "/v1/messages", "/v1/responses", "/tutorial/events"])
def test_preflight_options_is_answered_for_post_endpoints(mock: RunningMock, path) -> None:
    reply = httpx.options(
        mock.base_url + path,
        headers={
            "Origin": "http://other.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-mock-fault",
        },
    )
    assert reply.status_code == 204
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert reply.headers["access-control-allow-headers"] == "content-type, x-mock-fault"


def test_health_and_models_answer(mock: RunningMock) -> None:
    health = httpx.get(mock.base_url + "/healthz").json()
    assert health["status"] == "ok"
    models = httpx.get(mock.base_url + "/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["mock-model"]


def requests_counted(mock: RunningMock, path: str, status: int) -> int:
    counted = mock.metrics_snapshot()["requests"]
    return sum(n for p, s, n in counted if (p, s) == (path, status))


@pytest.mark.parametrize(
    ("path", "content", "param"),
    [
        (CHAT, rb'{"messages": [{"role": "user", "content": "hi \ud800"}]}', "messages[0].content"),
        (CHAT, rb'{"model": "\udc00", "messages": [{"role": "user", "content": "x"}]}', "model"),
        (CHAT, rb'{"messages": [{"role": "user", "content": "x"}], "\ud800": 1}', None),
        (CHAT, rb'{"messages": [{"role": "user", "content": "x"}], "user": ["\udfff"]}', "user[0]"),
        ("/v1/completions", rb'{"prompt": "a \ud83d b"}', "prompt"),
        ("/v1/responses", rb'{"input": "x", "instructions": "\ud800"}', "instructions"),
    ],
)
def test_a_lone_surrogate_gets_400_and_is_counted(make_mock, path, content, param) -> None:
    mock = make_mock()
    reply = post(mock, path, content=content, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "surrogate" in error["message"]
    assert requests_counted(mock, path, 400) == 1
    assert requests_counted(mock, path, 500) == 0


def test_a_lone_surrogate_in_an_anthropic_or_tutorial_body_gets_400_in_their_shapes(
    mock: RunningMock,
) -> None:
    content = (
        rb'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "\ud800"}]}'
    )
    anthropic = post(mock, "/v1/messages", content=content)
    assert anthropic.status_code == 400
    assert anthropic.json()["error"]["type"] == "invalid_request_error"
    assert "messages[0].content" in anthropic.json()["error"]["message"]
    tutorial = post(mock, "/tutorial/content", content=rb'{"prompt": "\udc80"}')
    assert tutorial.status_code == 400
    assert "surrogate" in tutorial.json()["detail"]


def test_paired_surrogate_escapes_and_utf8_text_are_fine(mock: RunningMock) -> None:
    text = rb"\ud83d\ude00 \u00e9 \\ud800 " + "café".encode()
    content = b'{"messages": [{"role": "user", "content": "' + text + b'"}]}'
    reply = post(mock, CHAT, content=content)
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"]


def test_a_body_that_is_not_utf8_gets_400(mock: RunningMock) -> None:
    encoded_surrogate = b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}'
    for content in (encoded_surrogate, b'{"prompt": "\xff"}'):
        reply = post(mock, "/v1/completions", content=content)
        assert reply.status_code == 400
        assert "UTF-8" in reply.json()["error"]["message"]


def test_an_unhandled_error_is_counted_as_a_500(make_mock, monkeypatch) -> None:
    mock = make_mock()

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("mock_server.handlers.make_plan", broken)
    reply = post(mock, CHAT, json=GOOD_CHAT)
    assert reply.status_code == 500
    assert requests_counted(mock, CHAT, 500) == 1


def test_a_preflight_echoes_only_a_valid_list_of_header_names(mock: RunningMock) -> None:
    def preflight(asked: bytes) -> bytes:
        with socket.create_connection((mock.host, mock.port), timeout=10) as conn:
            conn.sendall(
                b"OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n"
                b"Access-Control-Request-Headers: " + asked + b"\r\n\r\n"
            )
            return b"".join(iter(lambda: conn.recv(65536), b""))

    good = preflight(b"content-type,x-mock-fault")
    assert good.startswith(b"HTTP/1.1 204")
    assert b"Access-Control-Allow-Headers: content-type,x-mock-fault\r\n" in good
    for hostile in (b"\xed\xa0\x80", b"x-a\xff", b"a b", b"x;y"):
        reply = preflight(hostile)
        assert reply.startswith(b"HTTP/1.1 204"), reply
        assert b"Access-Control-Allow-Headers: Content-Type, Authorization\r\n" in reply


CONTROL_PATHS = ["/metrics", "/healthz", "/v1/models", "/mock/requests/{id}", "/no/such/path"]


def test_cors_stays_open_on_the_generation_routes_only(make_mock) -> None:
    mock = make_mock()
    stream = post(mock, CHAT, json=GOOD_CHAT)
    assert stream.headers["access-control-allow-origin"] == "*"
    tutorial = httpx.get(mock.base_url + "/tutorial/events", params={"prompt": "hi"})
    assert tutorial.headers["access-control-allow-origin"] == "*"
    request_id = stream.headers["x-mock-request-id"]
    for path in CONTROL_PATHS:
        reply = httpx.get(mock.base_url + path.format(id=request_id))
        assert reply.status_code in (200, 404), path
        assert "access-control-allow-origin" not in reply.headers, path
        assert "access-control-expose-headers" not in reply.headers, path


def test_a_control_origin_opens_the_other_routes_to_that_origin(make_mock) -> None:
    mock = make_mock(control_cors_origin="http://dash.test")
    request_id = post(mock, CHAT, json=GOOD_CHAT).headers["x-mock-request-id"]
    for path in CONTROL_PATHS[:4]:
        reply = httpx.get(mock.base_url + path.format(id=request_id))
        assert reply.status_code == 200, path
        assert reply.headers["access-control-allow-origin"] == "http://dash.test", path
        assert reply.headers["vary"] == "Origin"
    assert post(mock, CHAT, json=GOOD_CHAT).headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", [CHAT, "/v1/completions"])
@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "at least 1"),
        (-1, "at least 1"),
        (17, "at most 16"),
        (10**9, "at most 16"),
        (2.0, "an integer"),
        ("3", "an integer"),
        (True, "an integer"),
        ([2], "an integer"),
    ],
)
def test_a_bad_n_gets_400_naming_it(mock: RunningMock, path, n, words) -> None:
    body = {"prompt": "hi", "messages": [{"role": "user", "content": "hi"}], "n": n}
    reply = post(mock, path, json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "n"
    assert words in error["message"]


def test_the_limit_of_choices_is_configurable(make_mock) -> None:
    mock = make_mock(max_choices=2)
    reply = post(mock, CHAT, json={**GOOD_CHAT, "n": 3})
    assert reply.status_code == 400
    assert "at most 2" in reply.json()["error"]["message"]
    assert post(mock, CHAT, json={**GOOD_CHAT, "n": 2}).status_code == 200


def test_n_choices_stream_through_the_server_and_are_counted(make_mock) -> None:
    mock = make_mock()
    body = {**GOOD_CHAT, "n": 3, "stream_options": {"include_usage": True}}
    reply = post(mock, CHAT, json=body, headers={"X-Mock-Tokens": "4"})
    assert reply.status_code == 200
    events = [line[6:] for line in reply.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    assert chunks[-1]["usage"]["completion_tokens"] == 12
    choices = [chunk["choices"][0] for chunk in chunks[:-1]]
    assert [c["index"] for c in choices] == [0, 1, 2] * 6
    assert [c["finish_reason"] for c in choices[-3:]] == ["stop"] * 3
    truth = mock.truth(reply.headers["x-mock-request-id"], wait_s=5)
    assert truth is not None
    assert (truth["tokens_planned"], truth["tokens_sent"]) == (12, 12)
    assert len(truth["token_write_ns"]) == 12
    assert mock.metrics_snapshot()["counters"]["tokens_sent"] == 12
    plain = post(mock, CHAT, json={**GOOD_CHAT, "stream": False, "n": None})
    assert len(plain.json()["choices"]) == 1  # null is the default, one choice
