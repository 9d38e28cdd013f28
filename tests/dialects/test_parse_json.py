"""``parse_json`` reads every text exactly as ``json.loads`` does, faster where it can."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.dialects.base import JSONTooDeep, parse_json

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@given(_VALUES, st.booleans())
def test_any_json_text_reads_as_json_loads_reads_it(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert _same(parse_json(text), json.loads(text))


@given(st.text(alphabet='{}[]",:0123456789.eE+-truefalsn \\u\ud800x', max_size=30))
def test_any_text_reads_or_fails_as_json_loads_does(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError as exc:  # the same error, with the same message
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            parse_json(text)
    else:
        assert _same(parse_json(text), expected)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        "NaN",
        "-Infinity",
        "1e400",
        '"\\ud800"',
        "123456789012345678901234567890",
    ],
)
def test_what_msgspec_refuses_or_reads_differently_still_reads_as_json_loads(text: str) -> None:
    expected = json.loads(text)
    actual = parse_json(text)
    assert _same(actual, expected) or (math.isnan(actual) and math.isnan(expected))


def test_nesting_too_deep_is_refused_as_bad_json_where_json_loads_runs_out_of_stack() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(text)
    with pytest.raises(JSONTooDeep) as caught:
        parse_json(text)
    assert isinstance(caught.value, ValueError)
