"""Rendering, pure: every dialect's frames decode with harness.dialects, however chunked."""

from __future__ import annotations

import itertools
import json

import pytest

from harness.dialects import StreamReader, get
from harness.sse import Decoder, encode
from mock_server.config import MockConfig, TimingProfile
from mock_server.overrides import Overrides, parse_overrides
from mock_server.plan import Ask, Endpoint, Plan, make_plan
from mock_server.render import Identity, render_body, render_stream
from mock_server.render.frames import CONTENT, REASONING
from mock_server.render.openai import ChatStream

CONFIG = MockConfig(timing=TimingProfile(ttft_ms=100, itl_ms=10, tokens=6))
IDENTITY = Identity(request_id="0-000001", response_id="ab12", created_s=1_700_000_000)
DIALECTS = {
    Endpoint.CHAT: "openai-chat",
    Endpoint.COMPLETIONS: "openai-completions",
    Endpoint.RESPONSES: "openai-responses",
    Endpoint.MESSAGES: "anthropic",
    Endpoint.TUTORIAL_CONTENT: "generic",
    Endpoint.TUTORIAL_EVENTS: "generic",
}


def make(endpoint: Endpoint, fault: str | None = None, **changes) -> Plan:
    values = {
        "endpoint": endpoint,
        "body": {"prompt": "one two"},
        "model": "mock-model",
        "include_usage": True,
        "prompt_texts": ("one two",),
    }
    overrides = parse_overrides({"X-Mock-Fault": fault}) if fault else Overrides()
    return make_plan(CONFIG, Ask(**{**values, **changes}), overrides)


def decode(body: bytes, endpoint: Endpoint, step: int | None = None) -> StreamReader:
    reader = StreamReader(get(DIALECTS[endpoint]))
    step = step or len(body)
    for start in range(0, len(body), step):
        reader.feed(body[start : start + step])
    reader.close()
    return reader


def body_of(plan: Plan, **kwargs) -> bytes:
    return b"".join(frame.data for frame in render_stream(plan, IDENTITY, **kwargs).frames)


@pytest.mark.parametrize("endpoint", list(DIALECTS), ids=[e.value for e in DIALECTS])
@pytest.mark.parametrize("step", [None, 1, 7])
def test_every_dialect_decodes_to_the_plan_whole_and_byte_by_byte(endpoint, step) -> None:
    plan = make(endpoint)
    reader = decode(body_of(plan), endpoint, step)
    result = reader.result()
    assert reader.errors == []
    assert result.text == plan.text
    assert result.done
    assert reader.content_events == plan.content_tokens


@pytest.mark.parametrize(
    "endpoint", [Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.MESSAGES], ids=["chat", "resp", "msg"]
)
def test_reasoning_streams_before_the_answer(endpoint) -> None:
    plan = make_plan(
        CONFIG.with_changes(reasoning_tokens=3),
        Ask(endpoint=endpoint, body={"x": 1}, model="m", prompt_texts=("x",)),
        Overrides(),
    )
    reader = StreamReader(get(DIALECTS[endpoint]))
    reads = reader.feed(body_of(plan))
    kinds = [d.kind.value for r in reads if r.token for d in r.deltas if d.text]
    assert kinds == ["reasoning"] * 3 + ["content"] * 6
    assert reader.result().reasoning == plan.reasoning_text


def test_chat_chunks_share_id_created_and_model_and_end_with_usage_then_done() -> None:
    plan = make(Endpoint.CHAT)
    events = Decoder().feed(body_of(plan))
    assert events[-1].data == "[DONE]"
    chunks = [json.loads(e.data) for e in events[:-1]]
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {
        ("chatcmpl-ab12", 1_700_000_000, "mock-model")
    }
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert all(c["usage"] is None for c in chunks[:-1])


def test_frames_are_ordered_in_time_and_carry_every_token() -> None:
    plan = make(Endpoint.MESSAGES, "keepalive=3")
    rendered = render_stream(plan, IDENTITY, ping_interval_ms=25)
    offsets = [f.offset_ns for f in rendered.frames]
    assert offsets == sorted(offsets)
    assert sum(f.tokens for f in rendered.frames) == plan.completion_tokens
    assert [f.offset_ns for f in rendered.frames if f.tokens] == list(plan.offsets_ns)
    body = b"".join(f.data for f in rendered.frames)
    assert body.count(b": keep-alive") == (plan.end_offset_ns - 1) // 3_000_000
    assert body.count(b"event: ping") == 1 + (plan.end_offset_ns - 1) // 25_000_000


def test_disconnect_after_cuts_the_frames_after_n_tokens() -> None:
    rendered = render_stream(make(Endpoint.CHAT, "disconnect_after=2"), IDENTITY)
    assert rendered.cut
    assert sum(f.tokens for f in rendered.frames) == 2
    assert b"[DONE]" not in b"".join(f.data for f in rendered.frames)


