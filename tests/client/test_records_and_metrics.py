"""Records, their JSONL file, and the figures computed from them (fake clocks only)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.frames import requests_frame, time_series, tokens_frame
from harness.analysis.summary import Window, distribution, summarize
from harness.record import ErrorKind, Outcome, RequestRecord, TokenSource
from harness.results import ResultsWriter, read_records

S = 1_000_000_000  # one second in ns
MS = 1_000_000


def make(
    rid: str, start: int, ttft: int, itl: int, n: int, *, outcome: Outcome = Outcome.OK, **kw
) -> RequestRecord:
    first = start + ttft
    times = [first + k * itl for k in range(n)]
    return RequestRecord(
        request_id=rid, t_scheduled_ns=kw.pop("scheduled", start), t_sent_ns=start,
        t_first_byte_ns=start + ttft // 2, t_first_event_ns=start + ttft // 2,
        t_first_token_ns=first if n else None, t_first_answer_ns=first if n else None,
        t_end_ns=(times[-1] if times else start + ttft) + itl, token_times_ns=times,
        output_tokens=kw.pop("output_tokens", n), outcome=outcome, **kw,
    )  # fmt: skip


def test_record_timings_follow_the_definitions() -> None:
    r = make("a", start=10 * S, ttft=200 * MS, itl=20 * MS, n=11, scheduled=10 * S - 50 * MS)
    assert r.ttft_s == pytest.approx(0.2)
    assert r.ttft_from_scheduled_s == pytest.approx(0.25)
    assert r.tpot_s == pytest.approx(0.02)
    assert r.itl_ns() == [20 * MS] * 10
    assert r.e2e_s == pytest.approx(0.2 + 0.2 + 0.02)


def test_tpot_needs_two_tokens() -> None:
    assert make("a", start=S, ttft=MS, itl=MS, n=1).tpot_s is None


def test_record_json_round_trip_keeps_every_field() -> None:
    r = make("a", start=S, ttft=MS, itl=MS, n=3, outcome=Outcome.ERROR,
             error_kind=ErrorKind.TRUNCATED, error_message="no [DONE]",
             usage={"completion_tokens": 3}, token_source=TokenSource.USAGE)  # fmt: skip
    back = RequestRecord.from_mapping(json.loads(r.to_json()))
    assert back == r
    assert back.error_kind is ErrorKind.TRUNCATED


def test_record_of_unknown_format_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        RequestRecord.from_mapping({"v": 99, "request_id": "x"})


def test_results_file_keeps_every_record_and_survives_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "run" / "results.jsonl"
    records = [make(str(i), start=S + i, ttft=MS, itl=MS, n=2) for i in range(3)]
    with ResultsWriter(path) as writer:
        for r in records:
            writer.write(r)
        assert path.read_text().count("\n") == 3  # flushed as written, before close
    with path.open("a") as file:
        file.write('{"v": 1, "request_id": "cut-off')
    assert list(read_records(path)) == records


def test_results_file_with_a_bad_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('garbage\n{"v": 1, "request_id": "a"}\n')
    with pytest.raises(ValueError, match=":1:"):
        list(read_records(path))


def test_distribution_reports_every_quantile() -> None:
    d = distribution(pd.Series(range(1, 1001), dtype=float))
    assert d["p50"] == pytest.approx(500.5)
    assert d["p99"] == pytest.approx(990.01)
    assert d["max"] == 1000
    assert d["count"] == 1000
    assert distribution(pd.Series([], dtype=float))["p50"] is None


def test_summary_counts_latency_throughput_and_errors() -> None:
    records = [make(f"ok{i}", start=i * 100 * MS, ttft=100 * MS, itl=10 * MS, n=10)
               for i in range(10)]  # fmt: skip
    records.append(make("bad", start=0, ttft=5 * MS, itl=MS, n=0, outcome=Outcome.ERROR,
                        error_kind=ErrorKind.HTTP_STATUS, status=503))  # fmt: skip
    records.append(make("gone", start=0, ttft=100 * MS, itl=10 * MS, n=3,
                        outcome=Outcome.ABANDONED))  # fmt: skip
    s = summarize(records, window=Window(start_ns=0, end_ns=2 * S))
    assert s["requests"] == 12
    assert (s["ok"], s["errors"], s["abandoned"]) == (10, 1, 1)
    assert s["errors_by_kind"] == {"http_status": 1}
    assert s["error_rate"] == pytest.approx(1 / 11)
    assert s["ttft_s"]["p50"] == pytest.approx(0.1)
    assert s["ttft_s"]["count"] == 10  # the abandoned and failed ones are left out
    assert s["itl_s"]["max"] == pytest.approx(0.01)
    assert s["e2e_s"]["p50"] == pytest.approx(0.1 + 0.09 + 0.01)
    assert s["output_tokens_per_s"] == pytest.approx((100 + 3) / 2)  # tokens that arrived
    assert s["requests_per_s"] == pytest.approx(10 / 2)


def test_a_window_without_tokens_counts_no_output_rate() -> None:
    # a failed request whose only token came after its window ended: no token in the window
    records = [make("late", start=0, ttft=5 * S, itl=MS, n=1, outcome=Outcome.ERROR,
                    error_kind=ErrorKind.PROTOCOL)]  # fmt: skip
    s = summarize(records, window=Window(start_ns=0, end_ns=S))
    assert s["errors"] == 1
    assert s["output_tokens_per_s"] == 0.0


def test_warmup_requests_stay_out_of_latency_figures() -> None:
    slow = make("warm", start=0, ttft=900 * MS, itl=MS, n=2)
    fast = [make(f"f{i}", start=S + i * MS, ttft=50 * MS, itl=MS, n=2) for i in range(5)]
    s = summarize([slow, *fast], window=Window.around([slow, *fast], warmup_s=0.5))
    assert s["ttft_s"]["max"] == pytest.approx(0.05)
    assert s["requests"] == 5


def test_goodput_counts_requests_meeting_every_slo() -> None:
    records = [make("fast", start=0, ttft=100 * MS, itl=10 * MS, n=5),
               make("slow", start=0, ttft=900 * MS, itl=10 * MS, n=5)]  # fmt: skip
    s = summarize(records, window=Window(start_ns=0, end_ns=S), slo={"ttft": 0.5, "tpot": 0.02})
    assert s["goodput"]["share"] == 0.5
    assert s["goodput"]["requests_per_s"] == pytest.approx(1.0)


def test_usage_and_event_counts_disagreeing_are_flagged() -> None:
    records = [make("a", start=0, ttft=MS, itl=MS, n=10, usage_output_tokens=20,
                    output_tokens=20, token_source=TokenSource.USAGE)]  # fmt: skip
    variants = summarize(records)["variants"]
    assert variants["token_counts_disagree"] is True
    assert variants["output_tokens_from_usage"] == 20
    assert variants["output_tokens_from_events"] == 10
    assert variants["token_source"] == "usage"


def test_ttft_variants_side_by_side() -> None:
    r = make("a", start=0, ttft=100 * MS, itl=10 * MS, n=3)
    r.t_first_event_ns = 20 * MS  # a role-only chunk came first
    r.t_first_answer_ns = 120 * MS  # reasoning came before the answer
    v = summarize([r])["variants"]
    assert v["ttft_first_event_s"]["p50"] == pytest.approx(0.02)
    assert v["ttft_first_token_s"]["p50"] == pytest.approx(0.1)
    assert v["ttft_first_answer_s"]["p50"] == pytest.approx(0.12)
    assert v["itl_request_mean_s"]["p50"] == pytest.approx((0.13 - 0.1) / 2)


def test_time_series_counts_per_second() -> None:
    records = [make(f"r{i}", start=i * 500 * MS, ttft=100 * MS, itl=100 * MS, n=3)
               for i in range(4)]  # fmt: skip
    series = time_series(records)
    assert list(series["started"]) == [2, 2]
    assert series["tokens_per_s"].sum() == 12
    assert list(series["second"]) == [0, 1]
    assert series["ttft_p50_s"].iloc[0] == pytest.approx(0.1)


def test_requests_frame_has_one_row_per_record() -> None:
    frame = requests_frame([make("a", start=0, ttft=MS, itl=MS, n=2)])
    assert len(frame) == 1
    assert frame.loc[0, "event_tokens"] == 2


def test_the_frames_of_one_list_are_made_once_and_again_when_it_grows() -> None:
    records = [make("a", start=0, ttft=MS, itl=MS, n=2)]
    frame, tokens = requests_frame(records), tokens_frame(records)
    assert requests_frame(records) is frame  # the summary, the CSV and the figures share it
    assert tokens_frame(records) is tokens
    assert requests_frame(list(records)) is not frame  # another list: its own frame
    records.append(make("b", start=MS, ttft=MS, itl=MS, n=3))
    assert list(requests_frame(records)["request_id"]) == ["a", "b"]
    assert len(tokens_frame(records)) == 5
