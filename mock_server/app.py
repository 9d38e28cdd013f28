"""The aiohttp application: routes, CORS, request counting, and the info endpoints.

``create_app(config)`` builds one worker's application. Its state lives under the typed
key ``mock_server.state.RUNTIME``; the tick scheduler (and, with several workers, the
peer clients) are made and closed by ``cleanup_ctx``.

Routes: the generation endpoints (``/v1/chat/completions``, ``/v1/completions``,
``/v1/responses``, ``/v1/messages``, ``/tutorial/{content,events,text,counter}``), with a
CORS preflight for each; ``/v1/models``, ``/healthz``, ``/metrics``, and
``/mock/requests/{id}`` (the ground truth; ``?wait_ms=`` waits for the request to end).
Only the generation endpoints are open to pages of other origins (``cors_origin``, by
default ``*``); the other routes send a CORS header only when ``control_cors_origin``
names an origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from mock_server import metrics as metrics_text
from mock_server.cluster import INTERNAL_METRICS_PATH, Peers
from mock_server.config import MockConfig
from mock_server.handlers import REQUEST_ID_HEADER, generate
from mock_server.plan import Endpoint
from mock_server.state import RUNTIME, Runtime, WorkerInfo
from mock_server.stream import TickScheduler

__all__ = ["GENERATION_ROUTES", "create_app"]

logger = logging.getLogger(__name__)

#: path -> (endpoint, methods)
GENERATION_ROUTES: dict[str, tuple[Endpoint, tuple[str, ...]]] = {
    "/v1/chat/completions": (Endpoint.CHAT, ("POST",)),
    "/v1/completions": (Endpoint.COMPLETIONS, ("POST",)),
    "/v1/responses": (Endpoint.RESPONSES, ("POST",)),
    "/v1/messages": (Endpoint.MESSAGES, ("POST",)),
    "/tutorial/content": (Endpoint.TUTORIAL_CONTENT, ("GET", "POST")),
    "/tutorial/events": (Endpoint.TUTORIAL_EVENTS, ("GET", "POST")),
    "/tutorial/text": (Endpoint.TUTORIAL_TEXT, ("GET", "POST")),
    "/tutorial/counter": (Endpoint.TUTORIAL_COUNTER, ("GET", "POST")),
}
_MAX_WAIT_MS = 30_000
_EXPOSED = f"{REQUEST_ID_HEADER}, Retry-After"
_DEFAULT_ALLOWED_HEADERS = "Content-Type, Authorization"
#: A comma-separated list of HTTP header names (RFC 9110 tokens).
_HEADER_NAMES = re.compile(
    r"[-!#$%&'*+.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[-!#$%&'*+.^_`|~0-9A-Za-z]+)*"
)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _count_requests(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Count every answered request by route and status (unknown paths as ``other``).

    A handler's unexpected exception, which aiohttp answers with 500, is counted as 500.
    """
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else "other"
    counter = request.app[RUNTIME].metrics.requests
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        counter[(path, exc.status)] += 1
        raise
    except ConnectionError:  # the client left: nothing is answered
        raise
    except Exception:  # the boundary: aiohttp answers 500; count it before it does
        counter[(path, 500)] += 1
        raise
    counter[(path, response.status)] += 1
    return response


async def _add_cors(request: web.Request, response: web.StreamResponse) -> None:
    """Add CORS headers: open on the generation endpoints, narrow on every other route.

    The generation endpoints and their preflights get ``cors_origin``; the ground truth,
    metrics, health and models get ``control_cors_origin``, by default none.
    """
    config = request.app[RUNTIME].config
    resource = request.match_info.route.resource
    if resource is not None and resource.canonical in GENERATION_ROUTES:
        origin: str | None = config.cors_origin
        response.headers["Access-Control-Expose-Headers"] = _EXPOSED
    else:
        origin = config.control_cors_origin
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    if origin != "*":
        response.headers["Vary"] = "Origin"


async def _preflight(request: web.Request) -> web.Response:
    """Answer a CORS preflight for any of the generation endpoints.

    The headers the browser asks for are allowed as asked when they are a list of header
    names (what a browser sends); anything else gets the default list, never an echo.
    """
    asked = request.headers.get("Access-Control-Request-Headers", "").strip()
    allowed = asked if _HEADER_NAMES.fullmatch(asked) else _DEFAULT_ALLOWED_HEADERS
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": allowed,
            "Access-Control-Max-Age": "600",
        },
    )


