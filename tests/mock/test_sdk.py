"""The official OpenAI and Anthropic SDKs stream from the mock and rebuild its exact text."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest

from mock_server.plan import Endpoint
from mock_server.server import RunningMock
from tests.mock.conftest import FAST
from tests.mock.streams import expected_plan

MESSAGES = [{"role": "user", "content": "Tell me a short story about a lighthouse"}]
PROMPT_TOKENS = 8  # the words of MESSAGES' text


def openai_client(mock: RunningMock) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.base_url + "/v1", api_key="test", max_retries=0)


def openai_async(mock: RunningMock) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=mock.base_url + "/v1", api_key="test", max_retries=0)


def anthropic_client(mock: RunningMock) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock.base_url, api_key="test", max_retries=0)


def anthropic_async(mock: RunningMock) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=mock.base_url, api_key="test", max_retries=0)


def chat_expected(max_tokens: int | None = None) -> tuple[str, str]:
    body: dict = {"model": "gpt-test", "messages": MESSAGES}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    plan = expected_plan(FAST, Endpoint.CHAT, body)
    return plan.text, plan.finish


def test_openai_sync_chat_stream_rebuilds_text_usage_and_finish(mock: RunningMock) -> None:
    text, finish = chat_expected()
    stream = openai_client(mock).chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    parts, finishes, usages, ids = [], [], [], set()
    for chunk in stream:
        ids.add((chunk.id, chunk.created, chunk.model))
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finishes.append(chunk.choices[0].finish_reason)
        if chunk.usage is not None:
            usages.append(chunk.usage)
    assert "".join(parts) == text
    assert finishes[-1] == finish == "stop"
    assert len(ids) == 1  # the same id, created and model on every chunk
    (usage,) = usages
    assert usage.completion_tokens == FAST.timing.tokens
    assert usage.prompt_tokens == PROMPT_TOKENS
    assert usage.total_tokens == PROMPT_TOKENS + FAST.timing.tokens


def test_openai_async_chat_stream_cut_by_max_tokens_finishes_with_length(
    mock: RunningMock,
) -> None:
    text, finish = chat_expected(max_tokens=5)

    async def run() -> tuple[str, str | None]:
        client = openai_async(mock)
        stream = await client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, max_tokens=5, stream=True
        )
        parts, reason = [], None
        async for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                reason = chunk.choices[0].finish_reason or reason
        await client.close()
        return "".join(parts), reason

    got, reason = asyncio.run(run())
    assert got == text
    assert reason == finish == "length"
    assert len(text.split()) == 5


def test_openai_non_streaming_chat_gives_the_streamed_text(mock: RunningMock) -> None:
    text, _ = chat_expected()
    reply = openai_client(mock).chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == text
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (PROMPT_TOKENS, 8)


def test_openai_chat_reasoning_content_comes_before_the_answer(mock: RunningMock) -> None:
    stream = openai_client(mock).chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Mock-Reasoning-Tokens": "4"},
    )
    phases, usage = [], None
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            if getattr(delta, "reasoning_content", None):
                phases.append("reasoning")
            if delta.content:
                phases.append("content")
        usage = chunk.usage or usage
    assert phases == ["reasoning"] * 4 + ["content"] * 8
    assert usage is not None
    assert usage.completion_tokens == 12
    assert usage.completion_tokens_details.reasoning_tokens == 4


@pytest.mark.parametrize("streamed", [True, False])
def test_openai_legacy_completions_give_the_deterministic_text(
    mock: RunningMock, streamed: bool
) -> None:
    body = {"model": "gpt-test", "prompt": "Once upon a time", "max_tokens": 6}
    plan = expected_plan(FAST, Endpoint.COMPLETIONS, body)
    client = openai_client(mock)
    if streamed:
        chunks = list(
            client.completions.create(**body, stream=True, stream_options={"include_usage": True})
        )
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        reason = next(c.choices[0].finish_reason for c in reversed(chunks) if c.choices)
        usage = chunks[-1].usage
    else:
        reply = client.completions.create(**body)
        text, reason, usage = reply.choices[0].text, reply.choices[0].finish_reason, reply.usage
    assert text == plan.text
    assert reason == "length"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 6)


def test_openai_responses_stream_sync_rebuilds_the_response(mock: RunningMock) -> None:
    body = {"model": "gpt-test", "input": "Write a haiku about rivers"}
    plan = expected_plan(FAST, Endpoint.RESPONSES, body)
    with openai_client(mock).responses.stream(**body) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == plan.text == final.output_text
    assert final.status == "completed"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 8)


def test_openai_responses_async_stream_and_non_streaming_agree(mock: RunningMock) -> None:
    body = {"model": "gpt-test", "input": "Write a haiku about rivers", "max_output_tokens": 4}
    plan = expected_plan(FAST, Endpoint.RESPONSES, body)

    async def run() -> tuple[str, str, str]:
        client = openai_async(mock)
        stream = await client.responses.create(**body, stream=True)
        text, status = "", ""
        async for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type in ("response.completed", "response.incomplete"):
                status = event.response.status
        reply = await client.responses.create(**body)
        await client.close()
        return text, status, reply.output_text

    text, status, non_streamed = asyncio.run(run())
    assert text == non_streamed == plan.text
    assert status == "incomplete"


def test_anthropic_sync_stream_rebuilds_text_usage_and_stop_reason(mock: RunningMock) -> None:
    body = {"model": "claude-test", "max_tokens": 6, "messages": MESSAGES}
    plan = expected_plan(FAST, Endpoint.MESSAGES, body)
    with anthropic_client(mock).messages.stream(**body) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == plan.text
    assert final.content[0].text == plan.text
    assert final.stop_reason == "max_tokens"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (PROMPT_TOKENS, 6)


def test_anthropic_async_stream_with_thinking_and_override_ends_turn(mock: RunningMock) -> None:
    body = {"model": "claude-test", "max_tokens": 100, "messages": MESSAGES}
    headers = {"X-Mock-Tokens": "5", "X-Mock-Reasoning-Tokens": "3"}

    async def run() -> anthropic.types.Message:
        client = anthropic_async(mock)
        async with client.messages.stream(**body, extra_headers=headers) as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_message()
        await client.close()
        return final

    final = asyncio.run(run())
    thinking, answer = final.content
    assert thinking.type == "thinking"
    assert len(thinking.thinking.split()) == 3
    assert thinking.signature
    assert answer.type == "text"
    assert len(answer.text.split()) == 5
    assert final.stop_reason == "end_turn"  # T=5 < M=100: not cut by the limit
    assert final.usage.output_tokens == 8


def test_anthropic_non_streaming_message_gives_the_streamed_text(mock: RunningMock) -> None:
    body = {"model": "claude-test", "max_tokens": 6, "messages": MESSAGES}
    plan = expected_plan(FAST, Endpoint.MESSAGES, body)
    reply = anthropic_client(mock).messages.create(**body)
    assert reply.content[0].text == plan.text
    assert reply.stop_reason == "max_tokens"
    assert reply.usage.output_tokens == 6


def test_both_sdks_list_the_configured_models(mock: RunningMock) -> None:
    assert [m.id for m in openai_client(mock).models.list()] == list(FAST.models)
    assert [m.id for m in anthropic_client(mock).models.list()] == list(FAST.models)


def test_openai_responses_stream_carries_a_reasoning_item_first(mock: RunningMock) -> None:
    headers = {"X-Mock-Reasoning-Tokens": "3"}
    with openai_client(mock).responses.stream(
        model="gpt-test", input="Why is the sky blue", extra_headers=headers
    ) as stream:
        summary = "".join(
            e.delta for e in stream if e.type == "response.reasoning_summary_text.delta"
        )
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == summary
    assert len(summary.split()) == 3
    assert final.usage is not None
    assert final.usage.output_tokens_details.reasoning_tokens == 3


def test_sdks_see_http_faults_as_their_own_error_types(mock: RunningMock) -> None:
    client = openai_client(mock)
    cases = [
        ("http_429", openai.RateLimitError),
        ("http_500", openai.InternalServerError),
        ("http_503", openai.InternalServerError),
    ]
    for spec, kind in cases:
        with pytest.raises(kind) as caught:
            client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, extra_headers={"X-Mock-Fault": spec}
            )
        assert caught.value.status_code == int(spec[5:])
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client(mock).messages.create(
            model="claude-test",
            max_tokens=5,
            messages=MESSAGES,
            extra_headers={"X-Mock-Fault": "http_429"},
        )


def test_sdks_raise_on_a_mid_stream_error_event(mock: RunningMock) -> None:
    stream = openai_client(mock).chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        extra_headers={"X-Mock-Fault": "error_event@3"},
    )
    received: list[str] = []

    def consume() -> None:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    with pytest.raises(openai.APIError, match="error_event"):
        consume()
    assert len(received) == 2
    with (
        pytest.raises(anthropic.APIStatusError, match="error_event"),
        anthropic_client(mock).messages.stream(
            model="claude-test",
            max_tokens=8,
            messages=MESSAGES,
            extra_headers={"X-Mock-Fault": "error_event@3"},
        ) as events,
    ):
        for _ in events:
            pass


def test_openai_sdk_reports_a_cut_stream_as_a_connection_error(mock: RunningMock) -> None:
    stream = openai_client(mock).chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        extra_headers={"X-Mock-Fault": "disconnect_after=2"},
    )
    with pytest.raises(openai.APIConnectionError):
        for _ in stream:
            pass
