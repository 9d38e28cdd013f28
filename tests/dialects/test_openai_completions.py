"""The openai-completions dialect, one rule per test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.dialects import Accumulator, Delta, DeltaKind, OpenAICompletions
from harness.errors import DialectError
from harness.sse import Event

COMPLETIONS = OpenAICompletions()


def chunk(*choices: dict[str, Any], **extra: Any) -> Event:
    payload = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}
    return Event(data=json.dumps({**payload, "choices": list(choices), **extra}))


def choice(text: Any = "", index: int = 0, finish_reason: str | None = None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def test_choice_text_is_content() -> None:
    assert COMPLETIONS.interpret(chunk(choice(" Hi"))) == (
        Delta(kind=DeltaKind.CONTENT, text=" Hi"),
    )


def test_empty_text_with_finish_reason_is_only_a_finish() -> None:
    deltas = COMPLETIONS.interpret(chunk(choice("", finish_reason="stop")))
    assert deltas == (Delta(kind=DeltaKind.FINISH, finish_reason="stop"),)
    assert Accumulator().add(deltas) is False


def test_empty_text_alone_is_ignorable() -> None:
    assert COMPLETIONS.interpret(chunk(choice(""))) == (Delta(kind=DeltaKind.IGNORABLE),)


def test_several_choices_keep_their_index() -> None:
    deltas = COMPLETIONS.interpret(chunk(choice("a", 0), choice("b", 1)))
    assert [(d.choice, d.text) for d in deltas] == [(0, "a"), (1, "b")]


def test_usage_chunk_with_empty_choices_gives_only_usage() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert COMPLETIONS.interpret(chunk(usage=usage)) == (Delta(kind=DeltaKind.USAGE, usage=usage),)


def test_done_sentinel_is_done() -> None:
    assert COMPLETIONS.interpret(Event(data="[DONE]")) == (Delta(kind=DeltaKind.DONE),)


def test_error_object_in_the_stream_is_an_error() -> None:
    error = {"message": "overloaded", "type": "server_error"}
    deltas = COMPLETIONS.interpret(Event(data=json.dumps({"error": error})))
    assert deltas == (Delta(kind=DeltaKind.ERROR, error=error),)


@pytest.mark.parametrize(
    "event",
    [
        Event(data='{"choices": "abc"}'),
        chunk(choice(text=42)),
        chunk(choice(text="a", finish_reason=7)),  # type: ignore[arg-type]
        Event(data="not json"),
    ],
    ids=["choices-not-a-list", "text-not-a-string", "finish-reason-not-a-string", "not-json"],
)
def test_wrong_json_or_wrong_types_are_dialect_errors(event: Event) -> None:
    with pytest.raises(DialectError):
        COMPLETIONS.interpret(event)
