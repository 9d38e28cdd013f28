"""The anthropic dialect, one rule per test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.dialects import Accumulator, Anthropic, Delta, DeltaKind
from harness.errors import DialectError
from harness.sse import Event

ANTHROPIC = Anthropic()
IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)


def event(kind: str, named: bool = True, **fields: Any) -> Event:
    return Event(kind if named else "message", json.dumps({"type": kind, **fields}))


def block_delta(index: int, **delta: Any) -> Event:
    return event("content_block_delta", index=index, delta=delta)


def message_start(usage: dict[str, Any]) -> Event:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    return event("message_start", message={**message, "usage": usage})


def test_message_start_gives_the_input_usage_but_not_its_placeholder_output_count() -> None:
    usage = {"input_tokens": 25, "output_tokens": 1}
    assert ANTHROPIC.interpret(message_start(usage)) == (
        Delta(kind=DeltaKind.USAGE, usage={"input_tokens": 25}),
    )


def test_a_stream_cut_by_an_error_reports_no_output_count_rather_than_the_placeholder() -> None:
    accumulator = Accumulator()
    accumulator.add(ANTHROPIC.interpret(message_start({"input_tokens": 9, "output_tokens": 1})))
    accumulator.add(ANTHROPIC.interpret(block_delta(0, type="text_delta", text="Hi")))
    error = {"type": "overloaded_error", "message": "Overloaded"}
    accumulator.add(ANTHROPIC.interpret(event("error", error=error)))
    assert accumulator.usage == {"input_tokens": 9}
    assert accumulator.error == error


def test_message_delta_usage_updates_message_start_usage_key_by_key() -> None:
    accumulator = Accumulator()
    start = {"input_tokens": 472, "cache_read_input_tokens": 0, "output_tokens": 2}
    accumulator.add(ANTHROPIC.interpret(message_start(start)))
    delta = event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 89})
    accumulator.add(ANTHROPIC.interpret(delta))
    assert accumulator.result().usage == {
        "input_tokens": 472,
        "cache_read_input_tokens": 0,
        "output_tokens": 89,
    }


def test_null_counts_in_message_delta_usage_keep_the_earlier_counts() -> None:
    accumulator = Accumulator()
    accumulator.add(ANTHROPIC.interpret(message_start({"input_tokens": 9, "output_tokens": 1})))
    delta = event("message_delta", delta={}, usage={"input_tokens": None, "output_tokens": 4})
    accumulator.add(ANTHROPIC.interpret(delta))
    assert accumulator.result().usage == {"input_tokens": 9, "output_tokens": 4}


def test_message_delta_gives_finish_with_the_stop_reason_and_usage() -> None:
    payload = {"delta": {"stop_reason": "max_tokens", "stop_sequence": None}}
    deltas = ANTHROPIC.interpret(event("message_delta", **payload, usage={"output_tokens": 3}))
    assert deltas == (
        Delta(kind=DeltaKind.FINISH, finish_reason="max_tokens"),
        Delta(kind=DeltaKind.USAGE, usage={"output_tokens": 3}),
    )


def test_tool_use_block_start_opens_a_tool_call_at_the_block_index() -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    deltas = ANTHROPIC.interpret(event("content_block_start", index=1, content_block=block))
    assert deltas == (
        Delta(kind=DeltaKind.TOOL_CALL, index=1, tool_id="toolu_1", tool_name="get_weather"),
    )


def test_input_json_deltas_concatenate_into_the_tool_arguments() -> None:
    accumulator = Accumulator()
    block = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    accumulator.add(ANTHROPIC.interpret(event("content_block_start", index=2, content_block=block)))
    for piece in ("", '{"city":', ' "Oslo"}'):
        accumulator.add(
            ANTHROPIC.interpret(block_delta(2, type="input_json_delta", partial_json=piece))
        )
    (call,) = accumulator.result().tool_calls
    assert (call.index, call.id, call.name, call.arguments) == (
        2,
        "toolu_1",
        "f",
        '{"city": "Oslo"}',
    )


def test_empty_text_and_thinking_block_starts_are_ignorable() -> None:
    for block in ({"type": "text", "text": ""}, {"type": "thinking", "thinking": ""}):
        assert (
            ANTHROPIC.interpret(event("content_block_start", index=0, content_block=block))
            == IGNORABLE
        )


def test_a_block_start_that_carries_initial_text_gives_that_text() -> None:
    block = {"type": "text", "text": "Hi"}
    deltas = ANTHROPIC.interpret(event("content_block_start", index=0, content_block=block))
    assert deltas == (Delta(kind=DeltaKind.CONTENT, text="Hi"),)


def test_text_delta_is_content() -> None:
    deltas = ANTHROPIC.interpret(block_delta(0, type="text_delta", text="Hello"))
    assert deltas == (Delta(kind=DeltaKind.CONTENT, text="Hello"),)


def test_thinking_delta_is_reasoning() -> None:
    deltas = ANTHROPIC.interpret(block_delta(0, type="thinking_delta", thinking="Hmm"))
    assert deltas == (Delta(kind=DeltaKind.REASONING, text="Hmm"),)


@pytest.mark.parametrize(
    "delta",
    [
        {"type": "signature_delta", "signature": "EqQBCgIYAhIM"},
        {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "x"}},
        {"type": "some_future_delta", "value": 1},
    ],
    ids=lambda d: d["type"],
)
def test_signature_citation_and_unknown_deltas_are_ignorable(delta: dict[str, Any]) -> None:
    assert ANTHROPIC.interpret(block_delta(0, **delta)) == IGNORABLE


@pytest.mark.parametrize("kind", ["ping", "content_block_stop", "some_future_event"])
def test_ping_block_stop_and_unknown_events_are_ignorable(kind: str) -> None:
    assert ANTHROPIC.interpret(event(kind, index=0)) == IGNORABLE


def test_message_stop_is_done() -> None:
    assert ANTHROPIC.interpret(event("message_stop")) == (Delta(kind=DeltaKind.DONE),)


def test_error_event_gives_its_error_object() -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    assert ANTHROPIC.interpret(event("error", error=error)) == (
        Delta(kind=DeltaKind.ERROR, error=error),
    )


def test_the_type_falls_back_to_the_sse_event_name() -> None:
    deltas = ANTHROPIC.interpret(
        Event("content_block_delta", '{"index": 0, "delta": {"type": "text_delta", "text": "a"}}')
    )
    assert deltas == (Delta(kind=DeltaKind.CONTENT, text="a"),)


def test_the_data_type_wins_over_the_sse_event_name() -> None:
    deltas = ANTHROPIC.interpret(Event("ping", '{"type": "message_stop"}'))
    assert deltas == (Delta(kind=DeltaKind.DONE),)


def test_an_event_without_any_type_is_a_dialect_error() -> None:
    with pytest.raises(DialectError, match="no type"):
        ANTHROPIC.interpret(Event(data='{"index": 0}'))


@pytest.mark.parametrize(
    "bad",
    [
        block_delta(0, type="text_delta", text=1),
        block_delta(0, type="input_json_delta", partial_json={"a": 1}),
        event("content_block_delta", index="0", delta={"type": "text_delta", "text": "a"}),
        event("content_block_start", index=0, content_block="tool_use"),
        event("message_delta", delta={"stop_reason": 3}),
        Event("message_start", "{not json"),
    ],
    ids=["text", "partial-json", "index", "content-block", "stop-reason", "bad-json"],
)
def test_wrong_json_or_wrong_types_are_dialect_errors(bad: Event) -> None:
    with pytest.raises(DialectError):
        ANTHROPIC.interpret(bad)
