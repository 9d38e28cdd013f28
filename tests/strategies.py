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


# -- OpenAI chat chunks, well and badly typed (the openai-chat fast path's inputs) ------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
chat_deltas = st.dictionaries(
    st.sampled_from(["content", "role", "refusal", "reasoning_content", "reasoning",
                     "tool_calls", "function_call", "other"]),
    st.one_of(st.text(max_size=4), json_scalars),
    max_size=4,
)  # fmt: skip
chat_choices = st.fixed_dictionaries(
    {"delta": st.one_of(chat_deltas, json_scalars)},
    optional={"index": json_scalars, "finish_reason": st.one_of(st.text(max_size=4), json_scalars),
              "logprobs": json_scalars},
)  # fmt: skip
_likely_choices = st.fixed_dictionaries(
    {"index": st.sampled_from([0, 0, 1, None]),
     "delta": st.dictionaries(
         st.sampled_from(["content", "role", "refusal", "reasoning_content", "tool_calls"]),
         st.one_of(st.none(), st.text(max_size=4)),
         max_size=3,
     )},
    optional={"finish_reason": st.sampled_from([None, "stop"]), "logprobs": st.none()},
)  # fmt: skip
#: Chat chunks: half of them as servers send them, half with anything in any field.
chat_chunks = st.one_of(
    st.fixed_dictionaries(
        {"choices": st.lists(_likely_choices, min_size=1, max_size=1)},
        optional={"usage": st.none(), "error": st.none(), "id": st.text(max_size=3)},
    ),
    st.fixed_dictionaries(
        {"choices": st.one_of(st.lists(chat_choices, max_size=2), json_scalars)},
        optional={"usage": json_scalars, "error": json_scalars, "id": st.text(max_size=3)},
    ),
)

#: Histogram edges (seconds, ascending, distinct) and observations to put in them.
histogram_edges = st.lists(
    st.floats(min_value=1e-4, max_value=100, allow_nan=False), min_size=1, max_size=30, unique=True
).map(sorted)
observations = st.lists(
    st.floats(min_value=0, max_value=200, allow_nan=False), min_size=1, max_size=300
)
#: Seeds of a run (what ``--seed`` takes).
run_seeds = st.integers(min_value=0, max_value=2**32)
#: ``uniform:a,b`` bounds, a <= b.
uniform_bounds = st.tuples(
    st.integers(min_value=1, max_value=5000), st.integers(min_value=0, max_value=5000)
).map(lambda pair: (pair[0], pair[0] + pair[1]))
#: Means and standard deviations of a token length distribution.
length_means = st.floats(min_value=1, max_value=10_000)
length_deviations = st.floats(min_value=0, max_value=10_000)
