"""Ground truth per request, the bounded ring buffer, and the /metrics text."""

from __future__ import annotations

import re

import httpx
import pytest

from mock_server.metrics import LATENESS_BOUNDS_NS, Metrics, merge, render
from mock_server.server import RunningMock
from mock_server.truth import RequestTruth, TruthLog
from tests.mock.streams import read

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello"}]}


def test_every_token_write_is_recorded_with_its_schedule_and_lateness(mock: RunningMock) -> None:
    reading = read(mock.base_url, CHAT, BODY, headers={"X-Mock-Itl-Ms": "10"})
    reply = httpx.get(mock.base_url + f"/mock/requests/{reading.request_id}?wait_ms=5000")
    assert reply.status_code == 200
    truth = reply.json()
    assert truth["id"] == reading.request_id
    assert truth["endpoint"] == "chat"
    assert truth["outcome"] == "complete"
    assert truth["finish_reason"] == "stop"
    assert truth["tokens_sent"] == truth["tokens_planned"] == 8
    assert len(truth["token_write_ns"]) == len(truth["scheduled_ns"]) == 8
    received = truth["received_ns"]
    expected = [received + 5_000_000 + k * 10_000_000 for k in range(8)]
    assert truth["scheduled_ns"] == expected  # start + ttft + k * itl, never drifting
    # never early beyond the scheduler's 0.5 ms slack; how late is a figure of the machine,
    # reported by `sse-harness bench mock` (and checked on a fake clock in test_stream)
    assert all(late >= -500_000 for late in truth["lateness_ns"])
    assert received <= truth["headers_ns"] <= truth["token_write_ns"][0]
    # the client saw each token after the mock wrote it (one clock for both on Linux)
    assert all(
        arrival >= written
        for arrival, written in zip(reading.token_arrivals_ns, truth["token_write_ns"], strict=True)
    )


def test_lateness_reaches_the_metrics_histogram(make_mock) -> None:
    mock = make_mock()
    read(mock.base_url, CHAT, BODY)
    text = httpx.get(mock.base_url + "/metrics").text
    assert 'mock_send_lateness_seconds_bucket{le="+Inf"} 8' in text
    assert "mock_send_lateness_seconds_count 8" in text
    assert 'mock_requests_total{endpoint="/v1/chat/completions",status="200"} 1' in text
    assert "mock_tokens_sent_total 8" in text


def test_the_ring_buffer_keeps_only_the_newest_records(make_mock) -> None:
    mock = make_mock(truth_capacity=3)
    ids = [read(mock.base_url, CHAT, BODY).request_id for _ in range(5)]
    statuses = [httpx.get(f"{mock.base_url}/mock/requests/{i}").status_code for i in ids]
    assert statuses == [404, 404, 200, 200, 200]


def test_an_unknown_request_id_is_404(mock: RunningMock) -> None:
    reply = httpx.get(mock.base_url + "/mock/requests/0-999999")
    assert reply.status_code == 404
    assert "ring buffer" in reply.json()["error"]["message"]


def test_truth_log_drops_the_oldest_beyond_capacity() -> None:
    log = TruthLog(2)
    for n in range(4):
        log.add(RequestTruth(id=str(n), endpoint="chat", received_ns=n))
    assert len(log) == 2
    assert log.get("0") is None
    assert log.get("3") is not None
    assert log.dropped == 2
    with pytest.raises(ValueError, match="capacity"):
        TruthLog(0)


def test_metrics_merge_sums_workers_and_renders_cumulative_buckets() -> None:
    first, second = Metrics(), Metrics()
    first.requests[("/v1/messages", 200)] += 2
    second.requests[("/v1/messages", 200)] += 3
    first.observe_lateness(10_000)  # the first bucket
    second.observe_lateness(3_000_000)  # 5 ms bucket
    second.observe_lateness(5_000_000_000)  # +Inf
    text = render(merge([first.snapshot(), second.snapshot()]))
    assert 'mock_requests_total{endpoint="/v1/messages",status="200"} 5' in text
    buckets = re.findall(r'mock_send_lateness_seconds_bucket\{le="([^"]+)"\} (\d+)', text)
    assert len(buckets) == len(LATENESS_BOUNDS_NS) + 1
    counts = [int(n) for _, n in buckets]
    assert counts == sorted(counts)  # cumulative
    assert counts[0] == 1
    assert counts[-1] == 3
    assert dict(buckets)["0.005"] == "2"
    assert "mock_send_lateness_seconds_count 3" in text


def _text_truth(mock: RunningMock, reading) -> tuple[str, int]:
    truth = httpx.get(f"{mock.base_url}/mock/requests/{reading.request_id}?wait_ms=5000").json()
    return truth["text_sha256"], truth["text_chars"]


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, BODY),
        ({"X-Mock-Reasoning-Tokens": "3"}, BODY),  # reasoning first, then the answer
        ({}, {**BODY, "n": 2}),  # the choices' events side by side: choice 0's text
        ({}, {**BODY, "stream": False}),
    ],
    ids=["plain", "reasoning", "two-choices", "not-streamed"],
)
def test_the_truth_carries_the_hash_and_length_of_the_answer_text_the_client_rebuilt(
    mock: RunningMock, headers: dict[str, str], body: dict
) -> None:
    reading = read(mock.base_url, CHAT, body, headers=headers)
    if body["stream"]:
        text = reading.reader.result().text  # choice 0's (the others are in .choices)
    else:
        text = reading.json()["choices"][0]["message"]["content"]
    assert text
    assert _text_truth(mock, reading) == (_sha(text), len(text))


def test_a_stream_cut_short_hashes_only_the_text_it_sent(mock: RunningMock) -> None:
    reading = read(mock.base_url, CHAT, BODY, headers={"X-Mock-Fault": "disconnect_after=3"})
    assert reading.failure is not None
    text = reading.reader.result().text
    assert len(text) > 0
    assert _text_truth(mock, reading) == (_sha(text), len(text))
