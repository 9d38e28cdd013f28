"""An app whose tokens come from a producer thread, the way apps that run
``model.generate(..., streamer=TextIteratorStreamer(...))`` in a thread stream them.

``POST /v1/chat/completions`` streams OpenAI chat chunks, ``max_tokens`` of them (40 by
default), one every ``itl_s``. ``GET /metrics`` exposes the producer threads running as
``app_streams{route="chat"}``, beside a constant ``app_streams{route="embed"} 2`` that a
selector for the chat route must leave out.

Two modes:

* ``keeps_generating``: the producer runs to ``max_tokens`` whether or not anyone still
  reads. The response's generator stops when the client leaves; the thread does not.
* ``stops``: closing the response's generator (the client left) sets a stop flag the
  producer waits on between tokens, so that it stops at once, not at its next token.

Run ``python -m tests.apps.producer_app`` to serve both on free loopback ports; it prints
``serving <mode> on <base url>`` for each once it listens.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

MODES = ("keeps_generating", "stops")
DEFAULT_TOKENS = 40


def create_app(*, stops_on_disconnect: bool, itl_s: float = 0.05) -> FastAPI:
    app = FastAPI()
    registry = CollectorRegistry()
    streams = Gauge("app_streams", "Producer threads running", ["route"], registry=registry)
    chat_streams = streams.labels(route="chat")
    streams.labels(route="embed").set(2)

    def produce(put: Callable[[str | None], None], count: int, stop: threading.Event) -> None:
        chat_streams.inc()
        try:
            start = time.monotonic()
            for i in range(count):
                if stop.wait(max(start + (i + 1) * itl_s - time.monotonic(), 0)):
                    return
                put(f"word{i} ")
        finally:
            put(None)
            chat_streams.dec()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body: dict[str, Any] = await request.json()
        count = int(body.get("max_tokens") or DEFAULT_TOKENS)
        tokens: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def put(token: str | None) -> None:
            loop.call_soon_threadsafe(tokens.put_nowait, token)

        threading.Thread(target=produce, args=(put, count, stop), daemon=True).start()

        def chunk(delta: dict[str, str], finish: str | None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            data = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                    "model": "producer", "choices": [choice]}  # fmt: skip
            return f"data: {json.dumps(data)}\n\n"

        async def events() -> AsyncIterator[str]:
            try:
                yield chunk({"role": "assistant", "content": ""}, None)
                while (token := await tokens.get()) is not None:
                    yield chunk({"content": token}, None)
                yield chunk({}, "length")
                yield "data: [DONE]\n\n"
            finally:
                if stops_on_disconnect:
                    stop.set()

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


async def serve() -> None:
    servers = []
    for mode in MODES:
        app = create_app(stops_on_disconnect=mode == "stops")
        sock = _listen()
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        servers.append(uvicorn.Server(config).serve(sockets=[sock]))
        print(f"serving {mode} on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await asyncio.gather(*servers)


if __name__ == "__main__":
    asyncio.run(serve())
