"""The openai-responses dialect, one rule per test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.dialects import Accumulator, Delta, DeltaKind, OpenAIResponses
from harness.errors import DialectError
from harness.sse import Event

RESPONSES = OpenAIResponses()
IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)
USAGE = {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}


def event(kind: str, named: bool = True, **fields: Any) -> Event:
    data = json.dumps({"type": kind, "sequence_number": 1, **fields})
    return Event(kind if named else "message", data)


def response(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "output": [], **fields}


@pytest.mark.parametrize(
    "kind",
    [
        "response.created",
        "response.in_progress",
        "response.content_part.added",
        "response.output_text.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.some_future_event",
    ],
)
def test_lifecycle_done_added_and_unknown_events_are_ignorable(kind: str) -> None:
    assert RESPONSES.interpret(event(kind, response=response("in_progress"))) == IGNORABLE


@pytest.mark.parametrize(
    ("kind", "delta_kind"),
    [
        ("response.output_text.delta", DeltaKind.CONTENT),
        ("response.reasoning_summary_text.delta", DeltaKind.REASONING),
        ("response.reasoning_text.delta", DeltaKind.REASONING),
        ("response.refusal.delta", DeltaKind.REFUSAL),
    ],
)
def test_text_delta_events_give_their_kind_of_text(kind: str, delta_kind: DeltaKind) -> None:
    deltas = RESPONSES.interpret(event(kind, item_id="x", output_index=0, delta="abc"))
    assert deltas == (Delta(kind=delta_kind, text="abc"),)


def test_the_data_type_names_the_event_when_the_sse_event_name_is_missing() -> None:
    deltas = RESPONSES.interpret(event("response.output_text.delta", named=False, delta="a"))
    assert deltas == (Delta(kind=DeltaKind.CONTENT, text="a"),)


def test_the_sse_event_name_is_used_when_the_data_has_no_type() -> None:
    deltas = RESPONSES.interpret(Event("response.output_text.delta", '{"delta": "a"}'))
    assert deltas == (Delta(kind=DeltaKind.CONTENT, text="a"),)


def test_function_call_item_added_opens_a_tool_call_at_its_output_index() -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}
    deltas = RESPONSES.interpret(event("response.output_item.added", output_index=2, item=item))
    assert deltas == (Delta(kind=DeltaKind.TOOL_CALL, index=2, tool_id="call_1", tool_name="f"),)


def test_message_item_added_is_ignorable() -> None:
    item = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
    assert RESPONSES.interpret(event("response.output_item.added", item=item)) == IGNORABLE


def test_function_call_argument_deltas_concatenate_at_their_output_index() -> None:
    accumulator = Accumulator()
    item = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""}
    accumulator.add(
        RESPONSES.interpret(event("response.output_item.added", output_index=1, item=item))
    )
    for piece in ('{"a"', ": 1}"):
        accumulator.add(
            RESPONSES.interpret(
                event("response.function_call_arguments.delta", output_index=1, delta=piece)
            )
        )
    (call,) = accumulator.result().tool_calls
    assert (call.index, call.id, call.name, call.arguments) == (1, "call_1", "f", '{"a": 1}')


def test_completed_gives_usage_finish_with_the_status_and_done() -> None:
    deltas = RESPONSES.interpret(
        event("response.completed", response=response("completed", usage=USAGE))
    )
    assert deltas == (
        Delta(kind=DeltaKind.USAGE, usage=USAGE),
        Delta(kind=DeltaKind.FINISH, finish_reason="completed"),
        Delta(kind=DeltaKind.DONE),
    )


def test_completed_without_a_status_finishes_as_completed() -> None:
    deltas = RESPONSES.interpret(event("response.completed", response={"usage": None}))
    assert deltas == (
        Delta(kind=DeltaKind.FINISH, finish_reason="completed"),
        Delta(kind=DeltaKind.DONE),
    )


def test_incomplete_finishes_with_the_incomplete_reason() -> None:
    body = response("incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=USAGE)
    deltas = RESPONSES.interpret(event("response.incomplete", response=body))
    assert deltas == (
        Delta(kind=DeltaKind.USAGE, usage=USAGE),
        Delta(kind=DeltaKind.FINISH, finish_reason="max_output_tokens"),
        Delta(kind=DeltaKind.DONE),
    )


def test_failed_gives_the_response_error_and_done() -> None:
    error = {"code": "server_error", "message": "The model failed."}
    deltas = RESPONSES.interpret(event("response.failed", response=response("failed", error=error)))
    assert deltas == (Delta(kind=DeltaKind.ERROR, error=error), Delta(kind=DeltaKind.DONE))


def test_error_event_gives_its_code_message_and_param() -> None:
    deltas = RESPONSES.interpret(event("error", code="ERR", message="bad", param=None))
    assert deltas == (
        Delta(kind=DeltaKind.ERROR, error={"code": "ERR", "message": "bad", "param": None}),
    )


def test_a_done_sentinel_added_by_a_proxy_is_done() -> None:
    assert RESPONSES.interpret(Event(data="[DONE]")) == (Delta(kind=DeltaKind.DONE),)


def test_an_event_without_any_type_is_a_dialect_error() -> None:
    with pytest.raises(DialectError, match="no type"):
        RESPONSES.interpret(Event(data='{"delta": "a"}'))


@pytest.mark.parametrize(
    "bad",
    [
        event("response.output_text.delta", delta=5),
        event("response.function_call_arguments.delta", output_index="1", delta="x"),
        event("response.output_item.added", item="function_call"),
        event("response.completed", response={"usage": [1]}),
        Event("response.completed", "{"),
    ],
    ids=["delta-not-string", "index-not-int", "item-not-object", "usage-not-object", "bad-json"],
)
def test_wrong_json_or_wrong_types_are_dialect_errors(bad: Event) -> None:
    with pytest.raises(DialectError):
        RESPONSES.interpret(bad)
