"""Every recorded body decodes to the summary written by hand next to it.

Each fixture ``name.sse`` (or ``name.txt``, served as ``text/plain``) has a
``name.expected.json`` derived by reading the fixture, not by running the code. Every
body is decoded whole, byte by byte, and in 7-byte chunks, and must give the same answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.dialects import DIALECT_NAMES, StreamReader, detect
from harness.dialects.decode import decode_body
from harness.sse import Decoder

FIXTURES = Path(__file__).parent / "fixtures"
BODIES = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".sse", ".txt"))
SSE_BODIES = [p for p in BODIES if p.suffix == ".sse"]


def expected_for(body: Path) -> dict:
    return json.loads((FIXTURES / f"{body.stem}.expected.json").read_text("utf-8"))


def content_type_for(body: Path) -> str:
    return "text/plain; charset=utf-8" if body.suffix == ".txt" else "text/event-stream"


def test_every_fixture_has_an_expected_summary() -> None:
    assert len(BODIES) == 24
    assert all((FIXTURES / f"{p.stem}.expected.json").is_file() for p in BODIES)


@pytest.mark.parametrize("body", BODIES, ids=lambda p: p.stem)
def test_fixture_decodes_whole_to_its_expected_summary(body: Path) -> None:
    summary = decode_body(body.read_bytes(), content_type=content_type_for(body))
    assert summary == expected_for(body)


@pytest.mark.parametrize("chunk_size", [1, 7])
@pytest.mark.parametrize("body", SSE_BODIES, ids=lambda p: p.stem)
def test_fixture_decodes_the_same_in_small_chunks(body: Path, chunk_size: int) -> None:
    summary = decode_body(
        body.read_bytes(), content_type=content_type_for(body), chunk_size=chunk_size
    )
    assert summary == expected_for(body)


def test_plain_text_byte_by_byte_has_one_event_per_completed_character() -> None:
    body = FIXTURES / "plain.txt"
    expected = expected_for(body)
    summary = decode_body(body.read_bytes(), content_type=content_type_for(body), chunk_size=1)
    # A multi-byte character is held back until complete, so every character is one chunk.
    characters = len(expected["text"])
    assert characters < len(body.read_bytes())
    assert summary == {**expected, "sse_events": characters, "content_events": characters}


@pytest.mark.parametrize("body", SSE_BODIES, ids=lambda p: p.stem)
def test_fixture_first_event_is_detected_as_its_dialect(body: Path) -> None:
    events = Decoder().feed(body.read_bytes())
    assert detect(events[0]).name == expected_for(body)["dialect"]


@pytest.mark.parametrize("body", SSE_BODIES, ids=lambda p: p.stem)
def test_fixture_decodes_the_same_with_its_dialect_named(body: Path) -> None:
    expected = expected_for(body)
    assert expected["dialect"] in DIALECT_NAMES
    summary = decode_body(body.read_bytes(), dialect=expected["dialect"])
    assert summary == expected


def test_text_plain_content_type_chooses_the_text_dialect_without_detection() -> None:
    reader = StreamReader(content_type="text/plain")
    assert reader.dialect is not None
    assert reader.dialect.name == "text"
