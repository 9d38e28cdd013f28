"""``sse-harness decode`` on hostile bodies: JSON nested too deeply, lone surrogates and
control characters, a reader that fails. It always prints one JSON summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.dialects import DIALECT_NAMES, StreamReader
from harness.dialects.decode import MAX_DEPTH, NESTED, decode_body, render_summary
from harness.sse import encode

DEEP = encode("[" * 100_000)
CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chat(delta: dict[str, Any], **extra: Any) -> bytes:
    choices = [{"index": 0, "delta": delta, "finish_reason": None}]
    return encode(json.dumps({**CHUNK, "choices": choices, **extra}))


def decoded(body: bytes, capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str) -> Any:
    """What ``sse-harness decode`` prints for ``body``, read back as JSON."""
    path = tmp_path / "body.sse"
    path.write_bytes(body)
    assert main(["decode", str(path), *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("dialect", ["auto", *(d for d in DIALECT_NAMES if d != "text")])
def test_json_nested_too_deeply_is_a_protocol_error(
    dialect: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = DEEP + chat({"content": "after"}) + encode("[DONE]")
    summary = decoded(body, capsys, tmp_path, "--dialect", dialect)
    assert summary["sse_events"] == 3
    assert summary["protocol_errors"]
    assert "[[[[" in summary["protocol_errors"][0]  # which event: an excerpt of it
    if dialect == "openai-chat":
        assert summary["text"] == "after"  # the events after it are read


def test_lone_surrogates_and_controls_are_printed_as_json_escapes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = "a\ud800b\x1b[2J\x00\x9b\u202e"
    body = chat({"content": text}) + encode("[DONE]")
    path = tmp_path / "body.sse"
    path.write_bytes(body)
    assert main(["decode", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\\ud800" in out
    assert "\\u001b" in out
    assert "\\u009b" in out
    assert "\\u202e" in out
    assert json.loads(out)["text"] == text  # the same text for a JSON reader


def test_values_nested_deeper_than_the_bound_are_summarised() -> None:
    usage: Any = {"prompt_tokens": 1}
    for _ in range(MAX_DEPTH + 10):
        usage = {"nested": usage}
    body = chat({"content": "hi"}, usage=usage) + encode("[DONE]")
    summary = decode_body(body)
    depth, value = 0, summary["usage"]
    while isinstance(value, dict):
        depth, value = depth + 1, value["nested"]
    assert value == NESTED
    assert depth == MAX_DEPTH
    assert json.loads(render_summary(summary))["usage"]


def test_a_reader_that_fails_is_a_protocol_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    feed = StreamReader.feed

    def failing(self: StreamReader, data: bytes) -> Any:
        calls.append(data)
        if len(calls) > 1:
            raise RecursionError("maximum recursion depth exceeded")
        return feed(self, data)

    monkeypatch.setattr(StreamReader, "feed", failing)
    body = chat({"content": "one"}) + chat({"content": "two"})
    summary = decode_body(body, chunk_size=len(chat({"content": "one"})))
    assert summary["text"] == "one"
    assert summary["truncated"] is True
    assert summary["protocol_errors"] == [
        f"could not read the body from byte {len(calls[0])} on "
        "(RecursionError: maximum recursion depth exceeded)"
    ]
