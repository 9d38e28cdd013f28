"""A client that leaves is noticed, counted, and never written to again.

How soon the mock notices (at its next write, or its next probe during a long wait) is
checked on a fake clock in ``test_stream``; here, on real sockets, the streams are long
enough that a stream the mock did not stop is told apart from a busy machine's delay.
"""

from __future__ import annotations

import re
import time

import httpx

from harness.dialects import StreamReader, get

ITL_MS = 20
#: 30 s of tokens at that ITL: far longer than any delay of a busy machine.
TOKENS = 1500
#: How long a test waits for the mock's record of a stream: a bound on a hung test.
WAIT_S = 30
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "go on"}]}


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_client_leaving_after_three_tokens_stops_the_stream(make_mock) -> None:
    mock = make_mock()
    headers = {"X-Mock-Tokens": str(TOKENS), "X-Mock-Itl-Ms": str(ITL_MS)}
    reader = StreamReader(get("openai-chat"))
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", mock.base_url + "/v1/chat/completions", json=BODY, headers=headers
        ) as response,
    ):
        request_id = response.headers["x-mock-request-id"]
        for chunk in response.iter_raw():
            reader.feed(chunk)
            if reader.content_events >= 3:
                break
        closed_ns = time.perf_counter_ns()
    # leaving the block closed the half-read response's connection
    truth = mock.truth(request_id, wait_s=WAIT_S)
    assert truth is not None
    assert truth["done"]
    assert truth["outcome"] == "disconnected"
    assert truth["disconnect_detected_ns"] is not None
    assert truth["last_write_ns"] is not None
    assert truth["last_write_ns"] <= truth["disconnect_detected_ns"]
    assert truth["disconnect_detected_ns"] >= closed_ns  # noticed after the close
    assert 3 <= truth["tokens_sent"] < TOKENS  # stopped long before the stream's end
    assert truth["tokens_after_disconnect"] == 0

    text = httpx.get(mock.base_url + "/metrics").text
    assert metric(text, "mock_client_disconnects_total") == 1
    assert metric(text, "mock_tokens_after_disconnect_total") == 0
    assert metric(text, "mock_active_streams") == 0  # the stream's resources were freed
    assert metric(text, "mock_tokens_sent_total") == truth["tokens_sent"]


def test_a_disconnect_during_a_long_ttft_is_noticed_by_the_probe(make_mock) -> None:
    mock = make_mock()
    headers = {"X-Mock-Ttft-Ms": "120000"}  # two minutes: only a probe notices in time
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", mock.base_url + "/v1/chat/completions", json=BODY, headers=headers
        ) as response,
    ):
        request_id = response.headers["x-mock-request-id"]
        next(response.iter_raw())  # the role chunk, sent with the headers
        closed_ns = time.perf_counter_ns()
    truth = mock.truth(request_id, wait_s=WAIT_S)
    assert truth is not None
    assert truth["outcome"] == "disconnected"
    assert truth["tokens_sent"] == 0
    detected_after_s = (truth["disconnect_detected_ns"] - closed_ns) / 1e9
    assert 0 <= detected_after_s < WAIT_S  # long before the TTFT
