"""Named events with ``id:`` lines (``start``, ``content``, ``complete``), fed by a
producer task through an ``asyncio.Queue``, as many tutorials do it.

The producer task is not tied to the response: when the client leaves, the task reads
the upstream stream to its end anyway, so the upstream keeps generating for nobody.
"""

from __future__ import annotations

import asyncio
import json
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
    producers: set[asyncio.Task[None]] = set()

    @app.post("/chat")
    async def chat(request: ChatRequest) -> StreamingResponse:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        async def produce() -> None:
            stream = await client.chat.completions.create(
                model="mock-model",
                messages=[{"role": "user", "content": request.prompt}],
                max_tokens=request.max_tokens,
                stream=True,
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    await queue.put(chunk.choices[0].delta.content)
            await queue.put(None)

        task = asyncio.create_task(produce())
        producers.add(task)
        task.add_done_callback(producers.discard)

        async def events() -> AsyncIterator[str]:
            yield f"event: start\ndata: {json.dumps({'model': 'mock-model'})}\n\n"
            parts: list[str] = []
            while (token := await queue.get()) is not None:
                parts.append(token)
                data = json.dumps({"content": token})
                yield f"event: content\nid: {len(parts)}\ndata: {data}\n\n"
            done = {"finish_reason": "stop", "full_content": "".join(parts)}
            yield f"event: complete\ndata: {json.dumps(done)}\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return app
