"""Hypothesis strategies shared by the tests (plural nouns, as Hypothesis names them)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st

from harness.sse import encode

#: Any Unicode scalar value: astral characters and emoji included, lone surrogates not
#: (they cannot be written as UTF-8).
any_text = st.text(st.characters(exclude_categories=["Cs"]))

#: Text that may hold CR and LF in any arrangement.
texts_with_line_ends = st.lists(
    st.one_of(any_text, st.sampled_from(["\n", "\r", "\r\n", "\n\r", "🚀", "é"])), max_size=6
).map("".join)

#: Field values that cannot hold a line end (event types).
single_lines = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"))

#: Valid ids: no line end and no NUL.
ids = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\0"))

newlines = st.sampled_from(["\n", "\r\n", "\r"])


@dataclass(frozen=True, slots=True)
class Block:
    """One event as written: what ``encode`` gets."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def encode(self, newline: str) -> bytes:
        return encode(
            self.data,
            event=self.event,
            id=self.id,
            retry=self.retry,
            comment=self.comment,
            newline=newline,
        )


blocks = st.builds(
    Block,
    data=texts_with_line_ends,
    event=st.none() | single_lines,
    id=st.none() | ids,
    retry=st.none() | st.integers(min_value=0, max_value=2**40),
    comment=st.none() | texts_with_line_ends,
)

#: Byte pieces that SSE decoding cares about, to build arbitrary yet interesting streams.
_interesting = st.sampled_from(
    [b"data:", b"data: ", b"event:", b"id:", b"retry:", b":", b" ", b"\r", b"\n", b"\r\n",
     b"\xef\xbb\xbf", b"\xc3", b"\xa9", b"\xf0\x9f\x9a\x80", b"\xff", b"\x00", b"5", b"x"]
)  # fmt: skip

#: Arbitrary bytes, biased towards SSE syntax, line ends and broken UTF-8.
byte_streams = st.lists(_interesting | st.binary(max_size=6), max_size=40).map(b"".join)


def split_points(data: bytes) -> st.SearchStrategy[list[int]]:
    """Sorted offsets at which to cut ``data`` into chunks."""
    return st.lists(st.integers(0, len(data)), max_size=12).map(sorted)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` cut at ``points`` (empty chunks included: a transport may hand them over)."""
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]
