"""The parser benchmark measures both decoders on the same input and checks their counts."""

from __future__ import annotations

from harness.calibration.parser_bench import chat_stream, run_parser_bench
from harness.sse import Decoder


def test_benchmark_stream_is_a_valid_chat_stream_of_the_asked_size() -> None:
    events = chat_stream(50_000)
    assert 50_000 <= sum(map(len, events)) < 51_000
    decoded = [e for chunk in events for e in Decoder().feed(chunk)]
    assert decoded[-1].data == "[DONE]"
    assert '"chat.completion.chunk"' in decoded[0].data


def test_benchmark_measures_every_case_for_both_decoders() -> None:
    measurements = list(run_parser_bench(rounds=1, stream_mb=0.05, bytewise_kb=2))
    assert {(m.decoder, m.case.split(",")[1].strip()) for m in measurements} == {
        (decoder, case)
        for decoder in ("harness.sse", "httpx-sse")
        for case in ("one event per feed", "64 KiB feeds", "1-byte feeds")
    }
    for m in measurements:
        assert m.events > 100 if "MB" in m.case else m.events > 5
        assert m.best_s > 0
        assert m.events_per_s == m.events / m.best_s
