"""The generation endpoints: parse, validate, plan, then stream or answer.

One flow serves every endpoint (``generate``): read the body (or a GET's query; a body
that takes longer than ``body_timeout_s`` gets 408 and a closed connection), check it
(a bad request gets a 4xx in the dialect's error shape, never a stream), read the
overrides, apply the concurrency cap (429 with ``Retry-After``), plan the response, and
then answer: an HTTP error fault, a JSON body at its due time, or a stream whose frames
the tick scheduler writes. Every request gets an ``x-mock-request-id`` and a ground-truth
record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

from harness.errors import ConfigError
from mock_server.config import MockConfig
from mock_server.overrides import parse_overrides
from mock_server.parsing import (
    PARSERS,
    RequestError,
    parse_counter,
    parse_tutorial,
    reject_lone_surrogates,
)
from mock_server.plan import Ask, Endpoint, Plan, make_plan
from mock_server.prefill import prompt_words
from mock_server.render import Identity, error_body, render_body, render_stream
from mock_server.render.anthropic import stop_reason
from mock_server.render.openai import dumps
from mock_server.state import RUNTIME, Runtime
from mock_server.stream import StreamJob
from mock_server.truth import RequestTruth

__all__ = ["REQUEST_ID_HEADER", "finish_word", "generate"]

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-mock-request-id"
_FAULT_MESSAGES = {
    429: "mock fault: rate limit reached, retry later",
    500: "mock fault: internal server error",
    503: "mock fault: the server is overloaded",
}
_TUTORIAL = {
    Endpoint.TUTORIAL_CONTENT,
    Endpoint.TUTORIAL_EVENTS,
    Endpoint.TUTORIAL_TEXT,
    Endpoint.TUTORIAL_COUNTER,
}


def finish_word(plan: Plan) -> str:
    """The plan's finish in its dialect's own word."""
    if plan.endpoint is Endpoint.MESSAGES:
        return stop_reason(plan)
    if plan.endpoint is Endpoint.RESPONSES:
        return "max_output_tokens" if plan.finish == "length" else "completed"
    return plan.finish


def _error(
    endpoint: Endpoint,
    status: int,
    message: str,
    truth: RequestTruth,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    truth.status = status
    truth.outcome = "error"
    body = error_body(endpoint, status, message, param=param)
    return web.json_response(
        body, status=status, headers={REQUEST_ID_HEADER: truth.id, **(headers or {})}
    )


async def _read_json(request: web.Request, runtime: Runtime) -> Any:
    limit = runtime.config.max_body_bytes
    too_large = f"the request body is larger than the limit of {limit} bytes"
    if request.content_length is not None and request.content_length > limit:
        raise RequestError(too_large, status=413)
    timeout_s = runtime.config.body_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise RequestError(too_large, status=413) from exc
    except TimeoutError as exc:
        message = f"the request body did not arrive within {timeout_s:g} s"
        raise RequestError(message, status=408) from exc
    if len(raw) > limit:
        raise RequestError(too_large, status=413)
    try:
        text = raw.decode("utf-8-sig")  # JSON is UTF-8 (RFC 8259); a leading BOM is dropped
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the request body is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"the request body is not valid JSON ({exc})") from exc
    if "\\u" in text:  # in UTF-8 text only a \u escape can spell a lone surrogate
        reject_lone_surrogates(body)
    return body


async def _answer_and_hang_up(request: web.Request, response: web.Response) -> None:
    """Send ``response`` now and close the connection after it.

    For a body that stalled: aiohttp would otherwise keep reading the rest of it for its
    lingering time before it closed the connection.
    """
    response.force_close()
    with contextlib.suppress(ConnectionError):  # the client left meanwhile
        await response.prepare(request)
        await response.write_eof()
    if request.transport is not None:
        request.transport.close()  # after the buffered response is flushed


def _query_body(endpoint: Endpoint, query: Any) -> dict[str, Any]:
    """A GET's query as the body it stands for (``prompt``, ``max_tokens``, ``max``)."""
    body: dict[str, Any] = {}
    if "prompt" in query:
        body["prompt"] = query["prompt"]
    for key in ("max", "max_tokens") if endpoint is Endpoint.TUTORIAL_COUNTER else ("max_tokens",):
        if key in query:
            text = query[key]
            if not (text.isascii() and text.isdigit()):
                raise RequestError(f"'{key}' must be a non-negative integer", param=key)
            body[key] = int(text)
    return body


