"""The classic mistake: the synchronous ``openai.OpenAI`` client called inside an async
generator. Every call blocks the event loop, so concurrent streams wait for each other.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import OpenAI
from pydantic import BaseModel


class ChatRequest(BaseModel):
    prompt: str
    max_tokens: int = 64


def create_app(upstream: str) -> FastAPI:
    app = FastAPI()
    client = OpenAI(base_url=upstream + "/v1", api_key="sk-unused", max_retries=0)

    @app.post("/chat")
    async def chat(request: ChatRequest) -> StreamingResponse:
        async def generate() -> AsyncIterator[str]:
            stream = client.chat.completions.create(  # blocks the event loop
                model="mock-model",
                messages=[{"role": "user", "content": request.prompt}],
                max_tokens=request.max_tokens,
                stream=True,
            )
            for chunk in stream:  # and so does every read
                if chunk.choices and chunk.choices[0].delta.content:
                    yield f"data: {json.dumps({'content': chunk.choices[0].delta.content})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            generate(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return app