async def _models(request: web.Request) -> web.Response:
    """The configured models, in OpenAI's list shape (Anthropic's for Anthropic clients)."""
    names = request.app[RUNTIME].config.models
    data: list[dict[str, object]]
    if "anthropic-version" in request.headers:
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for name in names
        ]
        return web.json_response(
            {"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]}
        )
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "mock"} for name in names]
    return web.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response(
        {
            "status": "ok",
            "worker": runtime.worker.index,
            "workers": runtime.worker.count,
            "active": runtime.metrics.active,
        }
    )


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus text: this worker's counters plus every other worker's."""
    runtime = request.app[RUNTIME]
    snapshots = [runtime.metrics.snapshot()]
    if runtime.peers is not None:
        snapshots += await runtime.peers.metrics_snapshots()
    merged = metrics_text.merge(snapshots)
    text = metrics_text.render(merged, capacity=runtime.config.timing.capacity)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _internal_metrics(request: web.Request) -> web.Response:
    return web.json_response(request.app[RUNTIME].metrics.snapshot())


def _not_found(request_id: str) -> web.Response:
    message = f"no record of request {request_id!r} (never seen, or dropped from the ring buffer)"
    return web.json_response({"error": {"message": message, "type": "not_found"}}, status=404)


async def _request_truth(request: web.Request) -> web.Response:
    """The ground-truth record of one request, from whichever worker served it."""
    runtime = request.app[RUNTIME]
    request_id = request.match_info["request_id"]
    wait_text = request.query.get("wait_ms", "0")
    if not (wait_text.isascii() and wait_text.isdigit()):
        return web.json_response({"error": {"message": "wait_ms must be an integer"}}, status=400)
    wait_ms = min(int(wait_text), _MAX_WAIT_MS)
    owner_text = request_id.split("-", 1)[0]
    owner = int(owner_text) if owner_text.isascii() and owner_text.isdigit() else -1
    if runtime.peers is not None and runtime.peers.owns(owner):
        try:
            status, body, content_type = await runtime.peers.get(
                owner, f"/mock/requests/{request_id}?wait_ms={wait_ms}"
            )
        except (OSError, TimeoutError) as exc:
            message = f"worker {owner} did not answer: {exc}"
            return web.json_response({"error": {"message": message}}, status=502)
        return web.Response(body=body, status=status, content_type=content_type)
    waiter = runtime.waiters.get(request_id)
    if waiter is not None and wait_ms:
        with contextlib.suppress(TimeoutError):  # then answer with the record as it stands
            await asyncio.wait_for(waiter.wait(), wait_ms / 1000)
    record = runtime.truth.get(request_id)
    if record is None:
        return _not_found(request_id)
    return web.json_response(record.as_dict())


def _generation_handler(endpoint: Endpoint) -> _Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await generate(request, endpoint)

    handler.__name__ = f"generate_{endpoint.value}"
    return handler


def create_app(
    config: MockConfig,
    *,
    worker: WorkerInfo | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
    wall_clock_s: Callable[[], float] = time.time,
) -> web.Application:
    """Build one worker's application.

    Args:
        config: the configuration.
        worker: which worker this is (default: the only one).
        clock: monotonic nanoseconds for the schedule and the ground truth.
        wall_clock_s: Unix seconds for the ``created`` fields.

    Returns:
        The application, ready for an ``AppRunner``.
    """
    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[_count_requests],
    )
    runtime = Runtime(
        config=config, worker=worker or WorkerInfo(), clock=clock, wall_clock_s=wall_clock_s
    )
    app[RUNTIME] = runtime
    app.on_response_prepare.append(_add_cors)
    app.cleanup_ctx.append(_scheduler_ctx)
    app.on_shutdown.append(_end_streams)
    if runtime.worker.count > 1 and runtime.worker.socket_dir is not None:
        app.cleanup_ctx.append(_peers_ctx)
    for path, (endpoint, methods) in GENERATION_ROUTES.items():
        handler = _generation_handler(endpoint)
        for method in methods:
            app.router.add_route(method, path, handler)
        app.router.add_route("OPTIONS", path, _preflight)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get(INTERNAL_METRICS_PATH, _internal_metrics)
    app.router.add_get("/mock/requests/{request_id}", _request_truth)
    return app


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    runtime.scheduler = TickScheduler(asyncio.get_running_loop(), clock=runtime.clock)
    yield
    runtime.scheduler.close()


async def _end_streams(app: web.Application) -> None:
    """On shutdown, end every stream at once instead of waiting for them."""
    scheduler = app[RUNTIME].scheduler
    if scheduler is not None:
        scheduler.close()


async def _peers_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    peers = Peers(runtime.worker)
    await peers.start()
    runtime.peers = peers
    yield
    runtime.peers = None
    await peers.close()
