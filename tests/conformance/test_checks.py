"""The checks on streams built byte by byte: each vendor habit, each framing slip and each
schema slip gets the verdict and the evidence it should. No network, no clock."""

from __future__ import annotations

import json

import pytest

import harness.conformance
from harness.conformance.captured import Ending, Purpose
from harness.conformance.catalogue import CATALOGUE, judge
from harness.conformance.model import AREAS, Severity, Status
from harness.sse import encode
from tests.conformance.builders import (
    captured,
    chat_stream,
    chunk,
    exchange,
    run,
)

BOM = b"\xef\xbb\xbf"


def test_a_clean_chat_stream_passes_every_schema_check() -> None:
    suite = captured(exchange(chat_stream()))
    report = judge(suite)
    assert report.dialect == "openai-chat"
    assert [(r.check.id, f.message) for r in report.results for f in r.findings] == []
    skipped = {r.check.id for r in report.results if r.status is Status.SKIP}
    assert "disconnect.stops" in skipped  # nothing was abandoned: nothing to verify


def test_the_catalogue_has_stable_unique_ids_and_one_line_rationales() -> None:
    ids = [check.id for check in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40
    for check in CATALOGUE:
        assert check.id.startswith(check.area + ".")
        assert check.rationale
        assert "\n" not in check.rationale
    assert {check.area for check in CATALOGUE} == set(AREAS)  # every area has checks


def test_the_public_surface_is_sorted() -> None:
    assert harness.conformance.__all__ == sorted(harness.conformance.__all__)
    for name in harness.conformance.__all__:
        assert hasattr(harness.conformance, name)


def test_a_check_cannot_report_above_its_severity() -> None:
    info = next(c for c in CATALOGUE if c.severity is Severity.INFO)
    with pytest.raises(ValueError, match="cannot report"):
        info.finding("x", severity=Severity.FAIL)


def test_events_ended_by_one_line_end_instead_of_two_are_caught() -> None:
    """The tutorial slip ``yield f"data: {x}\\n"``: no blank line, so no event at all."""
    lines = [b'data: {"content": "Hel"}\n', b'data: {"content": "lo"}\n', b"data: [DONE]\n"]
    report = judge(captured(exchange(lines), request="json"))
    assert report.dialect == "generic"
    found = {r.check.id: r.status for r in report.results}
    assert found["framing.no-events"] is Status.FAIL
    assert found["framing.unterminated-event"] is Status.FAIL
    assert report.failed


# vendor habits: INFO, with the vendor named


def test_usage_on_every_chunk_is_vllms_habit() -> None:
    suite = captured(exchange(chat_stream(usage_every=True)))
    result = run("openai.usage-every-chunk", suite)
    assert result.status is Status.INFO
    assert "vLLM" in result.findings[0].message
    assert run("openai.usage-on-finish-chunk", suite).status is Status.PASS
    assert run("openai.usage-consistent", suite).status is Status.PASS  # cumulative, rising


def test_the_role_on_every_delta_is_ollamas_habit() -> None:
    result = run("openai.role-repeated", captured(exchange(chat_stream(role_every=True))))
    assert result.status is Status.INFO
    assert "Ollama" in result.findings[0].message


def test_usage_on_the_finish_chunk_is_deepseeks_habit() -> None:
    suite = captured(exchange(chat_stream(usage_on_finish=True)))
    result = run("openai.usage-on-finish-chunk", suite)
    assert result.status is Status.INFO
    assert "DeepSeek" in result.findings[0].message


def test_comment_keepalives_are_noted_with_the_vendors_that_send_them() -> None:
    events = chat_stream()
    events.insert(1, b": OPENROUTER PROCESSING\n\n")
    result = run("framing.comments", captured(exchange(events)))
    assert result.status is Status.INFO
    assert "OpenRouter" in result.findings[0].message
    (evidence,) = result.findings[0].evidence
    assert evidence.offset == len(events[0])
    assert evidence.excerpt.startswith(b": OPENROUTER")


def test_usage_asked_but_never_sent_is_a_warning() -> None:
    suite = captured(exchange(chat_stream(), label="usage", purpose=Purpose.USAGE))
    assert run("openai.usage-chunk", suite).status is Status.WARN
    asked = captured(exchange(chat_stream(usage_chunk=True), purpose=Purpose.USAGE))
    assert run("openai.usage-chunk", asked).status is Status.PASS


# framing


def test_a_byte_order_mark_fails_and_the_sdk_loses_the_first_event() -> None:
    events = chat_stream()[1:]  # the first event carries text
    suite = captured(exchange([BOM + events[0], *events[1:]]))
    assert run("framing.bom", suite).status is Status.FAIL
    sdk = run("sdk.openai", suite)
    assert sdk.status is Status.FAIL
    assert "different text" in sdk.findings[0].message


def test_an_unterminated_last_event_fails_at_its_offset() -> None:
    events = chat_stream(done=False)
    cut = encode("[DONE]")[:-1]  # no blank line after it
    suite = captured(exchange([*events, cut]))
    result = run("framing.unterminated-event", suite)
    assert result.status is Status.FAIL
    (evidence,) = result.findings[0].evidence
    assert evidence.offset == sum(len(e) for e in events)
    assert evidence.excerpt == b"data: [DONE]\n"


def test_events_after_the_terminator_fail() -> None:
    events = [*chat_stream(), chunk({"content": "lost"})]
    result = run("framing.after-terminator", captured(exchange(events)))
    assert result.status is Status.FAIL
    assert b"lost" in result.findings[0].evidence[0].excerpt


def test_mixed_line_ends_are_noted_and_bare_cr_is_a_warning() -> None:
    events = chat_stream()
    mixed = [events[0].replace(b"\n", b"\r\n"), *events[1:]]
    result = run("framing.line-endings", captured(exchange(mixed)))
    assert result.status is Status.INFO
    assert "mixed" in result.findings[0].message
    bare = [e.replace(b"\n", b"\r") for e in events]
    assert run("framing.bare-cr", captured(exchange(bare))).status is Status.WARN
    assert run("sdk.openai", captured(exchange(bare))).status is Status.PASS  # the SDK copes


def test_a_line_without_its_field_name_is_flagged_where_it_is() -> None:
    events = chat_stream()
    raw = b'{"content": "forgot the data: prefix"}\n\n'
    result = run("framing.unknown-fields", captured(exchange([events[0], raw, *events[1:]])))
    assert result.status is Status.WARN
    assert result.findings[0].evidence[0].offset == len(events[0])


def test_invalid_utf8_fails_at_the_first_bad_byte() -> None:
    events = chat_stream()
    bad = events[1].replace(b"Hel", b"H\xffl")
    result = run("framing.utf8", captured(exchange([events[0], bad, *events[2:]])))
    assert result.status is Status.FAIL
    assert result.findings[0].evidence[0].offset == len(events[0]) + bad.index(b"\xff")


def test_a_character_cut_by_the_clients_own_close_is_not_invalid() -> None:
    body = b"".join(chat_stream(("caf\u00e9",))).replace(b"\\u00e9", "\u00e9".encode())
    cut = body[: body.index(b"\xc3") + 1]
    suite = captured(exchange([cut], purpose=Purpose.ABANDON, ending=Ending.ABANDONED))
    assert run("framing.utf8", suite).status is Status.PASS
    ended = captured(exchange([cut], label="long", purpose=Purpose.LONG))  # the server's end
    assert run("framing.utf8", ended).status is Status.FAIL


# the OpenAI schema


def test_finish_reason_twice_or_unknown_or_followed_by_content_is_a_warning() -> None:
    events = chat_stream()
    twice = [*events[:-1], chunk({}, "stop"), events[-1]]
    assert run("openai.finish-reason-once", captured(exchange(twice))).status is Status.WARN
    odd = chat_stream(finish="eos")
    assert run("openai.finish-reason-value", captured(exchange(odd))).status is Status.WARN
    late = [*events[:-1], chunk({"content": "late"}), events[-1]]
    assert run("openai.finish-reason-last", captured(exchange(late))).status is Status.WARN


def test_a_stream_without_finish_or_done_is_cut() -> None:
    suite = captured(exchange(chat_stream(finish=None, done=False)))
    result = run("openai.done", suite)
    assert result.status is Status.FAIL
    assert "cut" in result.findings[0].message
    assert run("openai.finish-reason-once", suite).status is Status.FAIL


def test_check_and_run_agree_that_every_choice_needs_its_finish_reason() -> None:
    second = {"index": 1, "delta": {"content": "b"}, "finish_reason": None}
    events = [chunk({"content": "a"}), chunk(choices=[second]), chunk({}, "stop")]
    cut = run("openai.done", captured(exchange(events)))
    assert cut.status is Status.FAIL
    assert "every choice" in cut.findings[0].message
    closed = {"index": 1, "delta": {}, "finish_reason": "stop"}
    complete = run("openai.done", captured(exchange([*events, chunk(choices=[closed])])))
    assert complete.status is Status.WARN  # complete without [DONE]: a habit, as run says


def test_a_changing_id_and_a_missing_role_are_warnings() -> None:
    events = chat_stream()
    changed = events[3].replace(b"chatcmpl-1", b"chatcmpl-2")
    result = run("openai.same-identity", captured(exchange([*events[:3], changed, *events[4:]])))
    assert result.status is Status.WARN
    assert "chatcmpl-1" in result.findings[0].evidence[0].detail
    assert run("openai.role-first", captured(exchange(events[1:]))).status is Status.WARN


def test_a_content_of_the_wrong_type_fails_the_chunk_fields() -> None:
    events = chat_stream()
    wrong = chunk({"content": 42})
    result = run("openai.chunk-fields", captured(exchange([events[0], wrong, *events[1:]])))
    assert result.status is Status.FAIL
    assert "content" in result.findings[0].message


def tool_stream(arguments: list[str]) -> list[bytes]:
    first = {"index": 0, "id": "call_1", "function": {"name": "get", "arguments": ""}}
    calls = [chunk({"role": "assistant", "tool_calls": [first]})]
    calls += [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in arguments
    ]
    return [*calls, chunk({}, "tool_calls"), encode("[DONE]")]


def test_tool_call_fragments_must_join_into_json() -> None:
    good = captured(exchange(tool_stream(['{"city": ', '"Paris"}'])))
    assert run("openai.tool-call-json", good).status is Status.PASS
    bad = captured(exchange(tool_stream(['{"city": ', '"Paris"'])))
    result = run("openai.tool-call-json", bad)
    assert result.status is Status.FAIL
    assert result.findings[0].evidence[0].detail == '{"city": "Paris"'


def test_an_error_event_the_sdk_cannot_see_fails_its_shape() -> None:
    events = chat_stream(finish=None, done=False)
    lost = encode(json.dumps({"message": "overloaded"}), event="error")
    result = run("errors.in-stream-shape", captured(exchange([*events, lost])))
    assert result.status is Status.FAIL
    assert "lost" in result.findings[0].message


# Anthropic


def anthropic_stream(*, names: bool = True, order_ok: bool = True) -> list[bytes]:
    def event(payload: dict) -> bytes:
        return encode(json.dumps(payload), event=payload["type"] if names else None)

    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "m",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    start = event(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    deltas = [
        event(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
        )
        for t in ("Hi", " there")
    ]
    blocks = [start, *deltas] if order_ok else [deltas[0], start, deltas[1]]
    return [
        event({"type": "message_start", "message": message}),
        event({"type": "ping"}),
        *blocks,
        event({"type": "content_block_stop", "index": 0}),
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            }
        ),
        event({"type": "message_stop"}),
    ]


