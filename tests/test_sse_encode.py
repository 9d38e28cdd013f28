"""The one SSE writer: ``harness.sse.encode``."""

from __future__ import annotations

import pytest

from harness.sse import Decoder, Event, encode


def test_data_only() -> None:
    assert encode("hello") == b"data: hello\n\n"


def test_every_field_in_order() -> None:
    written = encode("x", event="add", id="7", retry=3000, comment="keep-alive")
    assert written == b": keep-alive\nevent: add\nid: 7\nretry: 3000\ndata: x\n\n"


def test_multi_line_data_becomes_several_data_lines() -> None:
    assert encode("a\nb\r\nc\rd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"


def test_leading_space_in_data_survives_the_round_trip() -> None:
    assert Decoder().feed(encode("  two")) == [Event("message", "  two")]


def test_empty_data_is_an_event_with_empty_data() -> None:
    assert encode("") == b"data: \n\n"
    assert Decoder().feed(encode("")) == [Event("message", "")]


def test_comment_only_block_is_a_keep_alive() -> None:
    assert encode(None, comment="ping") == b": ping\n\n"
    assert encode(None, comment="") == b":\n\n"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_newline_styles(newline: str) -> None:
    expected = f"event: e{newline}data: x{newline}{newline}".encode()
    assert encode("x", event="e", newline=newline) == expected


def test_unicode_is_utf8() -> None:
    assert encode("café 🚀") == "data: café 🚀\n\n".encode()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "a\nb"}, "event type"),
        ({"id": "a\rb"}, "id"),
        ({"id": "a\0b"}, "NUL"),
        ({"retry": -1}, "retry"),
        ({"newline": "\n\n"}, "newline"),
    ],
)
def test_fields_that_cannot_be_written_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode("x", **kwargs)
