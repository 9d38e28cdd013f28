"""sse-starlette's ``EventSourceResponse`` yielding ``{"data": ...}`` dicts."""

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

    @app.post("/chat")
    async def chat(request: ChatRequest) -> EventSourceResponse:
        async def events() -> AsyncIterator[dict[str, str]]:
            stream = await client.chat.completions.create(
                model="mock-model",
                messages=[{"role": "user", "content": request.prompt}],
                max_tokens=request.max_tokens,
                stream=True,
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield {"data": json.dumps({"content": chunk.choices[0].delta.content})}
            yield {"data": "[DONE]"}

        return EventSourceResponse(events())

    return app
