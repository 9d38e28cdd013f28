"""A ``text/plain`` stream of the tokens, nothing else: the simplest tutorial answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI
from pydantic import BaseModel


class ChatRequest(BaseModel):
    prompt: str
    max_tokens: int = 64


def create_app(upstream: str) -> FastAPI:
    app = FastAPI()
    client = AsyncOpenAI(base_url=upstream + "/v1", api_key="sk-unused", max_retries=0)

    @app.post("/chat")
    async def chat(request: ChatRequest) -> StreamingResponse:
        async def generate() -> AsyncIterator[str]:
            stream = await client.chat.completions.create(
                model="mock-model",
                messages=[{"role": "user", "content": request.prompt}],
                max_tokens=request.max_tokens,
                stream=True,
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

        return StreamingResponse(generate(), media_type="text/plain")

    return app
