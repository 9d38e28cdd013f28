"""Captured suites built from bytes and times, for the checks' pure tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from harness.conformance.captured import Captured, Disconnect, Ending, Exchange, Purpose
from harness.conformance.catalogue import CATALOGUE
from harness.conformance.model import CheckResult
from harness.conformance.reading import read_suite
from harness.sse import encode

MS = 1_000_000
SSE_HEADERS = (
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)
ENVELOPE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    """One OpenAI chat chunk as an SSE event."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return encode(json.dumps({**ENVELOPE, "choices": choices, **extra}))


def chat_stream(
    texts: Sequence[str] = ("Hel", "lo", " wor", "ld", "!", " How", " are", " you"),
    *,
    role_every: bool = False,
    usage_every: bool = False,
    usage_on_finish: bool = False,
    usage_chunk: bool = False,
    finish: str | None = "stop",
    done: bool = True,
) -> list[bytes]:
    """A chat stream, one event per element; the vendor habits as asked."""
    events = [chunk({"role": "assistant", "content": ""})]
    for number, text in enumerate(texts, start=1):
        delta: dict[str, Any] = {"content": text}
        if role_every:
            delta["role"] = "assistant"
        extra = {}
        if usage_every:
            extra["usage"] = {
                "prompt_tokens": 5,
                "completion_tokens": number,
                "total_tokens": 5 + number,
            }
        events.append(chunk(delta, **extra))
    usage = {"prompt_tokens": 5, "completion_tokens": len(texts), "total_tokens": 5 + len(texts)}
    if finish is not None:
        extra = {"usage": usage} if usage_every or usage_on_finish else {}
        events.append(chunk({}, finish, **extra))
    if usage_chunk:
        events.append(chunk(None, usage=usage))
    if done:
        events.append(encode("[DONE]"))
    return events


def exchange(
    chunks: Sequence[bytes],
    *,
    label: str = "stream-1",
    purpose: Purpose = Purpose.ORDINARY,
    status: int = 200,
    headers: tuple[tuple[str, str], ...] = SSE_HEADERS,
    times_ns: Sequence[int] | None = None,
    t_sent_ns: int = 0,
    ending: Ending = Ending.EOF,
    asked_tokens: int | None = 16,
    include_usage: bool = False,
) -> Exchange:
    """An exchange whose reads arrive at ``times_ns`` (default: 50 ms, then every 10 ms)."""
    times = (
        list(times_ns)
        if times_ns is not None
        else [t_sent_ns + 50 * MS + i * 10 * MS for i in range(len(chunks))]
    )
    return Exchange(
        label=label,
        purpose=purpose,
        status=status,
        headers=headers,
        t_sent_ns=t_sent_ns,
        t_headers_ns=t_sent_ns + MS,
        chunks=tuple(zip(times, chunks, strict=True)),
        t_end_ns=(times[-1] if times else t_sent_ns + MS) + MS,
        ending=ending,
        asked_tokens=asked_tokens,
        include_usage=include_usage,
    )


def captured(
    *exchanges: Exchange,
    request: str = "openai-chat",
    dialect: str = "auto",
    disconnect: Disconnect | None = None,
) -> Captured:
    return Captured(
        target="http://127.0.0.1:1/v1/chat/completions",
        request=request,
        dialect=dialect,
        exchanges=exchanges,
        disconnect=disconnect or Disconnect(),
    )


def run(check_id: str, suite: Captured) -> CheckResult:
    """The result of one check of the catalogue over ``suite``."""
    check = next(c for c in CATALOGUE if c.id == check_id)
    return CheckResult.of(check, check.run(read_suite(suite)))
