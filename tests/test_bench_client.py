"""The client benchmark reads the same responses three ways and counts every token."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.calibration.client_path import chat_response, run_client_bench
from harness.dialects import StreamReader, get
from harness.transports.chunked import ChunkedBody


def test_a_benchmark_response_is_a_chunked_chat_stream_with_its_tokens() -> None:
    reads = chat_response(7)
    body = ChunkedBody()
    data = b""
    for read in reads:
        piece, rest = body.feed(read)
        data += piece
    assert rest == b"0\r\n\r\n"
    reader = StreamReader(get("openai-chat"))
    assert sum(read.token for read in reader.feed(data)) == 7
    assert reader.result().done
    assert reader.result().usage == {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15}
    assert not reader.errors


def test_every_path_is_measured_on_the_same_events() -> None:
    measurements = run_client_bench(streams=3, tokens=5, rounds=1)
    assert [m.case for m in measurements] == ["raw", "aiohttp tap", "aiohttp readany", "kernel"]
    for m in measurements:
        assert m.events == 3 * (5 + 4)
        assert m.best_s > 0
        assert m.us_per_event == m.best_s * 1e6 / m.events


@pytest.mark.slow  # the command in a subprocess
def test_the_command_prints_one_line_per_path() -> None:
    command = [sys.executable, "-m", "harness.cli", "bench", "client", "--json",
               "--streams", "2", "--tokens", "3", "--rounds", "1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["case"] for line in lines] == ["raw", "aiohttp tap", "aiohttp readany", "kernel"]
    assert all(line["us_per_event"] > 0 for line in lines)
