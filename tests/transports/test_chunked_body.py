"""ChunkedBody reads the plain chunked framing in feeds of any size and hands the rest on."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.transports.chunked import MAX_SIZE_LINE, ChunkedBody
from tests.transports.servers import chat_events, chunked

EVENTS = chat_events(["one", "two", "three", "café", "東京"])
BODY = b"".join(EVENTS)
FRAMED = chunked(*EVENTS)  # one chunk per event, then the last chunk
END = b"0\r\n\r\n"


def read(feeds: list[bytes]) -> tuple[bytes, bytes | None, int]:
    """The data read from ``feeds``, the rest handed on, and how many feeds were taken."""
    body = ChunkedBody()
    out = []
    for taken, feed in enumerate(feeds, 1):
        data, rest = body.feed(feed)
        out.append(data)
        if rest is not None:
            return b"".join(out), rest + b"".join(feeds[taken:]), taken
    return b"".join(out), None, len(feeds)


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    cuts = [0, *sorted(set(points)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(cuts) if b > a]


def test_whole_chunks_give_their_data_and_the_last_chunk_is_handed_on() -> None:
    data, rest, _ = read([chunked(event)[: -len(END)] for event in EVENTS] + [END])
    assert data == BODY
    assert rest == END


def test_the_whole_body_in_one_feed_gives_every_chunk() -> None:
    assert read([FRAMED + b"trailing"]) == (BODY, END + b"trailing", 1)


def test_byte_by_byte_gives_the_same() -> None:
    data, rest, _ = read([FRAMED[i : i + 1] for i in range(len(FRAMED))])
    assert (data, rest) == (BODY, END)


@given(st.lists(st.integers(min_value=1, max_value=len(FRAMED) - 1), max_size=40))
def test_any_split_gives_the_same(points: list[int]) -> None:
    data, rest, _ = read(split_at(FRAMED, points))
    assert (data, rest) == (BODY, END)


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8), st.data())
def test_any_chunk_sizes_and_splits_give_the_data(pieces: list[bytes], data: st.DataObject) -> None:
    framed = b"".join(b"%X\r\n%s\r\n" % (len(p), p) for p in pieces) + END
    points = data.draw(st.lists(st.integers(min_value=1, max_value=len(framed) - 1)))
    assert read(split_at(framed, points))[:2] == (b"".join(pieces), END)


TAIL = b"hello\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("framed", "data", "rest"),
    [
        # a chunk extension: the full parser reads it
        (b"5;name=value\r\n" + TAIL, b"", b"5;name=value\r\n" + TAIL),
        (b"3\r\nabc\r\n5 \r\n" + TAIL, b"abc", b"5 \r\n" + TAIL),  # a space
        (b"3\r\nabc\r\n0x5\r\n" + TAIL, b"abc", b"0x5\r\n" + TAIL),  # not plain hex
        (b"3\r\nabc\r\n+5\r\n" + TAIL, b"abc", b"+5\r\n" + TAIL),
        (b"3\r\nabc\r\n\r\n" + TAIL, b"abc", b"\r\n" + TAIL),  # an empty size line
        (b"3\r\nabcXY5\r\n" + TAIL, b"abc", b"XY5\r\n" + TAIL),  # no CRLF after the data
        (b"3\r\nabc\r\n" + b"0" * MAX_SIZE_LINE + b"5\r\n" + TAIL, b"abc",
         b"0" * MAX_SIZE_LINE + b"5\r\n" + TAIL),  # a size line too long
    ],
)  # fmt: skip
def test_what_is_not_read_here_is_handed_on_from_where_reading_stopped(
    framed: bytes, data: bytes, rest: bytes
) -> None:
    assert read([framed])[:2] == (data, rest)
    assert read([framed[i : i + 1] for i in range(len(framed))])[:2] == (data, rest)


def test_sizes_in_any_case_and_with_leading_zeros_are_read() -> None:
    framed = b"000a\r\n0123456789\r\n1B\r\n" + b"x" * 27 + b"\r\n0\r\n\r\n"
    assert read([framed])[:2] == (b"0123456789" + b"x" * 27, END)


@given(st.binary(min_size=1, max_size=5000), st.sampled_from([b"", b"0\r\n\r\n", b"1\r\nx\r\n"]))
def test_a_feed_of_whole_chunks_of_any_length_gives_its_data(payload: bytes, after: bytes) -> None:
    """One whole chunk a feed (the common case, read by its length), or a chunk and more
    in the same feed, whatever bytes the data holds (size lines, CRLFs)."""
    feed = b"%x\r\n%s\r\n" % (len(payload), payload) + after
    data, rest = ChunkedBody().feed(feed)
    if after == b"1\r\nx\r\n":
        assert (data, rest) == (payload + b"x", None)
    else:
        assert (data, rest) == (payload, after or None)
