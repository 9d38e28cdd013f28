"""The checks of timing, disconnects and errors on suites built from bytes and arrival
times: buffering, serialized streams, servers that write on after the client left."""

from __future__ import annotations

import json

from harness.conformance.captured import Disconnect, Ending, Purpose
from harness.conformance.catalogue import judge
from harness.conformance.model import Severity, Status
from tests.conformance.builders import (
    MS,
    SSE_HEADERS,
    captured,
    chat_stream,
    exchange,
    run,
)

# streaming behaviour, from arrival times


def timed(
    texts: int, *, first_ms: float, step_ms: float, label: str, purpose: Purpose, asked: int
) -> object:
    events = chat_stream(tuple(f" w{i}" for i in range(texts)))
    times = [int(first_ms * MS)] + [
        int((first_ms + (i + 1) * step_ms) * MS) for i in range(len(events) - 1)
    ]
    return exchange(events, label=label, purpose=purpose, times_ns=times, asked_tokens=asked)


def test_one_burst_that_comes_later_the_longer_the_answer_is_a_buffer() -> None:
    ordinary = timed(
        16, first_ms=400, step_ms=0.01, label="stream-1", purpose=Purpose.ORDINARY, asked=16
    )
    long = timed(100, first_ms=2100, step_ms=0.01, label="long", purpose=Purpose.LONG, asked=100)
    result = run("streaming.incremental", captured(ordinary, long))
    assert result.status is Status.FAIL
    assert "2,100 ms" in result.findings[0].evidence[0].detail


def test_a_fast_generator_after_a_long_think_is_not_a_buffer() -> None:
    ordinary = timed(
        16, first_ms=3000, step_ms=1, label="stream-1", purpose=Purpose.ORDINARY, asked=16
    )
    long = timed(100, first_ms=3000, step_ms=1, label="long", purpose=Purpose.LONG, asked=100)
    assert run("streaming.incremental", captured(ordinary, long)).status is Status.PASS


def test_tokens_in_blocks_with_silences_between_are_clumps() -> None:
    events = chat_stream(tuple(f" w{i}" for i in range(40)))
    blocks = [b"".join(events[i : i + 10]) for i in range(0, len(events), 10)]
    times = [int((100 + 250 * i) * MS) for i in range(len(blocks))]
    suite = captured(exchange(blocks, label="long", purpose=Purpose.LONG, times_ns=times))
    assert run("streaming.clumped", suite).status is Status.WARN


def burst(firsts_ms: list[float], length_ms: float) -> list:
    streams = []
    for number, first in enumerate(firsts_ms, start=1):
        events = chat_stream()
        step = length_ms / (len(events) - 1)
        times = [int((first + i * step) * MS) for i in range(len(events))]
        streams.append(
            exchange(events, label=f"burst-{number}", purpose=Purpose.BURST, times_ns=times)
        )
    return streams


def test_streams_of_a_burst_that_run_one_after_another_fail() -> None:
    ordinary = burst([100], 100)[0]
    ordinary = exchange([d for _, d in ordinary.chunks], times_ns=[t for t, _ in ordinary.chunks])
    serial = captured(ordinary, *burst([100, 210, 320, 430], 100))
    result = run("concurrency.overlap", serial)
    assert result.status is Status.FAIL
    assert "one after another" in result.findings[0].message
    assert [e.request for e in result.findings[0].evidence] == [f"burst-{n}" for n in range(1, 5)]
    together = captured(ordinary, *burst([100, 102, 104, 101], 100))
    assert run("concurrency.overlap", together).status is Status.PASS


def test_a_time_to_first_token_that_grows_with_the_queue_fails() -> None:
    ordinary = exchange(chat_stream(), times_ns=[int((100 + 10 * i) * MS) for i in range(11)])
    queue = captured(ordinary, *burst([100, 200, 300, 400], 250))
    result = run("concurrency.overlap", queue)
    assert result.status is Status.FAIL
    assert "grows with the position" in result.findings[0].message


