"""A hostile streaming endpoint: a raw asyncio HTTP/1.1 server whose every route misbehaves
the way untrusted servers do, for tests that use ``sse-harness`` as a new user would::

    python -m tests.apps.hostile

prints ``serving hostile on http://127.0.0.1:<port>`` and serves until terminated. The
route is the behaviour:

    /slow-headers   the status line and headers, one byte every 0.5 s
    /comments       a 200 event stream of ``: ping`` comments, forever
    /deep-json      one event whose data is 100,000 ``[``
    /empty          a 200 event stream with an empty body
    /garbage        a 200 event stream of binary garbage
    /echo           echoes the Authorization, x-api-key and x-secret header values back
                    in every place a server can: a response header, a bad event's
                    excerpt, the finish reason, usage, and an in-stream error
    /echo-status    a 401 whose body echoes the key
    /redirect       a 301 to another origin (a port that nobody serves)
    /ok             a well-formed OpenAI chat stream of three tokens
    /no-done        a complete OpenAI chat stream (finish_reason, usage) without [DONE],
                    as ``transformers serve`` streams
    /json           a 200 with a JSON body (not a stream) to a streaming request
    /tools          an OpenAI chat stream that carries tool-call arguments only
    /limited        serves 2 streams at a time (0.3 s each); beyond that a 429 with
                    ``Retry-After: 1``
"""

from __future__ import annotations

import asyncio
import json

DONE = b"data: [DONE]\n\n"


def _chunk(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _content(text: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    return _chunk({"id": "c1", "object": "chat.completion.chunk", "choices": [choice]})


#: Streams open on /limited.
LIMITED = [0]


def _tool_delta(call: dict[str, object]) -> bytes:
    choice = {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
    return _chunk({"id": "c1", "object": "chat.completion.chunk", "choices": [choice]})


def _head(status: str, content_type: str = "text/event-stream", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{extra}connection: close\r\n\r\n"
    ).encode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return path, headers


def _secrets(headers: dict[str, str]) -> list[str]:
    found = [headers.get("x-api-key", ""), headers.get("x-secret", "")]
    authorization = headers.get("authorization", "")
    found.append(authorization.removeprefix("Bearer ").strip())
    return [s for s in found if s]


async def _answer(path: str, headers: dict[str, str], writer: asyncio.StreamWriter) -> None:
    if path == "/slow-headers":
        for byte in _head("200 OK"):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.5)
    elif path == "/comments":
        writer.write(_head("200 OK"))
        while True:
            writer.write(b": ping\n\n")
            await writer.drain()
            await asyncio.sleep(0.05)
    elif path == "/deep-json":
        writer.write(_head("200 OK") + b"data: " + b"[" * 100_000 + b"\n\n" + DONE)
    elif path == "/empty":
        writer.write(_head("200 OK"))
    elif path == "/garbage":
        writer.write(_head("200 OK") + bytes(range(256)) * 64)
    elif path == "/echo":
        keys = " ".join(_secrets(headers))
        writer.write(_head("200 OK", f"text/event-stream; charset=utf-8; note={keys}"))
        writer.write(_content("one") + b"data: {not json " + keys.encode() + b"\n\n")
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "note": keys}
        writer.write(_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": keys}]}))
        writer.write(_chunk({"choices": [], "usage": usage}))
        writer.write(_chunk({"error": {"message": f"bad key {keys}", "type": "auth"}}))
        writer.write(DONE)
    elif path == "/echo-status":
        body = json.dumps({"error": f"invalid key {' '.join(_secrets(headers))}"}).encode()
        writer.write(_head("401 Unauthorized", "application/json") + body)
    elif path == "/redirect":
        writer.write(
            _head("301 Moved Permanently", "text/plain", "location: http://127.0.0.2:9/\r\n")
        )
    elif path == "/no-done":
        writer.write(_head("200 OK"))
        for text in ("a", "b", "c"):
            writer.write(_content(text))
        usage = {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
        writer.write(_content("", "stop") + _chunk({"choices": [], "usage": usage}))
    elif path == "/json":
        body = json.dumps({"choices": [{"message": {"content": "abc"}}]}).encode()
        writer.write(_head("200 OK", "application/json") + body)
    elif path == "/tools":
        writer.write(_head("200 OK"))
        start = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
        writer.write(_tool_delta({**start, "function": {"name": "f", "arguments": ""}}))
        for piece in ('{"city"', ': "Paris"', "}"):
            writer.write(_tool_delta({"index": 0, "function": {"arguments": piece}}))
        usage = {"prompt_tokens": 1, "completion_tokens": 12, "total_tokens": 13}
        finish = {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
        writer.write(_chunk({"choices": [finish]}) + _chunk({"choices": [], "usage": usage}))
        writer.write(DONE)
    elif path == "/limited":
        if LIMITED[0] >= 2:
            writer.write(_head("429 Too Many Requests", "application/json", "retry-after: 1\r\n"))
            writer.write(b'{"error": "rate limited"}')
        else:
            LIMITED[0] += 1
            try:
                writer.write(_head("200 OK"))
                for text in ("a", "b", "c"):
                    writer.write(_content(text))
                    await writer.drain()
                    await asyncio.sleep(0.1)
                writer.write(_content("", "stop") + DONE)
            finally:
                LIMITED[0] -= 1
    else:
        writer.write(_head("200 OK"))
        for text in ("a", "b", "c"):
            writer.write(_content(text))
        writer.write(_content("", "stop") + DONE)
    await writer.drain()


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        path, headers = await _read_request(reader)
        await _answer(path, headers, writer)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(_serve_one, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"serving hostile on http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
