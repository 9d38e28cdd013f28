"""The yardstick of ``sse-harness bench mock``: the plainest aiohttp mock of a chat stream.

Each request is one aiohttp handler that sleeps until each token is due (``start + ttft +
k * itl``, absolute times, so lateness does not add up) and writes an OpenAI chat chunk
of the mock's size. It keeps, per request, when each token was due and when it was
handed to aiohttp, and serves them as the mock does (``GET /mock/requests/{id}``, the id
in ``x-mock-request-id``), so ``bench mock`` reads both servers' send lateness the same
way, beside each other in the same run. It is what anyone would write first, with no
scheduling of its own: the product's mock is worth its code only where it beats this.

Run as ``python -m harness.calibration.plain_mock --port 0``; it prints the line the
embedded mock prints once it listens. Loopback only; it stops with its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

from aiohttp import web

from harness.lifeline import die_with_parent, watch_pipe

__all__ = ["main"]

#: How many requests' timings are kept (the oldest go first).
KEPT = 100_000
_CHUNK = (
    'data: {{"id":"chatcmpl-plain{rid:0>16}","object":"chat.completion.chunk",'
    '"created":1700000000,"model":"plain","system_fingerprint":"fp_plain",'
    '"choices":[{{"index":0,"delta":{{"content":" token"}},"logprobs":null,'
    '"finish_reason":null}}]}}\n\n'
)


def app(ttft_ms: float, itl_ms: float, tokens: int) -> web.Application:
    """The yardstick's routes: chat streams and their timings."""
    timings: dict[str, dict[str, list[int]]] = {}
    numbers = itertools.count(1)

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        count = int(request.headers.get("X-Mock-Tokens", tokens))
        rid = f"plain-{next(numbers):06d}"
        due_ns: list[int] = []
        written_ns: list[int] = []
        timings[rid] = {"scheduled_ns": due_ns, "token_write_ns": written_ns}
        if len(timings) > KEPT:
            del timings[next(iter(timings))]
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-mock-request-id": rid}
        )
        await response.prepare(request)
        chunk = _CHUNK.format(rid=rid).encode()
        start = time.perf_counter_ns() + int(ttft_ms * 1e6)
        for k in range(count):
            due = start + int(k * itl_ms * 1e6)
            while (wait := due - time.perf_counter_ns()) > 0:  # a timer may fire early
                await asyncio.sleep(wait / 1e9)
            due_ns.append(due)
            written_ns.append(time.perf_counter_ns())  # just before the hand-over
            await response.write(chunk)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def truth(request: web.Request) -> web.Response:
        found = timings.get(request.match_info["rid"])
        if found is None:
            raise web.HTTPNotFound()
        return web.json_response(found, dumps=json.dumps)

    application = web.Application()
    application.router.add_post("/v1/chat/completions", chat)
    application.router.add_get("/mock/requests/{rid}", truth)
    return application


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.calibration.plain_mock")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=20.0)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--parent-pipe", type=int)
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid, signal.SIGTERM)
    if args.parent_pipe is not None:
        watch_pipe(args.parent_pipe, lambda: os.kill(os.getpid(), signal.SIGTERM))

    async def serve() -> None:
        runner = web.AppRunner(app(args.ttft_ms, args.itl_ms, args.tokens), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port, backlog=4096)
        await site.start()
        port = runner.addresses[0][1]
        print(f"mock LLM server on http://{args.host}:{port} (plain aiohttp)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    run = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        pass
    run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
