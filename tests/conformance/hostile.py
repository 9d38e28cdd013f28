"""A hostile event-stream server, for the checker's robustness tests and measurements.

Every request, whatever its path and method, gets the answer of the server's mode:

- ``tiny``: ``--events`` events of one byte of data each (``data: x``), then ``[DONE]``;
- ``lines``: one event of ``--events`` ``data:`` lines;
- ``deep``: a chat stream with an event of ``--events`` ``[`` (JSON nested that deep);
- ``controls``: a chat stream, an error body and headers full of control characters;
- ``echo``: the request's ``Authorization`` and ``X-*`` header values echoed back in
  every place a check can show: an error body, an in-stream error, a broken event, a
  response header.

Run it on its own (it prints ``hostile server on http://127.0.0.1:PORT``) to measure the
checker against it from outside::

    python -m tests.conformance.hostile tiny --events 100000

or start it in a test with ``serving(mode, ...)``, which runs it on a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

__all__ = ["MODES", "Hostile", "serving"]

MODES = ("tiny", "lines", "deep", "controls", "echo")
_CHUNK = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
#: Control characters a stream can carry: ESC (a terminal escape), NUL, BEL, C1 CSI.
CONTROLS = "\x1b[31m\x00\x07\x9b2J"


@dataclass(frozen=True, slots=True)
class Hostile:
    """What the server sends: its mode, a count of events or lines or brackets, and the
    size of each write."""

    mode: str
    events: int = 100_000
    write_bytes: int = 4096


def _chat(delta: dict[str, object], finish: str | None = None, **extra: object) -> bytes:
    chunk = {**_CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps({**chunk, **extra}).encode() + b"\n\n"


def _echoed(request: web.Request) -> str:
    """The request's secrets as the server saw them: the key and every X- header."""
    values = [request.headers.get("authorization", "").removeprefix("Bearer ")]
    values += [v for k, v in request.headers.items() if k.lower().startswith("x-")]
    return " ".join(v for v in values if v)


def _body(hostile: Hostile, request: web.Request, posted: bytes) -> bytes:
    n = hostile.events
    if hostile.mode == "tiny":
        return b"data: x\n\n" * n + b"data: [DONE]\n\n"
    if hostile.mode == "lines":
        return b"data: x\n" * n + b"\n"
    if hostile.mode == "deep":
        deep = b"data: " + b"[" * n + b"\n\n"
        return _chat({"role": "assistant", "content": ""}) + deep + _chat({"content": "hi"}, "stop")
    if hostile.mode == "controls":
        return b"".join(
            [
                _chat({"role": "assistant", "content": CONTROLS}),
                f"data: {{broken {CONTROLS}\n\n".encode(),  # raw controls in an excerpt
                f"{CONTROLS}field: value\n\n".encode(),  # an unknown field named with them
                _chat({}, finish=CONTROLS),
                b"data: [DONE]\n\n",
            ]
        )
    secret = _echoed(request)
    padding = "p" * 100  # so that the secret straddles the cut of a short excerpt
    error = {"error": {"message": f"quota exceeded for {secret}", "type": "x"}}
    return b"".join(
        [
            _chat({"role": "assistant", "content": "hello"}),
            f"data: {{not json {padding} {secret}\n\n".encode(),
            b"data: " + json.dumps(error).encode() + b"\n\n",
            f"{padding}{secret}: an unknown field named by the secret\n\n".encode(),
            _chat({}, finish=f"stop {secret}"),
            b"data: [DONE]\n\n",
        ]
    )


def _refusal(hostile: Hostile, request: web.Request) -> web.Response:
    """The answer to an invalid request in the ``controls`` and ``echo`` modes."""
    if hostile.mode == "controls":
        text = f"bad request {CONTROLS}"
    else:
        text = f"bad request {'p' * 90} from {_echoed(request)}"  # cut inside the key
    return web.Response(status=400, text=text, content_type="text/plain")


def _is_invalid(posted: bytes) -> bool:
    try:
        body = json.loads(posted)
    except ValueError:
        return True
    return (
        not isinstance(body, dict)
        or not isinstance(body.get("messages"), list)
        or ("max_tokens" in body and not isinstance(body["max_tokens"], int))
    )


def app(hostile: Hostile) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        posted = await request.read()
        if hostile.mode in ("controls", "echo") and _is_invalid(posted):
            return _refusal(hostile, request)
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if hostile.mode == "echo":
            headers["Cache-Control"] = f"private, token={_echoed(request)}"
            headers["Content-Type"] = f"text/event-stream; key={_echoed(request)}"
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        body = _body(hostile, request, posted)
        step = hostile.write_bytes
        try:
            for start in range(0, len(body), step):
                await response.write(body[start : start + step])
        except ConnectionError:  # the client left (the abandoned stream)
            return response
        await response.write_eof()
        return response

    application = web.Application(client_max_size=1 << 20)
    application.router.add_route("*", "/{tail:.*}", handle)
    return application


async def _serve(hostile: Hostile, on_start: Callable[[str], None], stop: asyncio.Event) -> None:
    runner = web.AppRunner(app(hostile), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    on_start(f"http://127.0.0.1:{port}")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@contextmanager
def serving(mode: str, **options: int) -> Iterator[str]:
    """Serve ``Hostile(mode, **options)`` on a thread of its own; yields its base URL."""
    hostile = Hostile(mode, **options)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    urls: queue.Queue[str] = queue.Queue()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(_serve(hostile, urls.put, stop),), daemon=True
    )
    thread.start()
    try:
        yield urls.get(timeout=30)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--write-bytes", type=int, default=4096)
    args = parser.parse_args()
    hostile = Hostile(args.mode, args.events, args.write_bytes)
    announce = functools.partial(print, "hostile server on", flush=True)
    asyncio.run(_serve(hostile, announce, asyncio.Event()))


if __name__ == "__main__":
    main()
