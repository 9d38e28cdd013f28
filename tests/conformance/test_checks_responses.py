"""The Responses API checks on streams built event by event. No network, no clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.conformance.catalogue import judge
from harness.conformance.model import Status
from harness.sse import encode
from tests.conformance.builders import captured, exchange, run

ITEM = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant",
        "content": []}  # fmt: skip
PART = {"type": "output_text", "text": "", "annotations": []}
WHERE = {"item_id": "msg_1", "output_index": 0, "content_index": 0}


def _response(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "model": "m",
            "output": [], "usage": usage}  # fmt: skip


def events(texts: tuple[str, ...] = ("Hel", "lo", "!")) -> list[dict[str, Any]]:
    """The payloads of a clean stream, without their sequence numbers."""
    text = "".join(texts)
    usage = {"input_tokens": 4, "output_tokens": len(texts), "total_tokens": 4 + len(texts)}
    return [
        {"type": "response.created", "response": _response("in_progress", None)},
        {"type": "response.in_progress", "response": _response("in_progress", None)},
        {"type": "response.output_item.added", "output_index": 0, "item": ITEM},
        {"type": "response.content_part.added", **WHERE, "part": PART},
        *({"type": "response.output_text.delta", **WHERE, "delta": t} for t in texts),
        {"type": "response.output_text.done", **WHERE, "text": text},
        {"type": "response.content_part.done", **WHERE, "part": {**PART, "text": text}},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**ITEM, "status": "completed"},
        },
        {"type": "response.completed", "response": _response("completed", usage)},
    ]


def stream(payloads: list[dict[str, Any]], *, names: bool = True, numbers: bool = True):
    out = []
    for number, payload in enumerate(payloads):
        data = {**payload, "sequence_number": number} if numbers else payload
        out.append(encode(json.dumps(data), event=payload["type"] if names else None))
    return out


def suite(chunks: list[bytes]):
    return captured(exchange(chunks), request="openai-responses", dialect="openai-responses")


def test_a_clean_stream_passes_every_check() -> None:
    report = judge(suite(stream(events())))
    assert report.dialect == "openai-responses"
    assert [(r.check.id, f.message) for r in report.results for f in r.findings] == []
    found = {r.check.id: r.status for r in report.results if r.check.area == "responses"}
    assert found.pop("responses.tool-arguments-json") is Status.SKIP  # no tool call
    assert set(found.values()) == {Status.PASS}
    assert len(found) == 7


def test_data_that_is_not_typed_json_fails() -> None:
    chunks = stream(events())
    chunks.insert(5, encode('{"type": "response.output_text.delta", "delta": '))
    result = run("responses.json", suite(chunks))
    assert result.status is Status.FAIL
    assert result.findings[0].evidence[0].excerpt.startswith(b"data: {")


def test_events_without_their_names_are_a_warning() -> None:
    result = run("responses.event-name", suite(stream(events(), names=False)))
    assert result.status is Status.WARN
    assert "'response.created' event has no 'event:' line" in result.findings[0].message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p[1:], "the first event is 'response.in_progress'"),
        (lambda p: [*p[:2], *p[3:]], "for output item 0, which was never added"),
        (lambda p: [*p[:3], *p[4:]], "for content part 0 of item 0, never added"),
        (lambda p: [*p[:3], p[2], *p[3:]], "output item 0 is added twice"),
        (lambda p: [*p[:-3], p[-2], p[-3], p[-1]], "after its output_item.done"),
        (lambda p: [*p, p[4]], "'response.output_text.delta' after response.completed"),
    ],
    ids=["first", "item", "part", "twice", "after-done", "after-final"],
)
def test_events_out_of_order_fail_where_the_sdk_would_raise(change, expected: str) -> None:
    result = run("responses.event-order", suite(stream(change(events()))))
    assert result.status is Status.FAIL
    assert expected in result.findings[0].message


def test_a_reasoning_item_before_the_message_is_in_order() -> None:
    payloads = events()
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": []}
    where = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    shifted = [{**p, "output_index": 1} if "output_index" in p else p for p in payloads]
    payloads = [
        *shifted[:2],
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
        {"type": "response.reasoning_summary_text.delta", **where, "delta": "Hm."},
        {"type": "response.output_item.done", "output_index": 0, "item": reasoning},
        *shifted[2:],
    ]
    assert run("responses.event-order", suite(stream(payloads))).status is Status.PASS


def test_sequence_numbers_must_rise() -> None:
    chunks = stream(events())
    chunks[3] = chunks[3].replace(b'"sequence_number": 3', b'"sequence_number": 1')
    result = run("responses.sequence", suite(chunks))
    assert result.status is Status.WARN
    assert result.findings[0].evidence[0].detail == "response.content_part.added: 1 after 2"
    result = run("responses.sequence", suite(stream(events(), numbers=False)))
    assert "without an integer sequence_number" in result.findings[0].message


def test_a_stream_cut_before_its_final_event_fails() -> None:
    result = run("responses.final-event", suite(stream(events()[:-1])))
    assert result.status is Status.FAIL
    assert "cannot tell" in result.findings[0].message


def test_usage_missing_or_short_of_the_text_is_a_warning() -> None:
    payloads = events()
    payloads[-1] = {"type": "response.completed", "response": _response("completed", None)}
    result = run("responses.usage", suite(stream(payloads)))
    assert result.status is Status.WARN
    assert [f.message for f in result.findings] == [
        "response.completed carries no usage.input_tokens",
        "response.completed carries no usage.output_tokens",
    ]
    short = _response("completed", {"input_tokens": 4, "output_tokens": 1})
    payloads[-1] = {"type": "response.completed", "response": short}
    result = run("responses.usage", suite(stream(payloads)))
    assert result.findings[0].message == "usage says 1 output tokens, but 3 events carried text"


def test_a_final_text_other_than_its_deltas_is_a_warning() -> None:
    payloads = events()
    payloads[7] = {**payloads[7], "text": "Hello?"}
    result = run("responses.text-done", suite(stream(payloads)))
    assert result.status is Status.WARN
    assert result.findings[0].evidence[0].detail == "done: 6 characters, deltas: 6"
    payloads[7] = {**payloads[7], "text": "Hello"}
    detail = run("responses.text-done", suite(stream(payloads))).findings[0].evidence[0].detail
    assert detail == "done: 5 characters, deltas: 6"


def test_function_call_arguments_must_join_into_json() -> None:
    call = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "weather",
            "arguments": ""}  # fmt: skip
    where = {"item_id": "fc_1", "output_index": 0}
    payloads = [
        events()[0],
        {"type": "response.output_item.added", "output_index": 0, "item": call},
        *(
            {"type": "response.function_call_arguments.delta", **where, "delta": d}
            for d in ('{"city": ', '"Par')
        ),
        {"type": "response.output_item.done", "output_index": 0, "item": call},
        {
            "type": "response.completed",
            "response": _response("completed", {"input_tokens": 4, "output_tokens": 3}),
        },
    ]
    result = run("responses.tool-arguments-json", suite(stream(payloads)))
    assert result.status is Status.FAIL
    assert "weather" in result.findings[0].message