def test_a_clean_anthropic_stream_passes_and_the_sdk_agrees() -> None:
    suite = captured(exchange(anthropic_stream()), request="anthropic")
    report = judge(suite)
    assert report.dialect == "anthropic"
    assert [r.check.id for r in report.results if r.findings] == []
    sdk = next(r for r in report.results if r.check.id == "sdk.anthropic")
    assert sdk.status is Status.PASS
    assert "same text" in sdk.note


def test_anthropic_events_without_their_names_fail_and_the_sdk_drops_them() -> None:
    suite = captured(
        exchange(anthropic_stream(names=False)), request="anthropic", dialect="anthropic"
    )
    assert run("anthropic.event-name", suite).status is Status.FAIL
    assert run("sdk.anthropic", suite).status is Status.FAIL


def test_a_delta_before_its_block_starts_breaks_the_order() -> None:
    suite = captured(exchange(anthropic_stream(order_ok=False)), request="anthropic")
    result = run("anthropic.event-order", suite)
    assert result.status is Status.FAIL
    assert "not open" in result.findings[0].message


def test_usage_beside_a_choice_that_finishes_nothing_is_litellms_habit_and_a_warn() -> None:
    events = chat_stream()
    usage = {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13}
    events.insert(-1, chunk({}, None, usage=usage))  # LiteLLM: choices [{"index": 0, ...}]
    suite = captured(exchange(events))
    result = run("openai.usage-without-empty-choices", suite)
    assert result.status is Status.WARN
    assert "LiteLLM" in result.findings[0].message
    assert "if not chunk.choices" in result.findings[0].message


def test_usage_on_its_own_chunk_or_on_the_finish_chunk_is_no_such_warn() -> None:
    for stream in (chat_stream(usage_chunk=True), chat_stream(usage_on_finish=True)):
        result = run("openai.usage-without-empty-choices", captured(exchange(stream)))
        assert result.status is Status.PASS
