"""The summary is computed from the records with numpy alone, so that it shows the moment
a run's load ends; the files and the report's figures are drawn from pandas frames of
the same records. Both must say the same: every figure of the summary is held here equal
to the same figure taken from the frames, for records of every kind."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.analysis import frames, summary
from harness.record import ErrorKind, Outcome, RequestRecord

MS = 1_000_000


@st.composite
def a_record(draw: st.DrawFn, index: int) -> RequestRecord:
    sent = draw(st.integers(0, 2_000)) * MS
    outcome = draw(st.sampled_from(Outcome))
    gaps = draw(st.lists(st.integers(0, 30), max_size=8))  # 0: events that shared a read
    first = sent + draw(st.integers(1, 500)) * MS
    times = [first]
    for gap in gaps:
        times.append(times[-1] + gap * MS)
    times = times[: draw(st.integers(0, len(times)))]
    end = (times[-1] if times else sent) + draw(st.integers(0, 50)) * MS
    usage = draw(st.none() | st.integers(0, 12))
    return RequestRecord(
        request_id=f"r{index}",
        t_scheduled_ns=draw(st.none() | st.integers(0, 2_000).map(lambda s: s * MS)),
        t_sent_ns=sent,
        t_first_byte_ns=draw(st.none() | st.just(sent + MS)),
        t_first_event_ns=times[0] if times else None,
        t_first_token_ns=times[0] if times else None,
        t_first_answer_ns=draw(st.none() | st.just(times[-1] if times else sent)),
        t_end_ns=draw(st.none() | st.just(end)),
        token_times_ns=times,
        output_tokens=usage if usage is not None else len(times),
        usage_output_tokens=usage,
        events=len(times),
        done_sentinel=draw(st.booleans()),
        token_kinds=draw(st.none() | st.just({"text": len(times), "reasoning": 1})),
        outcome=outcome,
        error_kind=draw(st.sampled_from(ErrorKind)) if outcome is Outcome.ERROR else None,
        error_message=f"failed {index}" if outcome is Outcome.ERROR else None,
    )


@st.composite
def some_records(draw: st.DrawFn) -> list[RequestRecord]:
    count = draw(st.integers(0, 12))
    return [draw(a_record(i)) for i in range(count)]


def _from_frames(records: list[RequestRecord], window: summary.Window) -> dict[str, Any]:
    """The summary's figures read off the frames, as the files and the report read them."""
    frame = frames.requests_frame(records)
    tokens = frames.tokens_frame(records)
    started = frame["t_scheduled_ns"].fillna(frame["t_sent_ns"])
    measured = frame[(started >= window.start_ns) & (started < window.end_ns)]
    latency = measured[measured["outcome"].isin([Outcome.OK.value, Outcome.CUT.value])]
    ok = measured[measured["outcome"] == Outcome.OK.value]
    ended = measured[measured["outcome"] != Outcome.ABANDONED.value]
    errors = ended[ended["outcome"] == Outcome.ERROR.value]
    itl = tokens[tokens["request_id"].isin(set(latency["request_id"]))]["itl_s"]
    arrived = tokens[(tokens["t_ns"] >= window.start_ns) & (tokens["t_ns"] < window.end_ns)]
    by_id = frame.set_index("request_id")
    weight = by_id["output_tokens"] / by_id["event_tokens"].clip(lower=1)
    completed = frame[(frame["t_end_ns"] >= window.start_ns) & (frame["t_end_ns"] < window.end_ns)]
    reads = frames.token_reads(tokens)
    return {
        "requests": len(measured),
        "ok": len(ok),
        "errors": len(errors),
        "error_rate": len(errors) / len(ended) if len(ended) else 0.0,
        "errors_by_kind": {str(k): int(v) for k, v in errors["error_kind"].value_counts().items()},
        "ttft_s": summary.distribution(latency["ttft_s"]),
        "itl_s": summary.distribution(itl),
        "tpot_s": summary.distribution(ok["tpot_s"]),
        "e2e_s": summary.distribution(ok["e2e_s"]),
        "itl_request_mean_s": summary.distribution(ok["itl_request_mean_s"]),
        "output_tokens_per_s": float(arrived["request_id"].map(weight).astype(float).sum())
        / window.seconds,
        "requests_per_s": int((completed["outcome"] == Outcome.OK.value).sum()) / window.seconds,
        "no_terminator": int((~ok["done_sentinel"].astype(bool)).sum()),
        "merged_reads_share": float((reads["events"] > 1).mean()) if len(reads) else None,
    }


def _flat(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``figures`` with nested dicts flattened (``ttft_s.p50``), for ``pytest.approx``."""
    flat: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@settings(max_examples=100, deadline=None)
@given(records=some_records(), warmup=st.integers(0, 500))
def test_the_summary_says_what_the_frames_say(records: list[RequestRecord], warmup: int) -> None:
    window = summary.Window.around(records, warmup_s=warmup / 1000)
    slo = {"ttft": 0.2, "tpot": 0.01, "itl": 0.01, "e2e": 0.4}
    figures = summary.summarize(records, window=window, slo=slo)
    expected = _from_frames(records, window)
    got = {key: figures[key] for key in expected if key in figures}
    got["itl_request_mean_s"] = figures["variants"]["itl_request_mean_s"]
    got["merged_reads_share"] = summary.merged_reads_share(records)
    assert _flat(got) == pytest.approx(_flat(expected))
    frame = frames.requests_frame(records)
    by_frame = frames.meets_slo(frame, slo).tolist()
    assert [summary.meets_slo(r, slo) for r in records] == by_frame


@given(st.lists(st.none() | st.floats(-1e6, 1e6), max_size=30))
def test_a_distribution_is_pandas_own_quantiles_mean_and_max(values: list[float | None]) -> None:
    series = pd.Series(values, dtype=float)
    got = summary.distribution(values)
    assert got == summary.distribution(series)  # a list and a Series read alike
    kept = series.dropna()
    assert got["count"] == len(kept)
    if len(kept):
        for name, q in summary.QUANTILES.items():
            assert got[name] == pytest.approx(float(kept.quantile(q)), rel=1e-12, abs=1e-12)
        assert got["mean"] == pytest.approx(float(kept.mean()), rel=1e-12, abs=1e-9)
        assert got["max"] == float(kept.max())
    else:
        assert got["p50"] is None


def test_the_summary_loads_no_pandas() -> None:
    code = (
        "import sys\n"
        "from harness.analysis.summary import summarize\n"
        "from harness.analysis.disconnects import summarize_disconnects\n"
        "from harness.analysis.prompt_cache import prompt_cache\n"
        "from harness.record import RequestRecord\n"
        "summarize([RequestRecord(request_id='a', token_times_ns=[1, 2])])\n"
        "print('pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
