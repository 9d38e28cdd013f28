"""The recorder stamps a record the same way whatever the chunking, and says when it stopped."""

from __future__ import annotations

import dataclasses
import json
from unittest import mock

import pytest

from harness.dialects import StreamReader, get
from harness.load.recorder import StreamRecorder, conclude
from harness.record import Outcome, RequestRecord
from harness.sse import encode

ROLE = '{"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}]}'
FINISH = '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
USAGE = '{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}'
WORDS = ["Hi", " there", " café"]
EVENTS = [
    encode(ROLE),
    *(encode(json.dumps({"choices": [{"index": 0, "delta": {"content": w}}]})) for w in WORDS),
    encode(FINISH),
    encode(USAGE),
    encode("[DONE]"),
]
BODY = b"".join(EVENTS)


def record_of(chunks: list[bytes], **options: object) -> tuple[RequestRecord, StreamRecorder]:
    """The record of ``chunks``, the n-th arriving at n (the end at len + 1)."""
    record = RequestRecord(request_id="r")
    reader = StreamReader(get("openai-chat"))
    recorder = StreamRecorder(record, reader, **options)  # type: ignore[arg-type]
    for arrival_ns, chunk in enumerate(chunks, 1):
        if recorder.feed(arrival_ns, chunk):
            break
    else:
        recorder.close(len(chunks) + 1)
    conclude(record, reader, reader.result(), len(chunks) + 1)
    return record, recorder


def per_event_record() -> RequestRecord:
    return record_of(EVENTS)[0]


def test_one_event_per_chunk_stamps_each_event_with_its_arrival() -> None:
    record = per_event_record()
    assert record.outcome is Outcome.OK
    assert record.events == len(EVENTS)
    assert record.token_times_ns == [2, 3, 4]
    assert record.t_first_event_ns == 1
    assert record.t_first_token_ns == record.t_first_answer_ns == 2
    assert record.t_end_ns == len(EVENTS)  # the [DONE] event's arrival
    assert (record.output_tokens, record.text_chars) == (3, len("".join(WORDS)))
    assert record.done_sentinel


@pytest.mark.parametrize("size", [1, 2, 7, 64, len(BODY)])
def test_any_chunking_gives_the_same_record_but_for_the_stamps(size: int) -> None:
    chunks = [BODY[i : i + size] for i in range(0, len(BODY), size)]
    record = record_of(chunks)[0]
    unstamped = {"token_times_ns", "t_first_byte_ns", "t_first_event_ns", "t_first_token_ns",
                 "t_first_answer_ns", "t_end_ns"}  # fmt: skip
    for field in dataclasses.fields(RequestRecord):
        if field.name not in unstamped:
            assert getattr(record, field.name) == getattr(per_event_record(), field.name)
    assert len(record.token_times_ns) == 3
    assert record.token_times_ns == sorted(record.token_times_ns)


def test_the_first_token_is_announced_once() -> None:
    calls: list[int] = []
    record = RequestRecord(request_id="r")
    recorder = StreamRecorder(
        record,
        StreamReader(get("openai-chat")),
        on_first_token=lambda: calls.append(len(record.token_times_ns)),
    )
    for arrival_ns, event in enumerate(EVENTS, 1):
        recorder.feed(arrival_ns, event)
    assert calls == [1]  # called when the first token was stamped, and only then


def test_a_second_terminator_does_not_move_the_end() -> None:
    record, _ = record_of([*EVENTS, encode("[DONE]")])
    assert record.t_end_ns == len(EVENTS)


def test_the_recorder_says_when_it_stopped_the_read() -> None:
    _, whole_recorder = record_of(EVENTS)
    assert not whole_recorder.stopped
    left, left_recorder = record_of(EVENTS, abandon_after_tokens=2)
    assert left_recorder.stopped
    assert left.outcome is Outcome.ABANDONED
    assert left.token_times_ns == [2, 3]
    cut, cut_recorder = record_of(EVENTS, max_events=2)
    assert cut_recorder.stopped
    assert cut.outcome is Outcome.CUT


@pytest.mark.parametrize("size", [None, 1, 64])
def test_the_fast_path_records_exactly_as_the_full_reading(size: int | None) -> None:
    # one event per chunk takes StreamReader.read_plain for the content events
    stream = [*EVENTS, encode('{"choices":[{"index":1,"delta":{"content":"b"}}]}'), *EVENTS]
    body = b"".join(stream)
    chunks = stream if size is None else [body[i : i + size] for i in range(0, len(body), size)]
    read_plain = StreamReader.read_plain
    taken: list[str] = []

    def counted(reader: StreamReader, data: bytes) -> str | None:
        text = read_plain(reader, data)
        if text is not None:
            taken.append(text)
        return text

    with mock.patch.object(StreamReader, "read_plain", counted):
        fast, fast_recorder = record_of(chunks)
    assert len(taken) == (8 if size is None else 0)  # content events, and a role chunk
    with mock.patch.object(StreamReader, "read_plain", return_value=None):
        full, full_recorder = record_of(chunks)
    assert fast == full
    assert fast_recorder.reader.result() == full_recorder.reader.result()
    assert fast_recorder.reader.events == full_recorder.reader.events
    assert fast_recorder.reader.content_events == full_recorder.reader.content_events


def test_the_fast_path_stops_where_the_full_reading_does() -> None:
    for options in ({"abandon_after_tokens": 2}, {"max_events": 3}):
        fast, _ = record_of(EVENTS, **options)
        with mock.patch.object(StreamReader, "read_plain", return_value=None):
            full, _ = record_of(EVENTS, **options)
        assert fast == full


def test_plain_text_is_read_only_from_a_lone_data_event() -> None:
    reader = StreamReader(get("openai-chat"))
    assert reader.read_plain(EVENTS[1]) is None  # the first feed may start with a BOM
    reader.feed(EVENTS[0])
    assert reader.read_plain(EVENTS[1]) == "Hi"
    assert reader.read_plain(EVENTS[1] + EVENTS[2]) is None  # two events
    assert reader.read_plain(b"event: x\n" + EVENTS[1]) is None  # a field besides data
    assert reader.read_plain(EVENTS[-3]) is None  # the finish chunk adds more than text
    assert reader.read_plain(EVENTS[-1]) is None  # [DONE]
    reader.feed(b"data: {")  # an event pending: the next lone event is not alone
    assert reader.read_plain(EVENTS[2]) is None
    assert reader.events == 2


def test_an_endless_stream_is_cut_at_the_default_bound_on_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("harness.load.recorder.DEFAULT_MAX_EVENTS", 40)
    chunk = encode(json.dumps({"choices": [{"index": 0, "delta": {"content": "x"}}]}))
    record, recorder = record_of([EVENTS[0], *[chunk] * 1000])
    assert record.outcome is Outcome.CUT
    assert record.events == 40
    assert len(record.token_times_ns) == 39  # the role-only first event bears no token
    assert recorder.stopped
