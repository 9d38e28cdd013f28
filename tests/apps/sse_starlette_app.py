"""sse-starlette's ``EventSourceResponse`` yielding ``{"data": ...}`` dicts: answers to a
POSTed prompt, and to a question in a GET's query (``/stream?q=...``) as an
``EventSource`` in a page would ask it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import FastAPI
from openai import AsyncOpenAI
from pydantic import BaseModel
from sse_starlette import EventSourceResponse


class ChatRequest(BaseModel):
    prompt: str
    max_tokens: int = 64


def create_app(upstream: str) -> FastAPI:
    app = FastAPI()
    client = AsyncOpenAI(base_url=upstream + "/v1", api_key="sk-unused", max_retries=0)

    async def events(prompt: str, max_tokens: int) -> AsyncIterator[dict[str, str]]:
        stream = await client.chat.completions.create(
            model="mock-model",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield {"data": json.dumps({"content": chunk.choices[0].delta.content})}
        yield {"data": "[DONE]"}

    @app.post("/chat")
    async def chat(request: ChatRequest) -> EventSourceResponse:
        return EventSourceResponse(events(request.prompt, request.max_tokens))

    @app.get("/stream")
    async def stream(q: str) -> EventSourceResponse:
        return EventSourceResponse(events(q, 64))

    return app
