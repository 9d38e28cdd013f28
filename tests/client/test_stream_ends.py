"""A stream's end is judged as the APIs' SDKs judge it, and every token counts: text,
reasoning and tool-call arguments. One rule for every entry point (``conclude``)."""

from __future__ import annotations

import json

import pytest

from harness.dialects import StreamReader, get
from harness.load.recorder import StreamRecorder, conclude, fail_status, parse_retry_after
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.sse import encode


def chat(delta: dict, finish: str | None = None, index: int = 0) -> bytes:
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return encode(json.dumps({"object": "chat.completion.chunk", "choices": [choice]}))


def anthropic(kind: str, **fields: object) -> bytes:
    return encode(json.dumps({"type": kind, **fields}), event=kind)


def recorded(
    *chunks: bytes, dialect: str = "auto", content_type: str = "text/event-stream"
) -> RequestRecord:
    record = RequestRecord(request_id="r", content_type=content_type, status=200)
    reader = StreamReader(None if dialect == "auto" else get(dialect), content_type=content_type)
    recorder = StreamRecorder(record, reader)
    for arrival_ns, chunk in enumerate(chunks, 1):
        recorder.feed(arrival_ns, chunk)
    recorder.close(len(chunks) + 1)
    conclude(record, reader, reader.result(), len(chunks) + 1)
    return record


DONE = encode("[DONE]")
USAGE = encode(json.dumps({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 2}}))


def test_an_openai_stream_that_ends_after_its_finish_reason_without_done_is_ok() -> None:
    record = recorded(chat({"content": "Hi"}), chat({"content": "!"}), chat({}, "stop"), USAGE)
    assert record.outcome is Outcome.OK
    assert record.done_sentinel is False
    assert record.output_tokens == 2


def test_an_openai_stream_cut_before_its_finish_reason_is_truncated() -> None:
    record = recorded(chat({"content": "Hi"}), chat({"content": "!"}))
    assert record.error_kind is ErrorKind.TRUNCATED
    assert "finish_reason" in (record.error_message or "")


def test_every_choice_needs_its_finish_reason() -> None:
    record = recorded(
        chat({"content": "a"}, index=0),
        chat({"content": "b"}, index=1),
        chat({}, "stop", index=0),
    )
    assert record.error_kind is ErrorKind.TRUNCATED


def test_an_anthropic_stream_without_message_stop_is_truncated() -> None:
    block = {"type": "text_delta", "text": "Hi"}
    record = recorded(
        anthropic("message_start", message={"id": "m", "usage": {"input_tokens": 1}}),
        anthropic("content_block_delta", index=0, delta=block),
        anthropic("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 1}),
    )
    assert record.error_kind is ErrorKind.TRUNCATED
    assert "message_stop" in (record.error_message or "")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b'{"choices": [{"message": {"content": "Hi"}}]}'),
     ("text/html; charset=utf-8", b"<html><body>Not here</body></html>")],
)  # fmt: skip
def test_a_2xx_that_is_no_event_stream_is_not_streamed(content_type: str, body: bytes) -> None:
    record = recorded(body, content_type=content_type)
    assert record.error_kind is ErrorKind.NOT_STREAMED
    assert content_type in (record.error_message or "")


def test_openai_tool_call_deltas_are_tokens() -> None:
    def call(arguments: str, **extra: object) -> bytes:
        return chat({"tool_calls": [{"index": 0, "function": {"arguments": arguments}, **extra}]})

    record = recorded(
        call("", id="call_1", type="function"),
        call('{"city":'),
        call(' "Paris"}'),
        chat({}, "tool_calls"),
        DONE,
    )
    assert record.outcome is Outcome.OK
    assert len(record.token_times_ns) == 2
    assert record.t_first_token_ns == 2  # the first piece of the arguments
    assert record.token_kinds == {"text": 0, "reasoning": 0, "tool_call": 2}


def test_anthropic_input_json_deltas_are_tokens() -> None:
    tool = {"type": "tool_use", "id": "t1", "name": "weather", "input": {}}
    piece = {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'}
    record = recorded(
        anthropic("message_start", message={"id": "m", "usage": {"input_tokens": 1}}),
        anthropic("content_block_start", index=0, content_block=tool),
        anthropic("content_block_delta", index=0, delta=piece),
        anthropic("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 5}),
        anthropic("message_stop"),
    )
    assert record.outcome is Outcome.OK
    assert record.token_kinds == {"text": 0, "reasoning": 0, "tool_call": 1}
    assert record.t_first_token_ns == 3


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, ErrorKind.RATE_LIMITED), (503, ErrorKind.RATE_LIMITED), (500, ErrorKind.HTTP_STATUS)],
)
def test_a_429_or_503_is_rate_limited_with_its_retry_after(status: int, kind: ErrorKind) -> None:
    record = RequestRecord(request_id="r", status=status, t_headers_ns=5)
    fail_status(record, b"slow down", {"retry-after": "2"}, (), now_epoch_s=0.0)
    assert record.error_kind is kind
    assert record.retry_after_s == (2.0 if kind is ErrorKind.RATE_LIMITED else None)
    assert record.t_end_ns == 5


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), (" 120 ", 120.0), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
     ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0), ("soon", None), ("-1", None), (None, None)],
)  # fmt: skip
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now) == seconds
