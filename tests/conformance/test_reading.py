"""Reading captured bodies: events keep their byte offsets and arrival times whatever the
reads were, and the decoding is harness.sse's."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from harness.conformance.captured import Purpose
from harness.conformance.reading import read_events, read_exchange, split_lines
from harness.sse import Decoder, encode
from tests.conformance.builders import MS, chat_stream, exchange

BODY = b"".join(chat_stream()) + b": trailing comment\n"


def reads_of(body: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(cuts)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]


@given(st.lists(st.integers(min_value=1, max_value=len(BODY) - 1), max_size=40))
def test_events_and_their_offsets_do_not_depend_on_the_reads(cuts: list[int]) -> None:
    whole = list(read_events(exchange([BODY])))
    split = list(read_events(exchange(reads_of(BODY, cuts))))
    assert [(e.event, e.start, e.end) for e in split] == [(e.event, e.start, e.end) for e in whole]
    assert [e.event for e in whole] == Decoder().feed(BODY)  # harness.sse's events
    for event in split:
        assert BODY[event.start : event.end].endswith(b"\n\n")


def test_each_event_arrives_with_the_read_that_completed_it() -> None:
    events = chat_stream()
    first, rest = events[0], b"".join(events[1:])
    half = len(first) // 2
    split = exchange([first[:half], first[half:] + rest], times_ns=[10 * MS, 20 * MS])
    events = list(read_events(split))
    assert events[0].arrival_ns == 20 * MS  # its blank line came in the second read
    assert events[0].start == 0
    assert events[0].split  # it began in the first read
    assert events[1].start == len(first)
    assert not events[1].split
    assert read_exchange(split).token_times_ns[0] == 20 * MS


def test_a_body_ending_inside_an_event_is_marked_where_that_event_starts() -> None:
    body = encode("one") + b"data: two\n"
    cut = exchange([body], label="long", purpose=Purpose.LONG)
    assert [e.event.data for e in read_events(cut, "generic")] == ["one"]
    assert read_exchange(cut, "generic").unterminated_at == len(encode("one"))


def test_lines_are_split_on_cr_lf_and_crlf() -> None:
    lines = split_lines(b"a\r\nb\rc\nd")
    assert [(line.start, line.end, line.ending) for line in lines] == [
        (0, 1, b"\r\n"),
        (3, 4, b"\r"),
        (5, 6, b"\n"),
        (7, 8, b""),
    ]


def test_a_plain_text_body_is_one_event_per_read() -> None:
    text = exchange([b"Hello", b" world"], headers=(("content-type", "text/plain"),))
    reading = read_exchange(text)
    assert reading.framing == "text"
    assert reading.dialect == "text"
    assert [(e.event.data, e.start, e.end) for e in read_events(text)] == [
        ("Hello", 0, 5),
        (" world", 5, 11),
    ]
