"""The bytes of every response, from its plan: pure, pre-rendered at admission.

``render_stream`` lays out a streamed response as timed ``Frame``s for the writer;
``render_body`` gives a non-streamed response's JSON; ``error_body`` gives an error in
the dialect's own shape. Ids are ``chatcmpl-<hex>``, ``cmpl-<hex>``, ``resp_<hex>`` and
``msg_<hex>``; usage always equals what is sent.
"""

from __future__ import annotations

from typing import Any

from mock_server.plan import Endpoint, Plan
from mock_server.render.anthropic import AnthropicStream, messages_body
from mock_server.render.errors import error_body
from mock_server.render.frames import Frame, Identity, Rendered, StreamDialect, build_frames
from mock_server.render.openai import ChatStream, CompletionsStream, chat_body, completions_body
from mock_server.render.responses import ResponsesStream, responses_body
from mock_server.render.tutorial import ContentStream, CounterStream, EventsStream, TextStream

__all__ = ["Frame", "Identity", "Rendered", "error_body", "render_body", "render_stream"]


def render_stream(plan: Plan, identity: Identity, *, ping_interval_ms: float = 0) -> Rendered:
    """Lay out a streamed response.

    Args:
        plan: the response's plan.
        identity: its ids and creation time.
        ping_interval_ms: Anthropic pings after the first; 0: only the first.

    Returns:
        The timed frames and the content type.
    """
    dialect: StreamDialect
    endpoint = plan.endpoint
    if endpoint is Endpoint.CHAT:
        dialect = ChatStream(plan, identity)
    elif endpoint is Endpoint.COMPLETIONS:
        dialect = CompletionsStream(plan, identity)
    elif endpoint is Endpoint.RESPONSES:
        dialect = ResponsesStream(plan, identity)
    elif endpoint is Endpoint.MESSAGES:
        dialect = AnthropicStream(plan, identity, ping_interval_ms=ping_interval_ms)
    elif endpoint is Endpoint.TUTORIAL_CONTENT:
        dialect = ContentStream(plan, identity)
    elif endpoint is Endpoint.TUTORIAL_EVENTS:
        dialect = EventsStream(plan, identity)
    elif endpoint is Endpoint.TUTORIAL_TEXT:
        dialect = TextStream(plan, identity)
    else:
        dialect = CounterStream(plan, identity)
    return build_frames(plan, dialect)


def render_body(plan: Plan, identity: Identity) -> dict[str, Any]:
    """The JSON body of a non-streamed response.

    Args:
        plan: the response's plan.
        identity: its ids and creation time.

    Returns:
        The dialect's completion object (tutorial endpoints: content, finish, usage).
    """
    endpoint = plan.endpoint
    if endpoint is Endpoint.CHAT:
        return chat_body(plan, identity)
    if endpoint is Endpoint.COMPLETIONS:
        return completions_body(plan, identity)
    if endpoint is Endpoint.RESPONSES:
        return responses_body(plan, identity)
    if endpoint is Endpoint.MESSAGES:
        return messages_body(plan, identity)
    usage = completions_body(plan, identity)["usage"]
    return {"content": plan.text, "finish_reason": plan.finish, "usage": usage}
