"""The yardstick of ``bench mock``: a plain aiohttp mock whose timings read as the mock's."""

from __future__ import annotations

import http.client
import itertools
from urllib.parse import urlsplit

from harness.servers.embedded import embedded_mock, fetch_truth


def test_the_plain_mock_streams_on_schedule_and_keeps_its_timings() -> None:
    arguments = ("--ttft-ms", "5", "--itl-ms", "2", "--tokens", "99")
    with embedded_mock(arguments, module="harness.calibration.plain_mock") as mock:
        url = urlsplit(mock.base_url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=b'{"stream":true,"messages":[]}',
            headers={"X-Mock-Tokens": "6"},
        )
        response = connection.getresponse()
        body = response.read()
        rid = response.getheader("x-mock-request-id")
        connection.close()
        assert response.status == 200
        assert rid is not None
        truth = fetch_truth(mock.base_url, rid)
        assert fetch_truth(mock.base_url, "no-such-request") is None
    events = body.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert len(events) == 6 + 2
    assert all(e.startswith(b'data: {"id":"chatcmpl-plain') for e in events[:6])
    assert truth is not None
    due, written = truth["scheduled_ns"], truth["token_write_ns"]
    assert len(due) == len(written) == 6
    assert [b - a for a, b in itertools.pairwise(due)] == [2_000_000] * 5
    assert all(w >= d for d, w in zip(due, written, strict=True))  # never early