def test_a_disconnect_beyond_the_last_token_cuts_before_the_finish() -> None:
    rendered = render_stream(make(Endpoint.CHAT, "disconnect_after=50"), IDENTITY)
    assert rendered.cut
    assert sum(f.tokens for f in rendered.frames) == 6
    assert b'finish_reason":"stop' not in b"".join(f.data for f in rendered.frames)


def test_plain_text_ignores_malformed_json_and_has_no_error_channel() -> None:
    plan = make(Endpoint.TUTORIAL_TEXT, "malformed_json@2")
    assert body_of(plan).decode() == plan.text
    cut = make(Endpoint.TUTORIAL_TEXT, "error_event@3")
    assert body_of(cut).decode() == "".join(plan.content[:2])


@pytest.mark.parametrize(
    "endpoint", [Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.RESPONSES, Endpoint.MESSAGES]
)
def test_non_streaming_bodies_carry_the_same_text_and_usage(endpoint) -> None:
    plan = make(endpoint)
    body = render_body(plan, IDENTITY)
    text = json.dumps(body)
    assert plan.text in text
    usage = body["usage"]
    assert plan.completion_tokens in (usage.get("completion_tokens"), usage.get("output_tokens"))


@pytest.mark.parametrize("text", [" word", "Word.", ' "quoted" ', " ünï €", "back\\slash", ""])
@pytest.mark.parametrize("include_usage", [True, False])
def test_the_chat_token_fast_path_writes_the_same_bytes_as_the_encoder(text, include_usage):
    stream = ChatStream(make(Endpoint.CHAT, include_usage=include_usage, n=3), IDENTITY)
    for phase, choice in itertools.product((CONTENT, REASONING), range(3)):
        expected = encode(stream.token(phase, text, 1, choice).data)
        assert stream.token_bytes(phase, text, choice) == expected


def choice_chunks(plan: Plan) -> list[dict]:
    """The JSON chunks of a streamed OpenAI plan, checked to end with [DONE]."""
    events = Decoder().feed(body_of(plan))
    assert events[-1].data == "[DONE]"
    return [json.loads(event.data) for event in events[:-1]]


def test_chat_streams_n_choices_interleaved_each_with_its_finish() -> None:
    plan = make(Endpoint.CHAT, n=3)
    chunks = choice_chunks(plan)
    usage = chunks.pop()
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 18
    assert all(len(chunk["choices"]) == 1 for chunk in chunks)
    choices = [chunk["choices"][0] for chunk in chunks]
    assert [c["index"] for c in choices] == [0, 1, 2] * 8  # roles, 6 tokens, finishes
    assert all(c["delta"]["role"] == "assistant" for c in choices[:3])
    assert [c["finish_reason"] for c in choices[-3:]] == ["stop"] * 3
    assert all(c["finish_reason"] is None for c in choices[:-3])
    for index in range(3):
        text = "".join(c["delta"].get("content") or "" for c in choices[index::3])
        assert text == plan.choice(index).text
    assert len({plan.choice(index).text for index in range(3)}) == 3


def test_chat_streams_each_choice_its_own_reasoning_first() -> None:
    plan = make_plan(
        CONFIG.with_changes(reasoning_tokens=2),
        Ask(endpoint=Endpoint.CHAT, body={"x": 1}, model="m", prompt_texts=("x",), n=2),
        Overrides(),
    )
    choices = [chunk["choices"][0] for chunk in choice_chunks(plan)]
    reasoning = [c for c in choices if c["delta"].get("reasoning_content")]
    assert [c["index"] for c in reasoning] == [0, 1, 0, 1]
    for index in range(2):
        mine = "".join(c["delta"]["reasoning_content"] for c in reasoning if c["index"] == index)
        assert mine == plan.choice(index).reasoning_text


def test_completions_stream_n_choices_and_count_them_all() -> None:
    plan = make(Endpoint.COMPLETIONS, n=2)
    chunks = choice_chunks(plan)
    assert chunks.pop()["usage"]["completion_tokens"] == 12
    choices = [chunk["choices"][0] for chunk in chunks]
    assert [c["index"] for c in choices] == [0, 1] * 7
    assert [c["finish_reason"] for c in choices[-2:]] == ["stop", "stop"]
    for index in range(2):
        assert "".join(c["text"] for c in choices[index::2]) == plan.choice(index).text


@pytest.mark.parametrize("endpoint", [Endpoint.CHAT, Endpoint.COMPLETIONS])
def test_non_streaming_bodies_carry_every_choice(endpoint) -> None:
    plan = make(endpoint, n=3)
    body = render_body(plan, IDENTITY)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    texts = [c["message"]["content"] if "message" in c else c["text"] for c in body["choices"]]
    assert texts == [plan.choice(index).text for index in range(3)]
    assert body["usage"]["completion_tokens"] == 18


def test_a_disconnect_with_n_choices_counts_every_choices_events() -> None:
    rendered = render_stream(make(Endpoint.CHAT, "disconnect_after=5", n=2), IDENTITY)
    assert rendered.cut
    assert sum(f.tokens for f in rendered.frames) == 5
