"""When is a stream's answer complete? One rule per API, as the APIs' own SDKs read them,
shared by ``run`` (a record's ``ok`` or ``truncated``) and ``check``.

    openai-chat, openai-completions  every choice the stream opened has its
                                     ``finish_reason``, or ``[DONE]`` came
    anthropic                        ``message_stop`` came
    openai-responses                 the final event came (``response.completed``,
                                     ``.incomplete`` or ``.failed``)
    generic, text                    the body ended: these formats promise no end

The OpenAI SDKs stop at ``[DONE]`` but read a stream that ends after the last
``finish_reason`` just as well, and some servers never send ``[DONE]``: such an answer is
complete, with its missing terminator a habit to report, not an error. Anthropic's and
the Responses API's final events are part of the answer itself (the last usage, the
final status), so a body that stops before them is cut.
"""

from __future__ import annotations

from harness.dialects.base import StreamResult

__all__ = ["answer_complete", "incomplete_why", "is_streamed"]

_FINISH_ENDS = frozenset({"openai-chat", "openai-completions"})
_TERMINATOR_ENDS = {
    "anthropic": "before message_stop",
    "openai-responses": "before the final event (response.completed)",
}


def answer_complete(dialect: str | None, result: StreamResult) -> bool:
    """True when the answer of a body read as ``dialect`` (its name) is complete."""
    if result.done:
        return True
    if dialect in _FINISH_ENDS:
        return result.finished
    return dialect not in _TERMINATOR_ENDS


def incomplete_why(dialect: str | None) -> str:
    """What an incomplete answer of ``dialect`` lacked, to end an error message."""
    if dialect in _FINISH_ENDS:
        return "before every choice had its finish_reason, and without [DONE]"
    return _TERMINATOR_ENDS.get(dialect or "", "before the answer was complete")


def is_streamed(content_type: str | None) -> bool:
    """True for a content type that streams: an event stream, or plain text."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("text/event-stream", "text/plain")
