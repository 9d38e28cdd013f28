"""Which dialect a stream speaks, judged from its first SSE event.

The ``text/plain`` case is settled earlier, from the content type (see
``harness.dialects.stream``). For an event stream the first event is enough: each vendor
format announces itself at once (Anthropic with ``message_start``, the Responses API
with ``response.created``, OpenAI's chunks with their ``object``). Anything unrecognised
is read as ``GenericJSON``, which copes with most home-made formats.
"""

from __future__ import annotations

from typing import Any

from harness.dialects.anthropic import Anthropic
from harness.dialects.base import Dialect, parse_json
from harness.dialects.generic_json import GenericJSON
from harness.dialects.openai_chat import OpenAIChat
from harness.dialects.openai_completions import OpenAICompletions
from harness.dialects.openai_responses import OpenAIResponses
from harness.sse import Event

__all__ = ["detect"]

#: Event types only Anthropic's Messages stream uses (``ping`` alone is too common a
#: name, so it counts only when the data says ``{"type": "ping"}``).
_ANTHROPIC_TYPES = frozenset(
    {
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    }
)


def detect(event: Event) -> Dialect:
    """Choose the dialect of a stream from its first event.

    Args:
        event: the first event the SSE decoder dispatched.

    Returns:
        ``Anthropic``, ``OpenAIResponses``, ``OpenAIChat`` or ``OpenAICompletions`` when
        the event is recognisably theirs, else ``GenericJSON()``. It never raises.
    """
    payload = _load(event.data)
    data_type = payload.get("type") if isinstance(payload, dict) else None
    names = {event.type}
    if isinstance(data_type, str):
        names.add(data_type)
    if names & _ANTHROPIC_TYPES or data_type == "ping" or _is_anthropic_error(payload):
        return Anthropic()
    if any(name.startswith("response.") for name in names):
        return OpenAIResponses()
    if not isinstance(payload, dict):
        return GenericJSON()
    obj = payload.get("object")
    first = _first_choice(payload)
    if obj == "chat.completion.chunk" or (first is not None and "delta" in first):
        return OpenAIChat()
    if obj == "text_completion" or (first is not None and "text" in first):
        return OpenAICompletions()
    return GenericJSON()


def _load(data: str) -> Any:
    try:
        return parse_json(data)
    except ValueError:  # JSON nested too deeply too
        return None


def _first_choice(payload: dict[str, Any]) -> dict[str, Any] | None:
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _is_anthropic_error(payload: Any) -> bool:
    """``{"type": "error", "error": {"type": "overloaded_error", ...}}``."""
    if not isinstance(payload, dict) or payload.get("type") != "error":
        return False
    error = payload.get("error")
    return isinstance(error, dict) and str(error.get("type", "")).endswith("_error")