def _ask(endpoint: Endpoint, body: Any, config: MockConfig) -> Ask:
    model = config.models[0]
    if endpoint is Endpoint.TUTORIAL_COUNTER:
        return parse_counter(body, model)
    if endpoint in _TUTORIAL:
        return parse_tutorial(endpoint, body, model)
    ask = PARSERS[endpoint](body, model)
    if ask.n > config.max_choices:
        message = f"'n' must be at most {config.max_choices}, the mock's limit of choices"
        raise RequestError(message, param="n")
    return ask


async def generate(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    """Answer one generation request.

    Args:
        request: the request.
        endpoint: which endpoint it came to.

    Returns:
        The response: a 4xx/429/5xx error body, a JSON completion, or a finished stream.
    """
    runtime = request.app[RUNTIME]
    config = runtime.config
    received_ns = runtime.clock()
    request_id, sequence = runtime.next_request()
    truth = runtime.truth.add(
        RequestTruth(id=request_id, endpoint=endpoint.value, received_ns=received_ns)
    )
    try:
        if request.method == "GET":
            body: Any = _query_body(endpoint, request.query)
        else:
            body = await _read_json(request, runtime)
        ask = _ask(endpoint, body, config)
        overrides = parse_overrides(request.headers, ask.body.get("mock"), request.query)
    except RequestError as exc:
        truth.done = True
        response = _error(endpoint, exc.status, exc.message, truth, param=exc.param)
        if exc.status == 408:
            await _answer_and_hang_up(request, response)
        return response
    except ConfigError as exc:
        truth.done = True
        return _error(endpoint, 400, f"invalid override: {exc}", truth, param=exc.field)
    if runtime.scheduler is not None:  # before the cap is read: no await between it and +1
        await runtime.scheduler.yield_to_writes()
    metrics = runtime.metrics
    cap = config.max_concurrency
    if cap is not None and metrics.active >= cap:
        metrics.counters["rejected"] += 1
        truth.done = True
        message = f"the mock's concurrency cap of {cap} requests is reached; retry later"
        retry = {"Retry-After": str(config.retry_after_s)}
        return _error(endpoint, 429, message, truth, headers=retry)
    seed = config.seed if overrides.seed is None else overrides.seed
    plan = make_plan(
        config,
        ask,
        overrides,
        active=metrics.active,
        draw_seed=runtime.draw_seed(seed, sequence),
        cached_tokens=runtime.prefix_cache.admit(prompt_words(ask.prompt_texts)),
    )
    truth.prompt_tokens = plan.prompt_tokens
    metrics.counters["prompt_tokens"] += plan.prompt_tokens
    metrics.counters["cached_tokens"] += plan.cached_tokens
    truth.cached_tokens = plan.cached_tokens
    truth.prefill_ns = plan.prefill_ns
    truth.max_tokens = ask.limit
    truth.faults = plan.faults.names
    truth.stream = plan.stream
    truth.tokens_planned = plan.completion_tokens
    truth.answer = plan.content  # choice 0's answer, event by event
    truth.answer_first_event = len(plan.reasoning) * plan.n
    truth.answer_stride = plan.n
    metrics.faults.update(plan.faults.kinds)
    metrics.active += 1
    metrics.histograms.observe("queue", runtime.clock() - received_ns)
    waiter = runtime.waiters[request_id] = asyncio.Event()
    try:
        return await _answer(request, runtime, plan, truth)
    finally:
        metrics.active -= 1
        truth.done = True
        waiter.set()
        runtime.waiters.pop(request_id, None)


async def _answer(
    request: web.Request, runtime: Runtime, plan: Plan, truth: RequestTruth
) -> web.StreamResponse:
    scheduler = runtime.scheduler
    assert scheduler is not None, "the app's cleanup_ctx sets the scheduler"
    if plan.headers_offset_ns:  # slow headers: a heap entry, not a sleep
        await scheduler.wake_at(truth.received_ns + plan.headers_offset_ns)
    status = plan.faults.http_status
    if status is not None:
        headers = {"Retry-After": str(runtime.config.retry_after_s)} if status == 429 else None
        return _error(plan.endpoint, status, _FAULT_MESSAGES[status], truth, headers=headers)
    identity = Identity(
        request_id=truth.id,
        response_id=runtime.response_hex(truth.id),
        created_s=int(runtime.wall_clock_s()),
    )
    if not plan.stream:
        return await _answer_body(request, runtime, plan, truth, identity)
    return await _answer_stream(request, runtime, plan, truth, identity)


async def _answer_body(
    request: web.Request, runtime: Runtime, plan: Plan, truth: RequestTruth, identity: Identity
) -> web.StreamResponse:
    """A non-streamed completion, sent when its last token is due."""
    assert runtime.scheduler is not None
    due_ns = truth.received_ns + plan.end_offset_ns
    await runtime.scheduler.wake_at(due_ns)
    text = dumps(render_body(plan, identity))
    if plan.faults.disconnect_after is not None and request.transport is not None:
        request.transport.close()  # the connection ends without a response
        truth.outcome = "cut"
        return web.Response(status=200)
    if plan.faults.malformed_at is not None:
        text = text[:-1]
    now = runtime.clock()
    truth.status = 200
    truth.headers_ns = truth.last_write_ns = now
    truth.scheduled_ns.append(due_ns)
    truth.token_write_ns.append(now)
    truth.tokens_sent = plan.completion_tokens
    truth.finish_reason = finish_word(plan)
    truth.outcome = "complete"
    runtime.metrics.counters["tokens_sent"] += plan.completion_tokens
    runtime.metrics.observe_lateness(now - due_ns)
    runtime.metrics.histograms.observe("ttft", now - truth.received_ns)
    runtime.metrics.histograms.observe("e2e", now - truth.received_ns)
    return web.Response(
        text=text, content_type="application/json", headers={REQUEST_ID_HEADER: truth.id}
    )


async def _answer_stream(
    request: web.Request, runtime: Runtime, plan: Plan, truth: RequestTruth, identity: Identity
) -> web.StreamResponse:
    """A stream: headers now, frames from the tick scheduler, the end when it says."""
    config = runtime.config
    rendered = render_stream(plan, identity, ping_interval_ms=config.ping_interval_ms)
    response = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": rendered.content_type,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            REQUEST_ID_HEADER: truth.id,
        },
    )
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
    except ConnectionError:  # the client left before its (slow) headers
        truth.disconnect_detected_ns = runtime.clock()
        truth.outcome = "disconnected"
        runtime.metrics.counters["client_disconnects"] += 1
        return response  # aiohttp's own attempt to finish it finds the client gone too
    truth.headers_ns = truth.last_write_ns = runtime.clock()
    truth.status = 200
    loop = asyncio.get_running_loop()
    job = StreamJob(
        rendered=rendered,
        start_ns=truth.received_ns,
        transport=request.transport,
        done=loop.create_future(),
        truth=truth,
        metrics=runtime.metrics,
        clock=runtime.clock,
        high_water_bytes=config.high_water_bytes,
        split=plan.faults.split,
        split_seed=plan.split_seed,
    )
    assert runtime.scheduler is not None
    runtime.scheduler.add(job, job.first_due_ns)
    try:
        outcome = await job.done
    except asyncio.CancelledError:
        job.abort("shutdown")
        truth.outcome = "shutdown"
        raise
    truth.outcome = "error" if outcome == "complete" and rendered.error else outcome
    if outcome == "complete":
        if not rendered.error:
            truth.finish_reason = finish_word(plan)
            runtime.metrics.counters["streams_completed"] += 1
            end_ns = truth.last_write_ns or runtime.clock()
            runtime.metrics.histograms.observe("e2e", end_ns - truth.received_ns)
        try:
            await response.write_eof()
        except ConnectionError:
            logger.debug("request %s: the client left before the end of the body", truth.id)
    return response
