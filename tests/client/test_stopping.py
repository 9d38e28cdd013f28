"""Judging from a sampled gauge whether a server stopped the streams a client abandoned.

Synthetic runs: streams with a 50 ms TTFT and ITL, abandoned after two tokens, and a
server gauge sampled every 100 ms that counts each stream from just after it was sent
to the moment the server stopped it (at its close, or at its natural end).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from harness.analysis.disconnects import summarize_disconnects
from harness.load.stopping import (
    STILL_COUNTED_NS,
    Fall,
    Sample,
    judge_by_gauge,
    judge_fall,
    natural_end_ns,
    pace_of,
    settling,
    watch_until_ns,
)
from harness.record import Outcome, RequestRecord, TokenSource

MS = 1_000_000
TTFT, ITL = 50 * MS, 50 * MS
TOKENS = 40  # a whole stream: ends TTFT + 39 ITL = 2.0 s after it was sent


def abandoned(i: int, sent_ms: int = 0, tokens: int = 2) -> RequestRecord:
    sent = sent_ms * MS
    times = [sent + TTFT + k * ITL for k in range(tokens)]
    return RequestRecord(
        request_id=f"a{i}", t_sent_ns=sent, t_headers_ns=sent + 2 * MS,
        t_first_token_ns=times[0], token_times_ns=times, output_tokens=tokens,
        outcome=Outcome.ABANDONED, t_close_ns=times[-1] + MS, t_end_ns=times[-1] + MS,
    )  # fmt: skip


def whole(
    i: int, sent_ms: int = 0, tokens: int = TOKENS, usage: int | None = None
) -> RequestRecord:
    sent = sent_ms * MS
    times = [sent + TTFT + k * ITL for k in range(tokens)]
    return RequestRecord(
        request_id=f"w{i}", t_sent_ns=sent, t_headers_ns=sent + 2 * MS,
        t_first_token_ns=times[0], token_times_ns=times, t_end_ns=times[-1] + MS,
        output_tokens=usage or tokens,
        token_source=TokenSource.USAGE if usage else TokenSource.EVENTS,
    )  # fmt: skip


def natural_end(record: RequestRecord, tokens: int = TOKENS) -> int:
    return record.t_sent_ns + TTFT + (tokens - 1) * ITL


def keeps_generating(record: RequestRecord) -> int:
    if record.outcome is Outcome.ABANDONED:
        return natural_end(record)
    return record.token_times_ns[-1]


def stops(record: RequestRecord) -> int:
    if record.outcome is Outcome.ABANDONED:
        return record.t_close_ns + 30 * MS  # noticed before its next token
    return record.token_times_ns[-1]


def gauge(
    records: Sequence[RequestRecord],
    server_end: Callable[[RequestRecord], int],
    *,
    baseline: float = 0.0,
    until_ms: int = 3000,
    every_ms: int = 100,
) -> list[Sample]:
    """The server's count of running streams, read every ``every_ms``."""
    samples = []
    for t in range(0, until_ms * MS, every_ms * MS):
        running = sum(1 for r in records if r.t_sent_ns + 5 * MS <= t < server_end(r))
        samples.append(Sample(t, baseline + running, 2 * MS))
    return samples


def test_the_rule_for_one_stream_is_checks() -> None:
    second = 1000 * MS
    assert judge_fall(100 * MS, second) is Fall.STOPPED
    assert judge_fall(499 * MS, second) is Fall.STOPPED
    assert judge_fall(500 * MS, second) is Fall.KEPT_ON  # fell only halfway to its end
    assert judge_fall(None, second) is Fall.KEPT_ON  # never fell while watched
    assert judge_fall(100 * MS, 400 * MS) is Fall.UNDECIDED  # too little left to tell
    assert judge_fall(100 * MS, None) is Fall.UNDECIDED


