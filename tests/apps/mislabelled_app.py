"""An OpenAI-compatible relay that passes the upstream's event stream through untouched,
but labels it wrongly, as hand-written relays do: ``text/plain`` on one route, and on
the other no Content-Type at all (a ``StreamingResponse`` without a ``media_type``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse


def create_app(upstream: str) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream, timeout=30)

    async def relay(request: Request, media_type: str | None) -> StreamingResponse:
        body = await request.body()
        headers = {"content-type": "application/json"}
        answer = await client.send(
            client.build_request("POST", "/v1/chat/completions", content=body, headers=headers),
            stream=True,
        )

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:
                await answer.aclose()

        return StreamingResponse(chunks(), status_code=answer.status_code, media_type=media_type)

    @app.post("/plain/v1/chat/completions")
    async def plain(request: Request) -> StreamingResponse:
        return await relay(request, "text/plain")

    @app.post("/unlabelled/v1/chat/completions")
    async def unlabelled(request: Request) -> StreamingResponse:
        return await relay(request, None)

    return app
