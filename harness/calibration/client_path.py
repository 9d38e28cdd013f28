"""``sse-harness bench client``: the client's CPU per event, offline, beside a raw reader.

Every case reads the same OpenAI chat responses (a role chunk, content chunks, the finish
and usage chunks and ``[DONE]``, shaped as the mock writes them with usage requested),
HTTP-chunked, one event per read as a 50 tokens/s stream arrives, with no socket:

* ``raw``: the least a reader can do (as the leanest raw load clients do): take the
  chunk framing off and find the content marker in each event, counting tokens.
* ``aiohttp tap``: the aiohttp transport's path for a chunked body: aiohttp's protocol
  parses the head, the ``ResponseTap`` reads each body read and hands it to a
  ``StreamRecorder`` (SSE decoder, openai-chat dialect, accumulator, ``RequestRecord``),
  and the record is concluded, as ``run_exchange`` does.
* ``aiohttp readany``: the same record, with the body read the way aiohttp offers it:
  every read through aiohttp's protocol and parser into the response's ``StreamReader``,
  and a reading task woken by ``readany()`` for each (the transport's other path).
* ``kernel``: the kernel transport's path: the plain head reader (h11 behind it) reads
  the head, and each read is taken in the socket's read callback (its kernel stamp
  unpacked and mapped), its chunk framing taken off and handed to the same
  ``StreamRecorder`` with both stamps; ``recvmsg`` returns the next read without a
  system call.

What the event loop and the kernel cost per read is not in these figures (see
``sse-harness calibrate`` for the client's CPU per event under real load). Streams are
read one after the other; the best of the rounds counts.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp.client_proto import ResponseHandler

from harness.dialects import StreamReader, get
from harness.load.recorder import StreamRecorder, conclude
from harness.record import RequestRecord
from harness.sse import encode
from harness.transports.aiohttp_tap import ResponseTap
from harness.transports.base import HttpRequest
from harness.transports.kernel import exchange_on
from harness.transports.kernel_clock import SCM_TIMESTAMPNS, TIMESPEC, ClockMap
from harness.transports.kernel_socket import StampedSocket

__all__ = ["ClientMeasurement", "chat_response", "run_client_bench"]

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
END = b"0\r\n\r\n"
_WORDS = [" The", " quick", " brown", " fox", " café", " 東京", " 🚀", " jumps", "."]
_CONTENT_MARK = b'"delta":{"content":"'


def chat_response(tokens: int, seed: int = 0) -> list[bytes]:
    """One chat response's body reads: one HTTP chunk per SSE event, then the last chunk."""
    head = {
        "id": f"chatcmpl-{seed:024x}",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "mock-model",
        "system_fingerprint": "fp_mock",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        payload = {**head, "choices": [choice], "usage": None, **extra}
        return encode(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))

    usage = {"prompt_tokens": 8, "completion_tokens": tokens, "total_tokens": tokens + 8}
    events = [
        chunk({"role": "assistant", "content": "", "refusal": None}),
        *(chunk({"content": _WORDS[(seed + i) % len(_WORDS)]}) for i in range(tokens)),
        chunk({}, "stop"),
        encode(json.dumps({**head, "choices": [], "usage": usage}, separators=(",", ":"))),
        encode("[DONE]"),
    ]
    return [b"%x\r\n%s\r\n" % (len(event), event) for event in events] + [END]


@dataclass(frozen=True, slots=True)
class ClientMeasurement:
    case: str
    streams: int
    events: int
    best_s: float

    @property
    def us_per_event(self) -> float:
        return self.best_s * 1e6 / self.events


