"""``decode_body``: the summary behind ``sse-harness decode``."""

from __future__ import annotations

import pytest

from harness.dialects.decode import decode_body
from harness.errors import ConfigError

CHUNK = (
    b'data: {"object": "chat.completion.chunk", '
    b'"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n'
)


def test_malformed_json_is_a_protocol_error_and_later_events_still_decode() -> None:
    body = CHUNK % b"a" + b'data: {"choices": [\n\n' + CHUNK % b"b" + b"data: [DONE]\n\n"
    summary = decode_body(body)
    assert summary["text"] == "ab"
    assert summary["sse_events"] == 4
    assert summary["content_events"] == 2
    assert summary["done_sentinel"] is True
    (problem,) = summary["protocol_errors"]
    assert problem.startswith("openai-chat: data is not valid JSON")


def test_a_wrong_type_is_a_protocol_error_naming_the_field() -> None:
    body = CHUNK % b"a" + b'data: {"choices": [{"index": 0, "delta": {"content": 5}}]}\n\n'
    summary = decode_body(body)
    assert summary["text"] == "a"
    assert len(summary["protocol_errors"]) == 1
    assert "choices[0].delta.content is a number" in summary["protocol_errors"][0]


def test_an_unterminated_last_event_is_discarded_and_reported_as_truncated() -> None:
    summary = decode_body(CHUNK % b"a" + b'data: {"choices": [{"delta": {"content": "b"}}]}\n')
    assert (summary["text"], summary["truncated"], summary["sse_events"]) == ("a", True, 1)


def test_a_complete_body_is_not_truncated() -> None:
    assert decode_body(CHUNK % b"a")["truncated"] is False


def test_dialect_text_without_a_content_type_reads_plain_text() -> None:
    summary = decode_body(b"data: not sse\n\n", dialect="text")
    assert (summary["dialect"], summary["text"]) == ("text", "data: not sse\n\n")


def test_no_content_type_reads_the_body_as_sse() -> None:
    summary = decode_body(b"data: hello\n\n")
    assert (summary["dialect"], summary["text"], summary["sse_events"]) == ("generic", "hello", 1)


def test_a_named_dialect_overrides_a_text_plain_content_type() -> None:
    summary = decode_body(CHUNK % b"x", content_type="text/plain", dialect="openai-chat")
    assert (summary["dialect"], summary["text"]) == ("openai-chat", "x")


def test_an_empty_body_has_no_dialect_and_no_text() -> None:
    summary = decode_body(b"")
    assert (summary["dialect"], summary["text"], summary["sse_events"]) == (None, "", 0)


def test_pointer_reaches_the_generic_dialect() -> None:
    body = b'data: {"result": {"answer": "42"}}\n\n'
    summary = decode_body(body, dialect="generic", pointer="/result/answer")
    assert summary["text"] == "42"


def test_choices_and_full_text_appear_only_when_the_stream_has_them() -> None:
    summary = decode_body(CHUNK % b"a")
    assert "choices" not in summary
    assert "full_text" not in summary


@pytest.mark.parametrize("chunk_size", [0, -3])
def test_a_chunk_size_below_one_is_a_config_error(chunk_size: int) -> None:
    with pytest.raises(ConfigError) as caught:
        decode_body(CHUNK % b"a", chunk_size=chunk_size)
    assert caught.value.field == "chunk_size"


def test_an_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        decode_body(b"", dialect="gemini")
    assert caught.value.field == "dialect"


def test_an_oversized_event_is_reported_and_what_came_before_is_kept() -> None:
    body = b'data: {"content": "kept"}\n\n' + b"data: " + b"x" * 500 + b"\n\n"
    summary = decode_body(body, dialect="generic", max_event_bytes=100)
    assert summary["text"] == "kept"
    assert summary["truncated"] is True
    assert len(summary["protocol_errors"]) == 1
    assert "exceeds the limit of 100 bytes" in summary["protocol_errors"][0]
