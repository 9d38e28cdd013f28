"""The generic dialect (tutorial formats), one rule per test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.dialects import Accumulator, Delta, DeltaKind, GenericJSON
from harness.dialects.generic_json import parse_pointer
from harness.errors import ConfigError, DialectError
from harness.sse import Event

GENERIC = GenericJSON()
IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)
DONE = Delta(kind=DeltaKind.DONE)


def content(text: str) -> Delta:
    return Delta(kind=DeltaKind.CONTENT, text=text)


def message(payload: Any, name: str = "message") -> Event:
    return Event(name, json.dumps(payload))


@pytest.mark.parametrize("key", ["content", "text", "delta", "token"])
def test_common_text_field_names_are_found_without_a_pointer(key: str) -> None:
    assert GENERIC.interpret(message({key: "Hi"})) == (content("Hi"),)


@pytest.mark.parametrize("inner", ["content", "text"])
def test_nested_delta_text_is_found_without_a_pointer(inner: str) -> None:
    assert GENERIC.interpret(message({"delta": {inner: "Hi"}})) == (content("Hi"),)


def test_data_that_is_not_json_is_itself_the_text() -> None:
    assert GENERIC.interpret(Event(data=" world")) == (content(" world"),)


def test_a_json_string_is_text() -> None:
    assert GENERIC.interpret(Event(data='"quoted token"')) == (content("quoted token"),)


def test_a_bare_number_sent_as_a_raw_token_is_its_text() -> None:
    assert GENERIC.interpret(Event(data="42")) == (content("42"),)


def test_an_object_without_a_text_field_is_ignorable() -> None:
    assert GENERIC.interpret(message({"count": 3})) == IGNORABLE


def test_empty_text_is_not_a_token() -> None:
    deltas = GENERIC.interpret(message({"content": ""}))
    assert deltas == IGNORABLE
    assert Accumulator().add(deltas) is False


def test_data_equal_to_the_terminator_is_done() -> None:
    assert GENERIC.interpret(Event(data="[DONE]")) == (DONE,)


def test_a_custom_terminator_is_done_and_the_default_one_is_then_text() -> None:
    dialect = GenericJSON(terminator="<END>")
    assert dialect.interpret(Event(data="<END>")) == (DONE,)
    assert dialect.interpret(Event(data="[DONE]")) == (content("[DONE]"),)


def test_no_terminator_means_no_data_ends_the_stream() -> None:
    assert GenericJSON(terminator=None).interpret(Event(data="[DONE]")) == (content("[DONE]"),)


def test_a_pointer_chooses_the_text_field() -> None:
    dialect = GenericJSON(pointer="/choices/0/text")
    event = message({"choices": [{"text": "abc"}], "content": "not this"})
    assert dialect.interpret(event) == (content("abc"),)


def test_a_number_chosen_by_the_pointer_becomes_its_str() -> None:
    assert GenericJSON(pointer="/n").interpret(message({"n": 7})) == (content("7"),)


def test_a_pointer_that_finds_nothing_is_ignorable() -> None:
    dialect = GenericJSON(pointer="/choices/1/text")
    assert dialect.interpret(message({"choices": [{"text": "a"}]})) == IGNORABLE


def test_a_pointer_to_an_object_is_a_dialect_error() -> None:
    with pytest.raises(DialectError, match="container"):
        GenericJSON(pointer="/delta").interpret(message({"delta": {"x": 1}}))


def test_pointer_tokens_are_unescaped_per_rfc_6901() -> None:
    assert parse_pointer("/a~1b/c~0d/0") == ("a/b", "c~d", "0")
    dialect = GenericJSON(pointer="/a~1b")
    assert dialect.interpret(message({"a/b": "x"})) == (content("x"),)


def test_the_empty_pointer_is_the_whole_document() -> None:
    assert parse_pointer("") == ()
    assert GenericJSON(pointer="").interpret(Event(data='"whole"')) == (content("whole"),)


@pytest.mark.parametrize("pointer", ["content", "/a~2b", "/a~", "choices/0"])
def test_an_invalid_pointer_is_a_config_error_naming_the_pointer(pointer: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GenericJSON(pointer=pointer)
    assert caught.value.field == "pointer"


def test_an_empty_terminator_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        GenericJSON(terminator="")
    assert caught.value.field == "terminator"


@pytest.mark.parametrize(
    "name", ["content", "delta", "token", "chunk", "message", "text_delta", "content-chunk"]
)
def test_content_like_event_names_carry_text(name: str) -> None:
    assert GENERIC.interpret(message({"content": "a"}, name)) == (content("a"),)


@pytest.mark.parametrize("name", ["start", "complete", "done", "end", "error", "stream-end"])
def test_control_events_text_is_never_appended(name: str) -> None:
    deltas = GENERIC.interpret(message({"content": "not text", "text": "nor this"}, name))
    assert all(d.kind is not DeltaKind.CONTENT for d in deltas)


@pytest.mark.parametrize("name", ["ping", "status", "metadata"])
def test_other_named_events_carry_no_text(name: str) -> None:
    assert GENERIC.interpret(message({"content": "Searching..."}, name)) == IGNORABLE


@pytest.mark.parametrize("name", ["complete", "done", "end"])
def test_complete_done_and_end_events_are_done(name: str) -> None:
    assert GENERIC.interpret(message({}, name))[-1] == DONE


def test_a_start_event_is_not_done() -> None:
    assert GENERIC.interpret(message({"id": "abc"}, "start")) == IGNORABLE


def test_complete_event_gives_usage_finish_reason_and_full_text_then_done() -> None:
    usage = {"prompt_tokens": 2, "completion_tokens": 3}
    payload = {"finish_reason": "stop", "usage": usage, "full_content": "Hello"}
    assert GENERIC.interpret(message(payload, "complete")) == (
        Delta(kind=DeltaKind.USAGE, usage=usage),
        Delta(kind=DeltaKind.FINISH, finish_reason="stop", full_text="Hello"),
        DONE,
    )


def test_full_content_is_a_cross_check_and_not_more_text() -> None:
    accumulator = Accumulator()
    for event in (
        message({"content": "Hel"}, "content"),
        message({"content": "lo"}, "content"),
        message({"full_content": "Hello"}, "complete"),
    ):
        accumulator.add(GENERIC.interpret(event))
    result = accumulator.result()
    assert (result.text, result.full_text, result.done) == ("Hello", "Hello", True)


def test_full_text_is_read_only_from_complete_events() -> None:
    deltas = GENERIC.interpret(message({"full_content": "Hello"}, "content"))
    assert all(d.full_text is None for d in deltas)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"error": {"code": 500, "detail": "boom"}}, {"code": 500, "detail": "boom"}),
        ({"message": "boom"}, "boom"),
        ({"code": 7}, {"code": 7}),
    ],
    ids=["error-field", "message-field", "whole-object"],
)
def test_error_event_gives_its_error_or_message(payload: dict[str, Any], error: Any) -> None:
    assert GENERIC.interpret(message(payload, "error")) == (
        Delta(kind=DeltaKind.ERROR, error=error),
    )


def test_error_event_with_raw_text_gives_that_text_as_the_error() -> None:
    deltas = GENERIC.interpret(Event("error", "Model overloaded"))
    assert deltas == (Delta(kind=DeltaKind.ERROR, error="Model overloaded"),)


def test_an_error_field_in_a_text_event_is_an_error() -> None:
    deltas = GENERIC.interpret(message({"error": "rate limited"}))
    assert deltas == (Delta(kind=DeltaKind.ERROR, error="rate limited"),)


def test_unnamed_events_are_classified_by_the_data_type() -> None:
    assert GENERIC.interpret(message({"type": "delta", "text": "a"})) == (content("a"),)
    assert GENERIC.interpret(message({"type": "done"})) == (DONE,)
    assert GENERIC.interpret(message({"type": "status", "content": "busy"})) == IGNORABLE


def test_a_done_true_flag_is_done() -> None:
    assert GENERIC.interpret(message({"content": "", "done": True})) == (DONE,)


def test_finish_reason_and_usage_are_read_from_text_events() -> None:
    payload = {"content": "!", "finish_reason": "length", "usage": {"total_tokens": 4}}
    assert GENERIC.interpret(message(payload)) == (
        content("!"),
        Delta(kind=DeltaKind.USAGE, usage={"total_tokens": 4}),
        Delta(kind=DeltaKind.FINISH, finish_reason="length"),
    )


def test_a_broken_json_object_is_a_dialect_error_not_text() -> None:
    with pytest.raises(DialectError, match="not valid JSON"):
        GENERIC.interpret(Event(data='{"content": "unterminated'))
