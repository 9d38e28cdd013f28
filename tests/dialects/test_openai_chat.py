"""The openai-chat dialect, one rule per test."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harness.dialects.openai_chat as openai_chat_module
from harness.dialects import Accumulator, Delta, DeltaKind, OpenAIChat
from harness.errors import DialectError
from harness.sse import Event
from tests.strategies import chat_chunks

CHAT = OpenAIChat()


def chunk(*choices: dict[str, Any], **extra: Any) -> Event:
    payload = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1}
    payload.update(model="m", choices=list(choices), **extra)
    return Event(data=json.dumps(payload))


def choice(index: int = 0, finish_reason: str | None = None, **delta: Any) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def fold(*events: Event) -> Accumulator:
    accumulator = Accumulator()
    for event in events:
        accumulator.add(CHAT.interpret(event))
    return accumulator


def test_role_only_first_chunk_is_ignorable_and_not_a_token() -> None:
    deltas = CHAT.interpret(chunk(choice(role="assistant", content="", refusal=None)))
    assert deltas == (Delta(kind=DeltaKind.IGNORABLE),)
    assert Accumulator().add(deltas) is False


def test_empty_content_is_not_a_token() -> None:
    deltas = CHAT.interpret(chunk(choice(content="")))
    assert all(d.kind is not DeltaKind.CONTENT for d in deltas)
    assert Accumulator().add(deltas) is False


def test_null_content_is_not_an_error() -> None:
    assert CHAT.interpret(chunk(choice(content=None))) == (Delta(kind=DeltaKind.IGNORABLE),)


def test_content_delta_is_content_and_a_token() -> None:
    deltas = CHAT.interpret(chunk(choice(content="Hi")))
    assert deltas == (Delta(kind=DeltaKind.CONTENT, text="Hi"),)
    assert Accumulator().add(deltas) is True


def test_reasoning_content_is_reasoning() -> None:
    deltas = CHAT.interpret(chunk(choice(content=None, reasoning_content="Hmm")))
    assert deltas == (Delta(kind=DeltaKind.REASONING, text="Hmm"),)


def test_reasoning_field_is_reasoning() -> None:
    deltas = CHAT.interpret(chunk(choice(reasoning="Hmm")))
    assert deltas == (Delta(kind=DeltaKind.REASONING, text="Hmm"),)


def test_reasoning_sent_under_both_names_counts_once() -> None:
    accumulator = fold(chunk(choice(reasoning_content="Hmm", reasoning="Hmm")))
    assert accumulator.result().reasoning == "Hmm"


def test_refusal_delta_is_refusal_and_not_a_token() -> None:
    deltas = CHAT.interpret(chunk(choice(refusal="No.")))
    assert deltas == (Delta(kind=DeltaKind.REFUSAL, text="No."),)
    assert Accumulator().add(deltas) is False


def test_first_tool_call_fragment_carries_id_and_name() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    (delta,) = CHAT.interpret(chunk(choice(tool_calls=[call])))
    assert delta == Delta(kind=DeltaKind.TOOL_CALL, index=0, tool_id="call_1", tool_name="f")


def test_tool_call_argument_fragments_are_concatenated_per_index() -> None:
    def fragment(index: int, arguments: str, **first: str) -> dict[str, Any]:
        return {"index": index, **first, "function": {"arguments": arguments}}

    accumulator = fold(
        chunk(choice(tool_calls=[fragment(0, "", id="call_a"), fragment(1, "", id="call_b")])),
        chunk(choice(tool_calls=[fragment(0, '{"x": ')])),
        chunk(choice(tool_calls=[fragment(1, '{"y": 2}')])),
        chunk(choice(tool_calls=[fragment(0, "1}")])),
    )
    calls = accumulator.result().tool_calls
    assert [(c.index, c.id, c.arguments) for c in calls] == [
        (0, "call_a", '{"x": 1}'),
        (1, "call_b", '{"y": 2}'),
    ]


def test_deprecated_function_call_is_tool_call_zero() -> None:
    (delta,) = CHAT.interpret(chunk(choice(function_call={"name": "f", "arguments": "{}"})))
    assert delta == Delta(kind=DeltaKind.TOOL_CALL, text="{}", index=0, tool_name="f")


def test_finish_reason_is_reported_per_choice() -> None:
    deltas = CHAT.interpret(chunk(choice(1, finish_reason="length")))
    assert deltas == (Delta(kind=DeltaKind.FINISH, finish_reason="length", choice=1),)


def test_choice_is_the_choices_index_field_not_its_position() -> None:
    (delta,) = CHAT.interpret(chunk(choice(3, content="x")))
    assert delta.choice == 3


def test_usage_chunk_with_empty_choices_gives_only_usage() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert CHAT.interpret(chunk(usage=usage)) == (Delta(kind=DeltaKind.USAGE, usage=usage),)


def test_null_usage_on_a_chunk_gives_no_usage_delta() -> None:
    deltas = CHAT.interpret(chunk(choice(content="a"), usage=None))
    assert [d.kind for d in deltas] == [DeltaKind.CONTENT]


def test_usage_riding_on_a_content_chunk_is_reported_after_the_content() -> None:
    deltas = CHAT.interpret(chunk(choice(content="a"), usage={"completion_tokens": 1}))
    assert [d.kind for d in deltas] == [DeltaKind.CONTENT, DeltaKind.USAGE]


def test_cumulative_usage_ends_at_its_final_value() -> None:
    accumulator = fold(
        *(
            chunk(choice(content="t"), usage={"prompt_tokens": 4, "completion_tokens": n})
            for n in range(1, 6)
        )
    )
    assert accumulator.result().usage == {"prompt_tokens": 4, "completion_tokens": 5}


def test_null_choices_is_read_as_a_usage_only_chunk() -> None:
    event = Event(data=json.dumps({"choices": None, "usage": {"total_tokens": 1}}))
    assert CHAT.interpret(event) == (Delta(kind=DeltaKind.USAGE, usage={"total_tokens": 1}),)


def test_done_sentinel_is_done() -> None:
    assert CHAT.interpret(Event(data="[DONE]")) == (Delta(kind=DeltaKind.DONE),)


def test_error_object_in_the_stream_is_an_error() -> None:
    error = {"message": "boom", "type": "server_error", "param": None, "code": None}
    deltas = CHAT.interpret(Event(data=json.dumps({"error": error})))
    assert deltas == (Delta(kind=DeltaKind.ERROR, error=error),)


def test_invalid_json_is_a_dialect_error() -> None:
    with pytest.raises(DialectError, match="not valid JSON"):
        CHAT.interpret(Event(data='{"choices": ['))


def test_a_payload_that_is_not_an_object_is_a_dialect_error() -> None:
    with pytest.raises(DialectError, match="expected an object"):
        CHAT.interpret(Event(data="[1, 2]"))


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"choices": {"index": 0}}, "choices"),
        ({"choices": ["text"]}, r"choices\[0\]"),
        ({"choices": [choice(content=5)]}, r"choices\[0\]\.delta\.content"),
        ({"choices": [choice(reasoning_content=["a"])]}, r"delta\.reasoning_content"),
        ({"choices": [choice(tool_calls={"index": 0})]}, r"delta\.tool_calls"),
        ({"choices": [choice(tool_calls=[{"index": "0"}])]}, r"tool_calls\[0\]\.index"),
        ({"choices": [{"index": 0, "delta": "hi"}]}, r"choices\[0\]\.delta"),
        ({"choices": [{"index": 0, "delta": {}, "finish_reason": 1}]}, "finish_reason"),
        ({"choices": [], "usage": [3]}, "usage"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_dialect_error_naming_it(
    payload: dict[str, Any], path: str
) -> None:
    with pytest.raises(DialectError, match=path) as caught:
        CHAT.interpret(Event(data=json.dumps(payload)))
    assert caught.value.dialect == "openai-chat"


@pytest.mark.parametrize(
    "data",
    [
        '{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}',
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
        '{"choices":[{"index":0,"delta":{"role":"assistant"}}],"usage":null}',
        '{"choices":[{"index":1,"delta":{"content":"second choice"}}]}',
        '{"choices":[{"delta":{"content":"no index"}}]}',
        '{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}',
        '{"choices":[{"index":0,"delta":{"content":"x","reasoning_content":"y"}}]}',
        '{"choices":[{"index":0,"delta":{"content":5}}]}',
        '{"choices":[{"index":true,"delta":{"content":"x"}}]}',
        '{"choices":[],"usage":{"completion_tokens":3}}',
        '{"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"completion_tokens":1}}',
        '{"error":{"message":"boom"}}',
        "[DONE]",
        # null fields the full reading skips: the fast path takes them too
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}]}',
        '{"choices":[{"index":null,"delta":{"content":"x","reasoning_content":null,'
        '"reasoning":null,"tool_calls":null,"function_call":null}}],"error":null}',
        # and what it leaves to the full reading
        '{"choices":[{"index":0,"delta":{"content":"x","refusal":"no"}}]}',
        '{"choices":[{"index":0,"delta":{"content":"x","extra":1}}]}',
        '{"choices":[{"index":0,"delta":null}]}',
        '{"choices":[{"index":1.0,"delta":{"content":"x"}}]}',
        '{"choices":[{"index":0,"delta":{"content":"\\ud800"}}]}',
        '{"choices":[{"index":0,"delta":{"content":"x"}}],"n":NaN}',
        '{"choices":[{"index":0,"delta":{"content":"x"}}],"choices":[]}',
        '{"choices":[{"index":0,"delta":{"content":"x"}}]} trailing',
        '{"choices":[{"index":0,"delta":{"content":"x"}}],"error":{"message":"boom"}}',
    ],
)
def test_fast_path_reads_exactly_as_the_full_reading(
    data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = Event("message", data)

    def read() -> object:
        try:
            return OpenAIChat().interpret(event)
        except DialectError as exc:
            return ("error", str(exc))

    fast = read()
    monkeypatch.setattr(openai_chat_module, "_common_chunk", lambda data: None)
    assert fast == read()


def _read_fully(data: str) -> object:
    with mock.patch.object(openai_chat_module, "_common_chunk", return_value=None):
        return _reading(data)


def _reading(data: str) -> object:
    try:
        return OpenAIChat().interpret(Event("message", data))
    except DialectError as exc:
        return ("error", str(exc))


@given(chat_chunks)
def test_fast_path_reads_any_chunk_exactly_as_the_full_reading(payload: dict[str, Any]) -> None:
    data = json.dumps(payload)
    assert _reading(data) == _read_fully(data)
    if openai_chat_module._common_chunk(data) is not None:  # what it took, it took whole
        assert _read_fully(data) == openai_chat_module._common_chunk(data)


@given(chat_chunks, st.booleans())
def test_plain_content_reads_the_utf8_bytes_of_a_chunk_as_its_text(
    payload: dict[str, Any], ascii_only: bool
) -> None:
    data = json.dumps(payload, ensure_ascii=ascii_only)
    assert openai_chat_module._plain_content(data.encode()) == openai_chat_module._plain_content(
        data
    )


def test_plain_content_leaves_bytes_that_are_not_utf8_to_the_full_reading() -> None:
    data = '{"choices":[{"index":0,"delta":{"content":"caf\u00e9"}}]}'.encode("latin-1")
    assert openai_chat_module._plain_content(data) is None


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=4), st.integers(min_value=0, max_value=2)),
        max_size=12,
    ),
    st.booleans(),
)
def test_text_added_without_deltas_folds_in_as_its_deltas_do(
    pieces: list[tuple[str, int]], mixed: bool
) -> None:
    """``add_text`` (the fast path's fold) gives the result ``add`` gives with the same
    text as deltas, whatever the order of the choices, mixed with ``add`` or not."""
    fast, full = Accumulator(), Accumulator()
    for number, (text, index) in enumerate(pieces):
        delta = Delta(kind=DeltaKind.CONTENT, text=text, choice=index)
        if mixed and number % 2:
            fast.add((delta,))
        else:
            fast.add_text(text, index)
        full.add((delta,))
    assert fast.result() == full.result()
