"""Records from locust users to one run folder: batches, clocks, the collector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis.summary import Window, summarize
from harness.locust.live import LiveBoard
from harness.locust.records import ClockBase, RecordCollector, decode_batch, encode_batch
from harness.record import ErrorKind, Outcome, RequestRecord


def record(n: int, *, start_ns: int = 0, ttft_ms: float = 50.0, ok: bool = True) -> RequestRecord:
    sent = start_ns + n * 1_000_000
    first = sent + int(ttft_ms * 1e6)
    tokens = [first + k * 10_000_000 for k in range(5)]
    r = RequestRecord(request_id=f"w-0-{n}", t_sent_ns=sent, t_headers_ns=sent + 1_000_000,
                      t_first_byte_ns=first, t_first_event_ns=first, t_first_token_ns=first,
                      t_end_ns=tokens[-1], token_times_ns=tokens, events=6, output_tokens=5,
                      dialect="openai-chat", done_sentinel=True)  # fmt: skip
    if not ok:
        r.outcome, r.error_kind, r.error_message = Outcome.ERROR, ErrorKind.TRUNCATED, "cut off"
    return r


def test_a_batch_from_this_machine_keeps_its_timestamps() -> None:
    here = ClockBase("boot-a", 1_000)
    sent = [record(n) for n in range(3)]
    data = encode_batch(sent, here, "w1")
    assert json.loads(json.dumps(data)) == data  # plain values, for locust's msgpack
    assert [r.to_json() for r in decode_batch(data, here)] == [r.to_json() for r in sent]


def test_a_batch_from_another_machine_moves_onto_this_clock() -> None:
    theirs, ours = ClockBase("boot-b", 5_000_000), ClockBase("boot-a", 2_000_000)
    original = record(1, start_ns=10_000_000_000)
    (moved,) = decode_batch(encode_batch([original], theirs, "w2"), ours)
    shift = 3_000_000  # their wall clock is that much further ahead of their monotonic clock
    assert moved.t_sent_ns == original.t_sent_ns + shift
    assert moved.t_first_token_ns == original.t_first_token_ns + shift
    assert moved.token_times_ns == [t + shift for t in original.token_times_ns]
    assert moved.t_scheduled_ns is None  # unknown times stay unknown
    assert moved.ttft_s == original.ttft_s


def test_the_collector_writes_the_run_files_from_the_raw_records(tmp_path: Path) -> None:
    out = tmp_path / "run"
    collector = RecordCollector(out, board=LiveBoard())
    records = [record(n, ttft_ms=10 + n) for n in range(40)] + [record(40, ok=False)]
    collector.expected.update({"w1", "w2"})
    collector.add(records[:20], node="w1")
    collector.add(records[20:], node="w2")
    collector.node_done("w1", {"cpu_s": 0.5})
    assert collector.waiting_for() == {"w2"}
    collector.node_done("w2", {"cpu_s": 0.25})
    assert collector.waiting_for() == set()
    result = collector.finish({"url": "http://127.0.0.1:1/v1/chat/completions"}, {"workers": 2})
    assert collector.finished
    collector.add([record(99)], node="w1")  # too late: counted, not written
    assert collector.late == 1

    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(records)
    summary = json.loads((out / "summary.json").read_text())
    exact = summarize(records, window=Window.around(records))
    assert summary["requests"] == 41
    assert summary["errors"] == 1
    assert summary["ttft_s"] == pytest.approx(exact["ttft_s"])
    assert summary["ttft_s"]["p50"] == pytest.approx(0.0295)  # exact, not a histogram bucket
    assert summary["locust"]["client_cpu_s"] == pytest.approx(0.75)
    assert summary["locust"]["nodes"] == ["w1", "w2"]
    assert summary["locust"]["workers"] == 2
    assert (out / "report.md").read_text().startswith("# ")
    assert result.summary["requests"] == 41
