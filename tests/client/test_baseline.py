"""The baseline client of ``calibrate --baseline``, and calibrate's levels with it."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.calibration.baseline import _Stream, mock_chat_request, read_streams
from harness.calibration.calibrate import BASELINE, LevelResult, best_levels, spread_over_rounds
from harness.record import ErrorKind, RequestRecord
from harness.servers.embedded import EmbeddedMock, fetch_truths

ROOT = Path(__file__).resolve().parents[2]

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"x-mock-request-id: 0-000007\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _chunk(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def _event(delta: str) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":%s}]}\n\n' % delta.encode()


#: A whole response: a role chunk, three tokens, a finish chunk and [DONE] with the
#: last chunk in one write, as the mock sends them.
BODY = (
    _chunk(_event('{"role":"assistant","content":""}'))
    + _chunk(_event('{"content":"Hello"}'))
    + _chunk(_event('{"content":" there"}'))
    + _chunk(_event('{"content":"!"}') + _event("{}") + b"data: [DONE]\n\n")
    + b"0\r\n\r\n"
)


class _FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += data

    def close(self) -> None:
        self.closed = True


def _feed(pieces: list[bytes], *, end: bool = True) -> tuple[RequestRecord, list[int]]:
    """Feed ``pieces`` to a stream, one read each, read ``i`` stamped ``i``."""
    clock = iter(range(10_000))
    record = RequestRecord(request_id="r")
    loop = asyncio.new_event_loop()
    try:
        stream = _Stream(b"request", record, loop.create_future(), lambda: next(clock))
        stream.connection_made(_FakeTransport())
        stamps = []
        for piece in pieces:
            stream.data_received(piece)
            stamps.append(record.token_times_ns[-1] if record.token_times_ns else None)
        if end:
            stream.connection_lost(None)
            assert stream.done.done()
    finally:
        loop.close()
    return record, stamps


def test_a_whole_response_in_one_read() -> None:
    record, _ = _feed([HEAD + BODY])
    assert record.ok, record.error_message
    assert record.status == 200
    assert record.mock_request_id == "0-000007"
    assert record.events == 6  # role, three tokens, finish, [DONE]
    assert len(record.token_times_ns) == 3


@pytest.mark.parametrize("cut", range(1, len(HEAD + BODY)))
def test_a_response_split_anywhere_counts_the_same(cut: int) -> None:
    data = HEAD + BODY
    record, _ = _feed([data[:cut], data[cut:]])
    assert record.ok, (cut, record.error_message)
    assert (record.events, len(record.token_times_ns)) == (6, 3)
    assert record.mock_request_id == "0-000007"


@given(st.lists(st.integers(1, len(HEAD + BODY) - 1), max_size=12, unique=True).map(sorted))
def test_a_response_in_any_reads_counts_the_same(cuts: list[int]) -> None:
    data = HEAD + BODY
    bounds = [0, *cuts, len(data)]
    record, _ = _feed([data[a:b] for a, b in itertools.pairwise(bounds)])
    assert record.ok, (cuts, record.error_message)
    assert (record.events, len(record.token_times_ns)) == (6, 3)


def test_a_token_is_stamped_by_the_read_that_completes_its_event() -> None:
    token = _chunk(_event('{"content":"Hello"}'))
    middle = token.index(b"Hello")
    pieces = [HEAD, token[:middle], token[middle:], BODY]
    record, _ = _feed(pieces)
    assert record.ok
    # reads are stamped 1, 2, 3, 4 (0 went to the request's write)
    assert record.token_times_ns == [3, 4, 4, 4]


def test_a_stream_that_ends_without_its_last_chunk_is_truncated() -> None:
    record, _ = _feed([HEAD + BODY[: BODY.index(b"data: [DONE]")]])
    assert record.error_kind is ErrorKind.TRUNCATED
    assert len(record.token_times_ns) == 3  # what was read is kept
    record, _ = _feed([HEAD[:20]])
    assert record.error_kind is ErrorKind.TRUNCATED


def test_a_status_other_than_200_is_an_error() -> None:
    record, _ = _feed([b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"])
    assert record.error_kind is ErrorKind.HTTP_STATUS
    assert record.status == 503
    assert "503" in (record.error_message or "")


def test_a_head_without_an_end_is_an_error() -> None:
    record, _ = _feed([b"HTTP/1.1 200 OK\r\n" + b"x-filler: 0123456789\r\n" * 4000])
    assert record.error_kind is ErrorKind.PROTOCOL
    assert "head" in (record.error_message or "")


def test_the_request_asks_the_mock_for_a_stream() -> None:
    request = mock_chat_request(8123, 17, close=True)
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nX-Mock-Tokens: 17" in head
    assert b"\r\nConnection: close" in head
    assert b"\r\nContent-Length: %d" % len(body) in head
    assert json.loads(body)["stream"] is True
    assert b"Connection" not in mock_chat_request(8123, 17)


@pytest.mark.slow  # against a mock process
def test_streams_from_the_mock_match_its_ground_truth(mock: EmbeddedMock) -> None:
    port = urlsplit(mock.base_url).port
    assert port is not None
    records = asyncio.run(read_streams(port, 5, tokens=9, ramp_s=0.05, timeout_s=30))
    assert len(records) == 5
    truths = fetch_truths(mock.base_url, [r.mock_request_id or "" for r in records])
    for record in records:
        assert record.ok, record.error_message
        truth = truths[record.mock_request_id or ""]
        assert truth is not None
        written = truth["token_write_ns"]
        assert len(record.token_times_ns) == len(written) == 9
        # each token arrives after the mock wrote it, and in order
        assert all(a >= w for a, w in zip(record.token_times_ns, written, strict=True))
        assert record.token_times_ns == sorted(record.token_times_ns)
        assert record.events >= 9


@pytest.mark.slow
def test_a_stream_that_does_not_end_in_time_is_closed_and_recorded(mock: EmbeddedMock) -> None:
    port = urlsplit(mock.base_url).port
    assert port is not None
    # 3 s of a 30 s stream: its first tokens come in time on a busy machine, its end never
    records = asyncio.run(read_streams(port, 2, tokens=3000, ramp_s=0, timeout_s=3))
    assert [r.error_kind for r in records] == [ErrorKind.TIMEOUT_TOTAL] * 2
    assert all(r.token_times_ns for r in records)  # what arrived before is kept


def test_a_closed_port_is_a_connect_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        records = asyncio.run(read_streams(port, 2, tokens=3, ramp_s=0, timeout_s=5))
    assert [r.error_kind for r in records] == [ErrorKind.CONNECT] * 2


def _level(transport: str, concurrency: int, lag: float, errors: int = 0) -> LevelResult:
    return LevelResult(transport, concurrency, 1, errors, 10, 0.1, lag, lag, 0.1, lag, lag,
                       0.1, 5.0)  # fmt: skip


def test_the_best_level_is_named_per_client_the_baseline_apart() -> None:
    results = [_level(BASELINE, 100, 0.5), _level("aiohttp", 100, 0.9),
               _level(BASELINE, 500, 1.5), _level("aiohttp", 500, 2.4),
               _level(BASELINE, 1000, 3.0), _level("aiohttp", 1000, 1.0, errors=1)]  # fmt: skip
    assert best_levels(results) == {BASELINE: 500, "aiohttp": 100}


def test_rounds_give_each_level_its_median_and_range_beside_the_baseline() -> None:
    from dataclasses import replace

    def level(transport: str, lag: float, cpu: float, ratio: float | None) -> LevelResult:
        return replace(_level(transport, 500, lag), cpu_us_per_event=cpu, cpu_vs_baseline=ratio)

    rounds = [
        [level(BASELINE, 0.2, 10.0, None), level("aiohttp", 0.9, 16.0, 1.6)],
        [level(BASELINE, 5.0, 15.0, None), level("aiohttp", 4.5, 22.5, 1.5)],
        [level(BASELINE, 0.4, 12.0, None), replace(level("aiohttp", 1.1, 21.6, 1.8), errors=2)],
    ]
    rows = spread_over_rounds(rounds)
    assert [(r["transport"], r["concurrency"], r["rounds"]) for r in rows] == [
        (BASELINE, 500, 3),
        ("aiohttp", 500, 3),
    ]
    aiohttp = rows[1]
    assert aiohttp["lag_p99_ms"] == {"median": 1.1, "min": 0.9, "max": 4.5}
    assert aiohttp["cpu_vs_baseline"] == {"median": 1.6, "min": 1.5, "max": 1.8}
    assert aiohttp["errors"] == 2
    assert rows[0]["cpu_vs_baseline"] is None  # the baseline is not a multiple of itself
    assert rows[0]["cpu_us_per_event"] == {"median": 12.0, "min": 10.0, "max": 15.0}


@pytest.mark.slow
def test_calibrate_runs_the_baseline_beside_each_level(tmp_path: Path) -> None:
    levels = tmp_path / "levels.jsonl"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "harness.cli", "calibrate", "--baseline", "--transport",
               "aiohttp", "--levels", "1,3", "--seconds", "0.4", "--json", str(levels)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in levels.read_text().splitlines()]
    # level by level, the baseline first
    assert [(r["transport"], r["concurrency"]) for r in rows] == [
        (BASELINE, 1),
        ("aiohttp", 1),
        (BASELINE, 3),
        ("aiohttp", 3),
    ]
    for floor, measured in (rows[0:2], rows[2:4]):
        assert floor["errors"] == measured["errors"] == 0
        assert floor["events"] > 0
        assert floor["lag_p50_ms"] >= 0
        assert floor["cpu_vs_baseline"] is None
        assert measured["cpu_vs_baseline"] == pytest.approx(
            measured["cpu_us_per_event"] / floor["cpu_us_per_event"]
        )
    assert "x baseline" in done.stdout
    assert "baseline: p99 arrival lag" in done.stdout