class _StubTransport(asyncio.Transport):
    """A transport that only keeps its protocol: the reads are handed in by the case."""

    def __init__(self) -> None:
        super().__init__()
        self._protocol: asyncio.BaseProtocol | None = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class _ReplaySocket:
    """A connected socket's stand-in for the kernel transport: ``recvmsg`` returns
    ``next`` with a kernel stamp, ``send`` takes everything. The event loop watches one
    end of a socket pair, which never becomes readable."""

    def __init__(self) -> None:
        self._pair = socket.socketpair()
        self.next = b""
        stamp = TIMESPEC.pack(*divmod(time.time_ns(), 1_000_000_000))
        self._ancillary = [(socket.SOL_SOCKET, SCM_TIMESTAMPNS, stamp)]

    def fileno(self) -> int:
        return self._pair[0].fileno()

    def recvmsg(self, size: int, ancillary_size: int) -> tuple[bytes, list[Any], int, None]:
        return self.next, self._ancillary, 0, None

    def send(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        for end in self._pair:
            end.close()


def _aiohttp_protocol() -> tuple[ResponseHandler, _StubTransport]:
    protocol = ResponseHandler(asyncio.get_running_loop())
    transport = _StubTransport()
    protocol.connection_made(transport)
    transport.set_protocol(protocol)
    protocol.set_response_params(read_timeout=None)
    return protocol, transport


def _record_parts() -> tuple[RequestRecord, StreamReader, StreamRecorder]:
    record = RequestRecord(request_id="bench")
    reader = StreamReader(get("openai-chat"), content_type="text/event-stream")
    return record, reader, StreamRecorder(record, reader)


async def _raw(responses: list[list[bytes]]) -> int:
    tokens = 0
    for reads in responses:
        left = 0
        for read in reads:
            pos = 0
            while pos < len(read):  # the framing of one whole chunk per read
                line_end = read.find(b"\r\n", pos)
                left = int(read[pos:line_end], 16)
                event = read[line_end + 2 : line_end + 2 + left]
                pos = line_end + 4 + left
                mark = event.find(_CONTENT_MARK)
                if mark >= 0 and event[mark + len(_CONTENT_MARK)] != 34:  # not ""
                    tokens += 1
    return tokens


async def _tap(responses: list[list[bytes]]) -> int:
    clock = time.perf_counter_ns
    tokens = 0
    for reads in responses:
        protocol, transport = _aiohttp_protocol()
        tap = ResponseTap(protocol, transport, clock)
        tap.data_received(HEAD)
        record, reader, recorder = _record_parts()
        reading = asyncio.ensure_future(tap.deliver(recorder.feed, 60.0))
        await asyncio.sleep(0)  # deliver() takes over the body
        for read in reads:
            tap.data_received(read)
        await reading
        recorder.close(clock())
        conclude(record, reader, reader.result(), clock())
        tokens += len(record.token_times_ns)
    return tokens


async def _readany(responses: list[list[bytes]]) -> int:
    clock = time.perf_counter_ns
    tokens = 0
    for reads in responses:
        protocol, _ = _aiohttp_protocol()
        protocol.data_received(HEAD)
        _, content = await protocol.read()  # the response just parsed, as aiohttp reads it
        record, reader, recorder = _record_parts()

        async def read_body(content: Any = content, recorder: StreamRecorder = recorder) -> None:
            while data := await content.readany():
                recorder.feed(clock(), data)

        reading = asyncio.ensure_future(read_body())
        await asyncio.sleep(0)
        for read in reads:
            protocol.data_received(read)
            await asyncio.sleep(0)  # the reading task wakes for this read
        await reading
        recorder.close(clock())
        conclude(record, reader, reader.result(), clock())
        tokens += len(record.token_times_ns)
    return tokens


async def _kernel(responses: list[list[bytes]]) -> int:
    clock = time.perf_counter_ns
    clock_map = ClockMap(clock, time.time_ns)
    url = "http://127.0.0.1/v1/chat/completions"
    request = HttpRequest(method="POST", url=url, headers={}, body=b"{}")
    tokens = 0
    for reads in responses:
        replay = _ReplaySocket()
        sock = StampedSocket(replay, clock=clock, clock_map=clock_map, idle_s=60.0)  # type: ignore[arg-type]
        replay.next = HEAD
        sock._on_readable()  # the head waits in the socket's queue
        response = await exchange_on(sock, request)
        record, reader, _ = _record_parts()
        recorder = StreamRecorder(record, reader, clock_source="kernel")
        reading = asyncio.ensure_future(response.deliver(recorder.feed, user_stamps=True))
        await asyncio.sleep(0)  # deliver() attaches to the socket
        for read in reads:
            replay.next = read
            sock._on_readable()
        await reading
        recorder.close(clock())
        conclude(record, reader, reader.result(), clock())
        sock.close()
        tokens += len(record.token_times_ns)
    return tokens


CASES: dict[str, Callable[[list[list[bytes]]], Coroutine[Any, Any, int]]] = {
    "raw": _raw,
    "aiohttp tap": _tap,
    "aiohttp readany": _readany,
    "kernel": _kernel,
}


def run_client_bench(
    *, streams: int = 200, tokens: int = 150, rounds: int = 5
) -> list[ClientMeasurement]:
    """Measure every case on the same responses, rounds interleaved; the best round counts.

    Raises:
        RuntimeError: a case counted other than ``streams * tokens`` tokens.
    """
    responses = [chat_response(tokens, seed) for seed in range(streams)]
    events = streams * (tokens + 4)
    best = dict.fromkeys(CASES, float("inf"))

    async def measure() -> None:
        for _ in range(rounds):
            for name, case in CASES.items():
                start = time.process_time()
                counted = await case(responses)
                elapsed = time.process_time() - start
                if counted != streams * tokens:
                    raise RuntimeError(f"{name} counted {counted} tokens of {streams * tokens}")
                best[name] = min(best[name], elapsed)

    asyncio.run(measure())
    return [ClientMeasurement(name, streams, events, best_s) for name, best_s in best.items()]