# disconnect: verified or said to be unverifiable, never passed on a guess


def abandoned_suite(disconnect: Disconnect, *, long_ms: float = 3000) -> object:
    abandon = exchange(
        chat_stream()[:4], label="abandon", purpose=Purpose.ABANDON, ending=Ending.ABANDONED
    )
    long = exchange(
        chat_stream(),
        label="long",
        purpose=Purpose.LONG,
        times_ns=[int(long_ms * MS * i / 10) for i in range(11)],
    )
    return captured(long, abandon, disconnect=disconnect)


def gauge(**values: object) -> Disconnect:
    observed = {"baseline": 0.0, "during": 1.0, "after_run": 1.0, "timeout_s": 5.0, **values}
    return Disconnect(source="gauge", gauge=observed, t_close_ns=100 * MS)


def test_a_gauge_back_at_its_baseline_soon_after_the_close_passes() -> None:
    result = run(
        "disconnect.stops", abandoned_suite(gauge(returned=True, seconds_to_baseline=0.05))
    )
    assert result.status is Status.PASS
    assert "50 ms after the close" in result.note


def test_a_gauge_back_only_when_the_stream_would_have_ended_fails() -> None:
    suite = abandoned_suite(gauge(returned=True, seconds_to_baseline=2.8))
    assert run("disconnect.stops", suite).status is Status.FAIL
    stuck = abandoned_suite(gauge(returned=False, seconds_to_baseline=None))
    assert run("disconnect.stops", stuck).status is Status.FAIL


def test_without_truth_or_a_gauge_that_saw_the_stream_it_is_not_verifiable() -> None:
    blind = abandoned_suite(gauge(during=0.0, returned=True, seconds_to_baseline=0.0))
    result = run("disconnect.stops", blind)
    assert result.status is Status.INFO
    assert "not verifiable" in result.findings[0].message
    nothing = abandoned_suite(Disconnect(reason="no --metrics-url", t_close_ns=100 * MS))
    result = run("disconnect.stops", nothing)
    assert result.status is Status.INFO
    assert result.findings[0].message == "not verifiable: no --metrics-url"


def test_ground_truth_of_tokens_written_after_the_close_fails() -> None:
    truth = {
        "token_write_ns": [50 * MS, 900 * MS, 1200 * MS],
        "done": True,
        "disconnect_detected_ns": None,
    }
    suite = abandoned_suite(Disconnect(source="ground truth", truth=truth, t_close_ns=100 * MS))
    result = run("disconnect.stops", suite)
    assert result.status is Status.FAIL
    assert "2 tokens written" in result.findings[0].evidence[0].detail


# errors and secrets


def test_invalid_requests_accepted_fail_and_server_errors_warn() -> None:
    accepted = exchange(chat_stream(), label="invalid-json", purpose=Purpose.INVALID)
    crashed = exchange(
        [b"Internal Server Error"],
        label="invalid-no-messages",
        status=500,
        purpose=Purpose.INVALID,
        headers=(("content-type", "text/plain"),),
    )
    result = run("errors.invalid-rejected", captured(accepted, crashed))
    assert result.status is Status.FAIL
    assert {f.severity for f in result.findings} == {Severity.FAIL, Severity.WARN}
    body = run("errors.error-body", captured(accepted, crashed))
    assert body.status is Status.WARN
    assert "not JSON" in body.findings[0].message


def test_secrets_are_redacted_from_every_finding() -> None:
    leaky = [b"Key sk-topsecret-123 is invalid"]
    refused = exchange(
        leaky, label="invalid-json", status=401, purpose=Purpose.INVALID, headers=SSE_HEADERS[:1]
    )
    report = judge(captured(refused), secrets=["sk-topsecret-123"])
    text = json.dumps([r.as_dict() for r in report.results])
    assert "sk-topsecret-123" not in text
    assert "[redacted]" in text
