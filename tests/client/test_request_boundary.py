"""Whatever one request meets stays inside that request: an exception from a dialect or a
transport is its recorded error and the run goes on; the secrets the run knows are
redacted from every string a server chose, even where an excerpt cuts them."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.dialects import StreamReader, get
from harness.dialects.base import parse_json
from harness.dialects.openai_chat import OpenAIChat
from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.recorder import error_body_message, redact, redact_record
from harness.load.runner import Runner
from harness.load.schedule import Bounds, ClosedLoop
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.sse import encode
from tests.client.scripted import ScriptedTransport

KEY = "sk-boundary-0123456789abcdef"


def chat_body(*texts: str) -> list[object]:
    chunks = [{"choices": [{"index": 0, "delta": {"content": t}}]} for t in texts]
    return [*(encode(json.dumps(c)) for c in chunks), encode("[DONE]")]


def run_with(transport: ScriptedTransport, monkeypatch: pytest.MonkeyPatch, requests: int):
    monkeypatch.setattr("harness.load.runner.make_transport", lambda *a, **k: transport)
    config = RunConfig(
        spec=RequestSpec(url="http://127.0.0.1:9/v1/chat/completions", api_key=KEY),
        dialect="openai-chat",
        profile=ClosedLoop(concurrency=1, ramp_up_s=0),
        bounds=Bounds(requests=requests),
    )
    records: list[RequestRecord] = []
    asyncio.run(Runner(config, records.append).run())
    return records


def test_an_unexpected_exception_in_a_dialect_is_recorded_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = iter(range(10**6))

    def interpret(self: OpenAIChat, event: object) -> tuple[()]:
        if next(calls) == 0:
            raise TypeError("a bug in a dialect")
        return original(self, event)

    original = OpenAIChat.interpret
    monkeypatch.setattr(OpenAIChat, "interpret", interpret)
    records = run_with(ScriptedTransport(body=chat_body("a", "b")), monkeypatch, requests=3)
    assert len(records) == 3
    first, *rest = records
    assert first.error_kind is ErrorKind.PROTOCOL
    assert "TypeError: a bug in a dialect" in (first.error_message or "")
    assert all(r.outcome is Outcome.OK for r in rest)


def test_an_unexpected_exception_from_a_transport_is_the_requests_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(ScriptedTransport):
        def stream(self, request: object) -> object:
            raise RuntimeError(f"a transport bug that names {KEY}")

    records = run_with(Broken(), monkeypatch, requests=2)
    assert [r.error_kind for r in records] == [ErrorKind.PROTOCOL] * 2
    assert all("RuntimeError" in (r.error_message or "") for r in records)
    assert all(KEY not in (r.error_message or "") for r in records)


def test_json_nested_too_deeply_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json("[" * 100_000)


def test_deep_json_in_a_stream_is_a_bad_event_not_a_crash() -> None:
    reader = StreamReader(get("openai-chat"))
    reader.feed(encode("[" * 100_000))
    assert len(reader.errors) == 1
    assert "nested too deeply" in str(reader.errors[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY} here", "key [redacted] here"),
        (f"cut at {KEY[:10]}...", "cut at [redacted]..."),
        (f"...{KEY[-9:]} and on", "...[redacted] and on"),
        (f"{KEY[:3]}...", f"{KEY[:3]}..."),  # too short a piece to tell from any text
    ],
)
def test_redact_replaces_a_secret_and_the_pieces_an_excerpt_cut(text: str, expected: str) -> None:
    assert redact(text, [KEY]) == expected


def test_an_error_body_cut_in_the_middle_of_a_key_keeps_no_piece_of_it() -> None:
    body = b"x" * 2040 + KEY.encode()
    message = error_body_message(401, body, [KEY])
    assert KEY[:8] not in message
    assert message.endswith("...")


def test_redact_record_covers_every_string_a_server_chose() -> None:
    record = RequestRecord(
        request_id="r",
        content_type=f"text/event-stream; k={KEY}",
        finish_reason=KEY,
        usage={"completion_tokens": 3, "nested": [{"note": KEY}], KEY: 1},
        error_message=f"the server said {KEY}",
    )
    redact_record(record, [KEY])
    assert KEY not in record.to_json()
    assert record.usage == {
        "completion_tokens": 3,
        "nested": [{"note": "[redacted]"}],
        "[redacted]": 1,
    }
