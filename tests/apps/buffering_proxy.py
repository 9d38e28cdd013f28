"""A reverse proxy that buffers: it forwards an OpenAI request upstream, reads the whole
streamed answer, and only then sends it on, as a proxy with response buffering does."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request, Response


def create_app(upstream: str) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream, timeout=60)

    @app.post("/v1/chat/completions")
    async def proxy(request: Request) -> Response:
        answer = await client.post(
            "/v1/chat/completions",
            content=await request.body(),
            headers={"content-type": "application/json"},
        )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
        )

    return app
