"""OpenAI-compatible chat endpoints written by hand, each with one bug of the kind real
servers ship (and one without): ``/<bug>/v1/chat/completions``.

Tokens are generated here, one every 10 ms after 30 ms, so that the suite can tell a
buffered answer from a streamed one. Invalid requests get OpenAI's 400, except on the
route that streams whatever it is sent.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

BUGS = (
    "clean",
    "buffered",  # the whole answer at once, after it was all generated
    "no-done",  # no data: [DONE]
    "text-plain",  # a good event stream labelled text/plain
    "broken-json",  # one chunk's JSON cut short
    "finish-twice",  # finish_reason on two chunks
    "no-finish",  # no chunk carries a finish_reason
    "changing-id",  # the id changes mid-stream
    "no-usage",  # stream_options.include_usage ignored
    "unterminated",  # the last event lacks its blank line
    "accepts-invalid",  # a 200 stream for a request that should be refused
    "crashes-on-invalid",  # an unhandled error (500) for a body that is not JSON
    "gzip-flushed",  # gzip when the client accepts it, each event flushed: fine
    "gzip-held",  # gzip without flushing: the compressor holds the answer back
)
WORDS = ("the", "keeper", "lit", "the", "lamp", "and", "watched", "the", "ships", "come",
         "home", "through", "the", "fog")  # fmt: skip


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("messages"), list):
        return "'messages' is required and must be an array"
    if "max_tokens" in body and not isinstance(body["max_tokens"], int):
        return "'max_tokens' must be an integer"
    return None


def create_app(upstream: str) -> FastAPI:
    app = FastAPI()

    @app.post("/{bug}/v1/chat/completions", response_model=None)
    async def chat(bug: str, request: Request) -> Response:
        raw = await request.body()
        if bug == "crashes-on-invalid":
            body = json.loads(raw)  # unhandled: uvicorn answers 500 and drops the connection
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        problem = _invalid(body)
        if bug not in BUGS or (problem and bug != "accepts-invalid"):
            error = {"message": problem or "no such route", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, status_code=400 if problem else 404)
        body = body if isinstance(body, dict) else {}
        tokens = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else 16
        usage_asked = bool((body.get("stream_options") or {}).get("include_usage"))
        events = _events(bug, max(1, min(tokens, 400)), usage_asked)
        media_type = "text/plain" if bug == "text-plain" else "text/event-stream"
        headers = {"Cache-Control": "no-cache"}
        accepts = request.headers.get("accept-encoding", "")
        if bug.startswith("gzip-") and "gzip" in accepts:
            headers["Content-Encoding"] = "gzip"
            events = _gzipped(events, flush=bug == "gzip-flushed")
        return StreamingResponse(events, media_type=media_type, headers=headers)

    return app


async def _gzipped(events: AsyncIterator[bytes], *, flush: bool) -> AsyncIterator[bytes]:
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    async for data in events:
        out = compressor.compress(data)
        if flush:
            out += compressor.flush(zlib.Z_SYNC_FLUSH)
        if out:
            yield out
    yield compressor.flush()


async def _events(bug: str, tokens: int, usage_asked: bool) -> AsyncIterator[bytes]:
    created = int(time.time())
    held: list[bytes] = []

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
        identity = (
            "chatcmpl-b" if bug == "changing-id" and len(held) > tokens // 2 else "chatcmpl-a"
        )
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        envelope = {"id": identity, "object": "chat.completion.chunk", "created": created,
                    "model": "hand-written", "choices": choices, **extra}  # fmt: skip
        data = json.dumps(envelope)
        if bug == "broken-json" and len(held) == 2:
            data = data[:-1]
        return f"data: {data}\n\n".encode()

    async def send(data: bytes) -> AsyncIterator[bytes]:
        held.append(data)
        if bug != "buffered":
            yield data

    await asyncio.sleep(0.03)
    async for out in send(chunk({"role": "assistant", "content": ""})):
        yield out
    for number in range(tokens):
        await asyncio.sleep(0.01)
        async for out in send(chunk({"content": " " + WORDS[number % len(WORDS)]})):
            yield out
    finish = None if bug == "no-finish" else "length"
    if bug == "finish-twice":
        async for out in send(chunk({}, "length")):
            yield out
    async for out in send(chunk({}, finish)):
        yield out
    if usage_asked and bug != "no-usage":
        usage = {"prompt_tokens": 9, "completion_tokens": tokens, "total_tokens": 9 + tokens}
        async for out in send(chunk(None, usage=usage)):
            yield out
    if bug != "no-done":
        done = b"data: [DONE]\n" if bug == "unterminated" else b"data: [DONE]\n\n"
        async for out in send(done):
            yield out
    if bug == "buffered":
        yield b"".join(held)