def test_a_server_that_generates_on_stopped_none() -> None:
    records = [abandoned(i, sent_ms=10 * i) for i in range(4)]
    judged = judge_by_gauge(records, gauge(records, keeps_generating), baseline=0,
                            max_tokens=TOKENS)  # fmt: skip
    assert (judged["judged"], judged["stopped"], judged["kept_generating"]) == (4, 0, 4)
    assert "kept generating for 4 of the 4" in judged["verdict"]
    # the evidence: the gauge fell back when the streams would have ended anyway
    back = judged["back_to_baseline_after_last_close_s"]
    assert back == pytest.approx(judged["would_have_ended_after_last_close_s"], abs=0.15)
    assert judged["remaining_s"]["p50"] == pytest.approx(1.9, abs=0.05)


def test_a_server_that_stops_at_the_close_stopped_them_all() -> None:
    records = [abandoned(i, sent_ms=10 * i) for i in range(4)]
    judged = judge_by_gauge(records, gauge(records, stops), baseline=0, max_tokens=TOKENS)
    assert (judged["judged"], judged["stopped"], judged["kept_generating"]) == (4, 4, 0)
    assert judged["fell_after_close_s"]["max"] < 0.5
    assert "stopped all 4" in judged["verdict"]


def test_a_server_that_stops_some_is_counted_stream_by_stream() -> None:
    records = [abandoned(i, sent_ms=10 * i) for i in range(6)]

    def some(record: RequestRecord) -> int:
        stopping = record.request_id in ("a0", "a3", "a4")
        return stops(record) if stopping else keeps_generating(record)

    judged = judge_by_gauge(records, gauge(records, some), baseline=0, max_tokens=TOKENS)
    assert (judged["stopped"], judged["kept_generating"]) == (3, 3)
    assert "kept generating for 3 of the 6" in judged["verdict"]


def test_streams_that_stay_and_other_traffic_are_set_aside() -> None:
    # half the streams read to the end beside the abandoned ones; the gauge also counts
    # 5 requests of someone else's throughout
    records = [abandoned(i, sent_ms=20 * i) for i in range(4)]
    records += [whole(i, sent_ms=20 * i + 10) for i in range(4)]
    for server, stopped in ((keeps_generating, 0), (stops, 4)):
        samples = gauge(records, server, baseline=5)
        judged = judge_by_gauge(records, samples, baseline=5, max_tokens=TOKENS)
        assert (judged["judged"], judged["stopped"]) == (4, stopped), server.__name__


def test_a_stream_that_ends_a_little_before_its_estimate_is_no_stop() -> None:
    # the server is 20% faster than the ITL the client saw: its streams end early, but
    # well after half the time they had left
    records = [abandoned(i, sent_ms=10 * i) for i in range(4)]

    def faster(record: RequestRecord) -> int:
        close = record.t_close_ns
        return close + int(0.8 * (natural_end(record) - close))

    judged = judge_by_gauge(records, gauge(records, faster), baseline=0, max_tokens=TOKENS)
    assert (judged["stopped"], judged["kept_generating"]) == (0, 4)


def test_streams_with_too_little_left_cannot_be_told() -> None:
    records = [abandoned(i, sent_ms=10 * i) for i in range(3)]
    judged = judge_by_gauge(records, gauge(records, stops), baseline=0, max_tokens=8)
    assert (judged["judged"], judged["undecided"]) == (0, 3)
    assert judged["undecided_why"] == {"less than 0.5 s left at the close": 3}
    assert "cannot tell" in judged["verdict"]


def test_without_a_known_end_a_stream_still_counted_after_a_second_was_kept_on() -> None:
    records = [abandoned(i) for i in range(2)]  # each still had about 1.9 s to run
    judged = judge_by_gauge(records, gauge(records, keeps_generating), baseline=0)
    assert (judged["judged"], judged["kept_generating"]) == (2, 2)
    assert "still counted them 1 s after their close" in judged["verdict"]


def test_without_a_known_end_a_quick_fall_cannot_be_told_from_a_natural_end() -> None:
    records = [abandoned(i) for i in range(2)]
    judged = judge_by_gauge(records, gauge(records, stops), baseline=0)
    why = "it fell soon after the close, and when it would have ended is unknown"
    assert judged["undecided_why"] == {why: 2}
    assert judged["judged"] == 0
    assert "cannot tell" in judged["verdict"]


