"""The WHATWG event-stream interpretation rules, one named case per rule.

Every case is decoded three ways (whole, byte by byte, and at every single split point)
and must give the same events each time.
"""

from __future__ import annotations

import pytest

from harness.errors import EventTooLarge, SSEError
from harness.sse import Decoder, Event


def decode(chunks: list[bytes], **options: int) -> tuple[list[Event], bool]:
    decoder = Decoder(**options)
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    events += decoder.close()
    return events, decoder.discarded


def E(data: str, type: str = "message", id: str | None = None, retry: int | None = None) -> Event:  # noqa: A002
    """An expected event, data first (the shortest way to write the table)."""
    return Event(type, data, id, retry)


RULES = [
    # data fields
    ("data-single-line", b"data: hello\n\n", [E("hello")]),
    ("data-one-leading-space-removed", b"data:  two spaces\n\n", [E(" two spaces")]),
    ("data-no-space-after-colon", b"data:x\n\n", [E("x")]),
    ("data-lines-joined-with-lf", b"data: a\ndata: b\n\n", [E("a\nb")]),
    ("data-final-lf-removed-once", b"data: a\ndata:\n\n", [E("a\n")]),
    ("data-empty-value-dispatches-empty-event", b"data:\n\n", [E("")]),
    ("data-field-without-colon-is-empty-data", b"data\n\n", [E("")]),
    ("data-two-empty-lines-give-one-lf", b"data\ndata\n\n", [E("\n")]),
    ("data-colon-in-value-kept", b"data: a:b: c\n\n", [E("a:b: c")]),
    ("data-nul-kept", b"data: a\x00b\n\n", [E("a\x00b")]),
    ("data-trailing-spaces-kept", b"data: a  \n\n", [E("a  ")]),
    # dispatch
    ("empty-data-buffer-not-dispatched", b"event: x\n\n", []),
    ("id-only-block-not-dispatched", b"id: 1\n\n", []),
    ("retry-only-block-not-dispatched", b"retry: 10\n\n", []),
    ("comment-only-block-dispatches-nothing", b": ping\n\n", []),
    ("comment-after-id-dispatches-nothing", b"id: 1\ndata: a\n\n: ping\n\n", [E("a", id="1")]),
    ("blank-lines-in-a-row-dispatch-once", b"data: x\n\n\n\ndata: y\n\n", [E("x"), E("y")]),
    ("leading-blank-lines-ignored", b"\n\n\ndata: x\n\n", [E("x")]),
    # event type
    ("event-type-defaults-to-message", b"data: x\n\n", [E("x", "message")]),
    ("event-field-sets-type", b"event: add\ndata: x\n\n", [E("x", "add")]),
    ("event-type-resets-after-dispatch", b"event: add\ndata: x\n\ndata: y\n\n",
     [E("x", "add"), E("y")]),
    ("event-type-resets-after-undispatched-block", b"event: add\n\ndata: y\n\n", [E("y")]),
    ("event-empty-value-means-message", b"event:\ndata: x\n\n", [E("x")]),
    ("event-last-value-wins", b"event: a\nevent: b\ndata: x\n\n", [E("x", "b")]),
    # comments and field names
    ("comment-line-ignored", b": hello\ndata: x\n\n", [E("x")]),
    ("comment-without-space-ignored", b":\n:x\ndata: x\n\n", [E("x")]),
    ("field-name-case-sensitive", b"Data: x\n\n", []),
    ("unknown-field-ignored", b"foo: bar\ndata: x\n\n", [E("x")]),
    ("field-name-ends-at-first-colon", b"data : x\n\n", []),
    ("leading-space-makes-unknown-field", b" data: x\n\n", []),
    # id
    ("id-sets-last-event-id", b"id: 7\ndata: x\n\n", [E("x", id="7")]),
    ("id-persists-across-events", b"id: 7\ndata: x\n\ndata: y\n\n",
     [E("x", id="7"), E("y", id="7")]),
    ("id-empty-value-resets-to-empty", b"id: 7\ndata: x\n\nid\ndata: y\n\n",
     [E("x", id="7"), E("y", id="")]),
    ("id-with-nul-ignored", b"id: 7\ndata: x\n\nid: a\x00b\ndata: y\n\n",
     [E("x", id="7"), E("y", id="7")]),
    ("id-in-undispatched-block-persists", b"id: 3\n\ndata: y\n\n", [E("y", id="3")]),
    ("id-none-until-seen", b"data: x\n\n", [E("x", id=None)]),
    ("id-one-leading-space-removed", b"id:  5\ndata: x\n\n", [E("x", id=" 5")]),
    # retry
    ("retry-ascii-digits-accepted", b"retry: 3000\ndata: x\n\n", [E("x", retry=3000)]),
    ("retry-with-letters-ignored", b"retry: 30s\ndata: x\n\n", [E("x")]),
    ("retry-plus-sign-ignored", b"retry: +5\ndata: x\n\n", [E("x")]),
    ("retry-minus-sign-ignored", b"retry: -5\ndata: x\n\n", [E("x")]),
    ("retry-non-ascii-digits-ignored", "retry: ٣\ndata: x\n\n".encode(), [E("x")]),
    ("retry-underscore-ignored", b"retry: 1_000\ndata: x\n\n", [E("x")]),
    ("retry-empty-ignored", b"retry:\ndata: x\n\n", [E("x")]),
    ("retry-trailing-space-ignored", b"retry: 5 \ndata: x\n\n", [E("x")]),
    ("retry-belongs-to-its-block", b"retry: 5\ndata: x\n\ndata: y\n\n", [E("x", retry=5), E("y")]),
    # line ends
    ("line-end-lf", b"data: x\n\n", [E("x")]),
    ("line-end-crlf", b"data: x\r\n\r\n", [E("x")]),
    ("line-end-cr", b"data: x\r\r", [E("x")]),
    ("line-ends-mixed", b"data: a\rdata: b\ndata: c\r\n\n", [E("a\nb\nc")]),
    ("crlf-is-one-line-end", b"data: a\r\ndata: b\r\n\r\n", [E("a\nb")]),
    ("lf-cr-is-two-line-ends", b"data: a\n\rdata: b\n\n", [E("a"), E("b")]),
    # BOM and UTF-8
    ("bom-at-start-ignored", b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    ("bom-only-the-first-ignored", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),
    ("bom-inside-data-kept", b"data: \xef\xbb\xbfx\n\n", [E("\ufeffx")]),
    ("utf8-multibyte-decoded", "data: café 東京 🚀\n\n".encode(), [E("café 東京 🚀")]),
    ("utf8-invalid-byte-replaced", b"data: a\xffb\n\n", [E("a\ufffdb")]),
    ("utf8-truncated-sequence-replaced-once", b"data: \xe6\x9d\n\n", [E("\ufffd")]),
    ("utf8-surrogate-encoding-replaced", b"data: \xed\xa0\x80\n\n", [E("\ufffd\ufffd\ufffd")]),
    # end of stream
    ("unterminated-final-event-dropped", b"data: x\n\ndata: y\n", [E("x")]),
    ("unterminated-final-line-dropped", b"data: x\n\ndata: y", [E("x")]),
    ("cr-at-end-of-stream-ends-line", b"data: x\r\r", [E("x")]),
]  # fmt: skip


@pytest.mark.parametrize(("stream", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(stream: bytes, expected: list[Event]) -> None:
    whole, _ = decode([stream])
    bytewise, _ = decode([stream[i : i + 1] for i in range(len(stream))])
    assert whole == expected
    assert bytewise == expected
    for i in range(len(stream) + 1):
        assert decode([stream[:i], stream[i:]])[0] == expected, f"split at {i}"


def test_rules_table_is_large_enough() -> None:
    assert len(RULES) >= 40
    assert len({r[0] for r in RULES}) == len(RULES), "rule names must be unique"


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    events, _ = decode([b"data: x\r", b"\n", b"data: y\r", b"\n\r", b"\n"])
    assert events == [E("x\ny")]


def test_cr_then_cr_across_feeds_is_a_blank_line() -> None:
    events, _ = decode([b"data: x\r", b"\r"])
    assert events == [E("x")]


def test_empty_feeds_keep_a_pending_cr() -> None:
    events, _ = decode([b"data: x\r", b"", b"", b"\ndata: y\n\n"])
    assert events == [E("x\ny")]


def test_bom_split_across_feeds_ignored() -> None:
    events, _ = decode([b"\xef", b"\xbb", b"\xbf", b"data: x\n\n"])
    assert events == [E("x")]


def test_bom_prefix_that_is_not_a_bom_is_kept() -> None:
    events, _ = decode([b"\xef\xbb", b"data: x\n\ndata: y\n\n"])
    assert events == [E("y")]  # the first line's field name starts with U+FFFD: unknown


def test_emoji_split_inside_its_utf8_bytes() -> None:
    raw = "data: 🚀\n\n".encode()
    events, _ = decode([raw[:7], raw[7:8], raw[8:9], raw[9:]])
    assert events == [E("🚀")]


def test_close_reports_a_discarded_event() -> None:
    assert decode([b"data: x\n"]) == ([], True)
    assert decode([b"data: x"]) == ([], True)
    assert decode([b"event: x\n"]) == ([], True)
    assert decode([b"data: x\n\n"]) == ([E("x")], False)
    assert decode([b": comment\n"]) == ([], False)


def test_feed_after_close_is_an_error() -> None:
    decoder = Decoder()
    decoder.close()
    with pytest.raises(SSEError, match="closed"):
        decoder.feed(b"data: x\n\n")


def test_last_event_id_is_exposed_for_reconnection() -> None:
    decoder = Decoder()
    decoder.feed(b"id: 41\ndata: x\n\nid: 42\n\n")
    assert decoder.last_event_id == "42"


def test_line_over_the_limit_raises_with_its_size() -> None:
    decoder = Decoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 60)
    with pytest.raises(EventTooLarge) as caught:
        decoder.feed(b"x" * 60)
    assert (caught.value.what, caught.value.size, caught.value.limit) == ("line", 126, 100)
    assert "max_event_bytes" in str(caught.value)


def test_line_over_the_limit_in_one_feed_raises() -> None:
    with pytest.raises(EventTooLarge) as caught:
        Decoder(max_event_bytes=100).feed(b"event: " + b"x" * 200 + b"\n")
    assert caught.value.what == "line"


def test_event_over_the_limit_raises_whatever_the_chunking() -> None:
    stream = b"data: " + b"x" * 60 + b"\n" + b"data: " + b"y" * 60 + b"\n\n"
    for chunks in ([stream], [stream[:70], stream[70:]], [stream[:-1], stream[-1:]]):
        with pytest.raises(EventTooLarge) as caught:
            decode(chunks, max_event_bytes=100)
        assert caught.value.what == "event"
        assert caught.value.size == 121


def test_event_at_the_limit_is_accepted() -> None:
    events, _ = decode([b"data: " + b"x" * 100 + b"\n\n"], max_event_bytes=106)
    assert events == [E("x" * 100)]


def test_decoder_is_unusable_after_an_overflow() -> None:
    decoder = Decoder(max_event_bytes=10)
    with pytest.raises(EventTooLarge):
        decoder.feed(b"x" * 20)
    with pytest.raises(SSEError, match="failed"):
        decoder.feed(b"\n")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Decoder(max_event_bytes=0)


def test_events_are_frozen_and_hashable() -> None:
    event = Decoder().feed(b"id: 1\ndata: x\n\n")[0]
    assert event == Event("message", "x", "1", None)
    assert hash(event) == hash(Event("message", "x", "1", None))
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


def test_events_before_an_overflow_travel_with_the_error() -> None:
    stream = b"data: a\n\ndata: b\n\n" + b"data: " + b"x" * 200 + b"\n\n"
    for stream_tail in (b"", b"data: " + b"y" * 200):  # a complete and an unterminated line
        with pytest.raises(EventTooLarge) as caught:
            Decoder(max_event_bytes=100).feed(stream[:18] + (stream_tail or stream[18:]))
        assert caught.value.events == (E("a"), E("b"))


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        (b"event: delta\n", b"data: x\n\n", [E("x", type="delta")]),
        (b"data: a\n", b"data: x\n\n", [E("a\nx")]),
        (b"retry: 5\n", b"data: x\n\n", [E("x", retry=5)]),
        (b"id: 7\n\n", b"data: x\n\n", [E("x", id="7")]),
        (b"data: a\n\nda", b"ta: x\n\n", [E("a"), E("x")]),
        (b"data: a\r", b"\ndata: x\n\n", [E("a\nx")]),
    ],
)
def test_a_one_event_feed_after_a_pending_field_keeps_it(
    first: bytes, then: bytes, expected: list[Event]
) -> None:
    # "data: x\n\n" alone is read by a fast path: it must see what is pending before it
    assert decode([first, then]) == (expected, False)
