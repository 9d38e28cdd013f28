"""Choosing a dialect: by detection from the first event, and by name."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harness.dialects
from harness.dialects import (
    DIALECT_NAMES,
    Anthropic,
    GenericJSON,
    OpenAIChat,
    OpenAICompletions,
    OpenAIResponses,
    PlainText,
    detect,
    get,
)
from harness.errors import ConfigError
from harness.sse import Event


@pytest.mark.parametrize(
    ("event", "dialect"),
    [
        (Event("message_start", '{"type": "message_start", "message": {}}'), "anthropic"),
        (Event("message", '{"type": "message_start", "message": {}}'), "anthropic"),
        (Event("content_block_delta", "{}"), "anthropic"),
        (Event("message", '{"type": "ping"}'), "anthropic"),
        (
            Event("error", '{"type": "error", "error": {"type": "overloaded_error"}}'),
            "anthropic",
        ),
        (Event("response.created", '{"type": "response.created"}'), "openai-responses"),
        (Event("message", '{"type": "response.in_progress"}'), "openai-responses"),
        (Event("message", '{"object": "chat.completion.chunk", "choices": []}'), "openai-chat"),
        (Event("message", '{"choices": [{"index": 0, "delta": {}}]}'), "openai-chat"),
        (Event("message", '{"object": "text_completion", "choices": []}'), "openai-completions"),
        (Event("message", '{"choices": [{"index": 0, "text": "a"}]}'), "openai-completions"),
    ],
)
def test_vendor_first_events_are_detected(event: Event, dialect: str) -> None:
    assert detect(event).name == dialect


@pytest.mark.parametrize(
    "event",
    [
        Event("message", '{"content": "hi"}'),
        Event("message", "raw token"),
        Event("message", "[DONE]"),
        Event("ping", "{}"),
        Event("start", '{"type": "start"}'),
        Event("message", '{"choices": "nope"}'),
        Event("message", '{"type": "error", "message": "boom"}'),
        Event("message", "[" * 100_000),
    ],
    ids=["content", "raw", "done", "ping-name-only", "start", "bad-choices", "error", "deep"],
)
def test_anything_unrecognised_is_read_as_generic(event: Event) -> None:
    assert detect(event) == GenericJSON()


@given(st.text(), st.text())
def test_detect_never_raises(event_type: str, data: str) -> None:
    assert detect(Event(event_type, data)).framing == "sse"


@given(st.recursive(st.none() | st.integers() | st.text(), st.lists, max_leaves=20))
def test_detect_never_raises_on_any_json_choices(choices: object) -> None:
    event = Event(data=json.dumps({"choices": choices, "type": choices}))
    assert detect(event).name in DIALECT_NAMES


def test_get_returns_the_dialect_of_every_name() -> None:
    assert [get(name).name for name in DIALECT_NAMES] == list(DIALECT_NAMES)  # type: ignore[union-attr]
    assert isinstance(get("openai-chat"), OpenAIChat)
    assert isinstance(get("openai-responses"), OpenAIResponses)
    assert isinstance(get("openai-completions"), OpenAICompletions)
    assert isinstance(get("anthropic"), Anthropic)
    assert isinstance(get("text"), PlainText)


def test_get_auto_returns_none_meaning_detect() -> None:
    assert get("auto") is None


def test_get_passes_pointer_and_terminator_to_generic() -> None:
    assert get("generic", pointer="/text", terminator=None) == GenericJSON("/text", None)


def test_get_with_an_unknown_name_is_a_config_error_listing_the_valid_names() -> None:
    with pytest.raises(ConfigError) as caught:
        get("openai")
    assert caught.value.field == "dialect"
    assert all(name in caught.value.reason for name in ("auto", *DIALECT_NAMES))


def test_get_auto_with_a_pointer_is_generic_since_only_generic_takes_one() -> None:
    assert get("auto", pointer="/content") == GenericJSON(pointer="/content")


def test_get_with_a_pointer_for_another_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        get("openai-chat", pointer="/content")
    assert caught.value.field == "pointer"


def test_get_with_an_invalid_pointer_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        get("generic", pointer="content")
    assert caught.value.field == "pointer"


def test_public_surface_is_pinned_and_sorted() -> None:
    assert harness.dialects.__all__ == sorted(harness.dialects.__all__)
    assert set(harness.dialects.__all__) == {
        "DIALECT_NAMES",
        "Accumulator",
        "Anthropic",
        "Delta",
        "DeltaKind",
        "Dialect",
        "GenericJSON",
        "OpenAIChat",
        "OpenAICompletions",
        "OpenAIResponses",
        "PlainText",
        "Read",
        "StreamReader",
        "StreamResult",
        "detect",
        "get",
        "answer_complete",
        "incomplete_why",
        "is_streamed",
    }
    assert all(hasattr(harness.dialects, name) for name in harness.dialects.__all__)