def test_a_gauge_not_read_to_the_end_of_the_window_decides_nothing() -> None:
    records = [abandoned(i) for i in range(2)]
    samples = gauge(records, keeps_generating, until_ms=400)  # stops reading at 0.4 s
    judged = judge_by_gauge(records, samples, baseline=0, max_tokens=TOKENS)
    assert judged["undecided_why"] == {"the gauge was not read to the end of its window": 2}
    # a stop seen inside the window needs nothing later
    judged = judge_by_gauge(records, gauge(records, stops, until_ms=400), baseline=0,
                            max_tokens=TOKENS)  # fmt: skip
    assert judged["stopped"] == 2


def test_the_natural_end_comes_from_max_tokens_or_the_typical_whole_stream() -> None:
    cut = abandoned(0)
    assert natural_end_ns(cut, pace_of([cut], max_tokens=TOKENS)) == natural_end(cut)
    # whole streams shorter than max_tokens: their length is the better guess
    short = [whole(i, tokens=20) for i in range(3)]
    pace = pace_of([cut, *short], max_tokens=TOKENS)
    assert (pace.events, pace.events_from) == (20, "typical output")
    assert natural_end_ns(cut, pace) == natural_end(cut, tokens=20)
    # usage says 2 tokens per event: 40 tokens asked are 20 events
    paired = [whole(i, tokens=30, usage=60) for i in range(3)]
    pace = pace_of([cut, *paired], max_tokens=TOKENS)
    assert (pace.events, pace.events_from) == (20, "max_tokens")
    # without a token, the run's median TTFT stands in
    silent = RequestRecord(request_id="s", t_sent_ns=0, outcome=Outcome.ABANDONED,
                           t_close_ns=10 * MS)  # fmt: skip
    assert natural_end_ns(silent, pace_of([cut, silent], max_tokens=TOKENS)) == natural_end(silent)


def test_the_gauge_is_watched_until_the_last_stream_would_have_ended() -> None:
    records = [abandoned(0), abandoned(1, sent_ms=300), whole(2)]
    assert watch_until_ns(records, max_tokens=TOKENS) == natural_end(records[1])
    # no end known: watched for STILL_COUNTED_NS after the last close
    last_close = max(r.t_close_ns for r in records[:2])
    assert watch_until_ns(records[:2], max_tokens=None) == last_close + STILL_COUNTED_NS
    assert watch_until_ns([records[2]], max_tokens=None) is None  # nothing abandoned


def test_settling_reads_the_gauge_after_the_load() -> None:
    samples = [Sample(0, 0.0), Sample(100, 3.0), Sample(200, 1.0), Sample(300, 0.0)]
    assert settling(samples, baseline=0, since_ns=100) == {
        "baseline": 0, "after_run": 3.0, "returned": True, "seconds_to_baseline": 200 / 1e9,
    }  # fmt: skip
    assert settling(samples[:3], baseline=0, since_ns=100)["returned"] is False


def test_the_disconnect_summary_keeps_its_shape_and_says_its_verdict() -> None:
    records = [abandoned(i, sent_ms=10 * i) for i in range(4)]
    around = {"baseline": 0.0, "after_run": 4.0, "returned": True, "seconds_to_baseline": 1.9}
    summary = summarize_disconnects(records, {}, gauge=around, max_tokens=TOKENS,
                                    samples=gauge(records, keeps_generating))  # fmt: skip
    assert summary["source"] == "gauge"
    assert summary["verifiable"] is True
    assert summary["stopped_by_server"] == 0
    assert summary["stop_latency_ms"] == {"p50": None, "p99": None, "max": None}
    assert summary["tokens_after_close"] is None
    assert summary["verdict"].startswith("the server kept generating")
    assert summary["gauge"]["returned"] is True  # what the gauge did after the load
    assert summary["gauge"]["kept_generating"] == 4
    # a gauge that came back says nothing by itself: without samples nothing is judged
    summary = summarize_disconnects(records, {}, gauge=around, max_tokens=TOKENS)
    assert (summary["stopped_by_server"], summary["verifiable"]) == (None, False)
    assert "cannot tell" in summary["verdict"]
