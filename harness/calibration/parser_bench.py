"""``sse-harness bench parser``: harness.sse against httpx-sse's decoder, side by side.

Both decoders get the same bytes in the same feeds, in one process, rounds interleaved,
so machine noise hits both alike; the best round of each counts. httpx-sse is measured
through the pipeline its ``aiter_sse`` runs (an incremental UTF-8 decoder, its
``SSELineDecoder`` and ``SSEDecoder``) without the HTTP client around it, which is the
fairest figure for it.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from harness.sse import Decoder, encode

__all__ = ["Case", "Measurement", "chat_stream", "run_parser_bench"]


def chat_stream(size_bytes: int) -> list[bytes]:
    """A deterministic OpenAI chat stream of about ``size_bytes``, as a list of events.

    The text mixes ASCII words with a few accented and CJK characters and an emoji, as
    real streams do, so the decoders' non-ASCII paths are exercised too.
    """
    words = [
        "The",
        " quick",
        " brown",
        " fox",
        " jumps",
        " over",
        " the",
        " lazy",
        " dog",
        ",",
        " café",
        " naïve",
        " 東京",
        " 🚀",
        " and",
        " so",
        " on",
        ".",
    ]
    head = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "mock-model",
        "system_fingerprint": "fp_bench",
    }
    events = []
    total = 0
    i = 0
    while total < size_bytes:
        chunk = {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": words[i % len(words)]},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
        event = encode(json.dumps(chunk, ensure_ascii=False, separators=(",", ":")))
        events.append(event)
        total += len(event)
        i += 1
    events.append(encode("[DONE]"))
    return events


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark input: a name and the feeds, in order."""

    name: str
    feeds: list[bytes]
    events: int

    @property
    def size_bytes(self) -> int:
        return sum(map(len, self.feeds))


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def cases(stream_mb: float = 10.0, bytewise_kb: float = 100.0) -> list[Case]:
    """The three inputs the issue names: per-event feeds, 64 KiB feeds, 1-byte feeds."""
    events = chat_stream(int(stream_mb * 1_000_000))
    whole = b"".join(events)
    small = chat_stream(int(bytewise_kb * 1_000))
    return [
        Case(f"{stream_mb:g} MB, one event per feed", events, len(events)),
        Case(f"{stream_mb:g} MB, 64 KiB feeds", _split(whole, 65536), len(events)),
        Case(f"{bytewise_kb:g} KB, 1-byte feeds", _split(b"".join(small), 1), len(small)),
    ]


def decode_harness(feeds: list[bytes]) -> int:
    decoder = Decoder()
    n = 0
    for feed in feeds:
        n += len(decoder.feed(feed))
    decoder.close()
    return n


def decode_httpx_sse(feeds: list[bytes]) -> int:
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder  # the pipeline aiter_sse runs

    text_decoder = codecs.getincrementaldecoder("utf-8")("replace")
    lines = SSELineDecoder()
    sse = SSEDecoder()
    n = 0
    for feed in feeds:
        text = text_decoder.decode(feed)
        if not text:
            continue
        for line in lines.decode(text):
            if sse.decode(line) is not None:
                n += 1
    for line in lines.flush():
        if sse.decode(line) is not None:
            n += 1
    return n


DECODERS: dict[str, Callable[[list[bytes]], int]] = {
    "harness.sse": decode_harness,
    "httpx-sse": decode_httpx_sse,
}


@dataclass(frozen=True, slots=True)
class Measurement:
    case: str
    decoder: str
    events: int
    best_s: float
    size_bytes: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.best_s

    @property
    def mb_per_s(self) -> float:
        return self.size_bytes / self.best_s / 1e6


def run_parser_bench(
    *, rounds: int = 5, stream_mb: float = 10.0, bytewise_kb: float = 100.0
) -> Iterator[Measurement]:
    """Measure every decoder on every case, rounds interleaved; yield the best of each.

    Raises:
        RuntimeError: a decoder returned a different number of events than were encoded.
    """
    for case in cases(stream_mb, bytewise_kb):
        best = dict.fromkeys(DECODERS, float("inf"))
        for _ in range(rounds):
            for name, decode in DECODERS.items():
                start = time.perf_counter_ns()
                n = decode(case.feeds)
                elapsed = (time.perf_counter_ns() - start) / 1e9
                if n != case.events:
                    raise RuntimeError(f"{name} decoded {n} events of {case.events} ({case.name})")
                best[name] = min(best[name], elapsed)
        for name, seconds in best.items():
            yield Measurement(case.name, name, case.events, seconds, case.size_bytes)
