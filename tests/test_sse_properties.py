"""Properties of the SSE decoder, fuzzed at every chunk boundary.

Every reader is tested three ways, as h11 and python-zstandard do: the whole input at
once, byte by byte, and cut at drawn split points.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from harness.sse import Decoder, Event
from tests.strategies import Block, blocks, byte_streams, cut, newlines, split_points

BOM = b"\xef\xbb\xbf"


def decode(chunks: list[bytes]) -> tuple[list[Event], bool]:
    decoder = Decoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    events += decoder.close()
    return events, decoder.discarded


def expected_events(written: list[Block]) -> list[Event]:
    """What a conformant decoder must return for ``written``."""
    events = []
    last_id = None
    for block in written:
        if block.id is not None:
            last_id = block.id
        data = block.data.replace("\r\n", "\n").replace("\r", "\n")
        events.append(Event(block.event or "message", data, last_id, block.retry))
    return events


def three_ways(stream: bytes, points: list[int]) -> list[list[bytes]]:
    return [[stream], [stream[i : i + 1] for i in range(len(stream))], cut(stream, points)]


@given(st.lists(blocks, max_size=8), newlines, st.booleans(), st.data())
@example([Block("a\rb", comment="x\r\ny")], "\r", True, None)
def test_encoded_events_decode_to_themselves(
    written: list[Block], newline: str, bom: bool, data: st.DataObject | None
) -> None:
    stream = (BOM if bom else b"") + b"".join(block.encode(newline) for block in written)
    points = data.draw(split_points(stream), label="split points") if data else [1, 2, 5, 6]
    for chunks in three_ways(stream, points):
        assert decode(chunks) == (expected_events(written), False)


@given(st.lists(blocks, min_size=1, max_size=4), newlines)
def test_split_between_cr_and_lf_and_inside_utf8(written: list[Block], newline: str) -> None:
    stream = b"".join(block.encode(newline) for block in written)
    expected = (expected_events(written), False)
    cr_lf = [i + 1 for i in range(len(stream) - 1) if stream[i : i + 2] == b"\r\n"]
    inside_utf8 = [i for i in range(1, len(stream)) if 0x80 <= stream[i] < 0xC0]
    assert decode(cut(stream, cr_lf)) == expected
    assert decode(cut(stream, inside_utf8)) == expected


@given(byte_streams, st.data())
def test_any_bytes_decode_the_same_however_chunked(stream: bytes, data: st.DataObject) -> None:
    points = data.draw(split_points(stream), label="split points")
    whole, bytewise, drawn = (decode(chunks) for chunks in three_ways(stream, points))
    assert bytewise == whole
    assert drawn == whole


@given(st.binary(max_size=300), st.data())
def test_random_binary_decodes_the_same_however_chunked(stream: bytes, data: st.DataObject) -> None:
    points = data.draw(split_points(stream), label="split points")
    assert decode(cut(stream, points)) == decode([stream])


@given(st.lists(blocks, max_size=8), newlines)
def test_one_block_per_feed_reads_the_same(written: list[Block], newline: str) -> None:
    # one "data: ..." block per feed is what the decoder's fast path takes
    chunks = [block.encode(newline) for block in written]
    assert decode(chunks) == (expected_events(written), False)
