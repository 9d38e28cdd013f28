"""OpenAI legacy Completions streaming (``text_completion``).

Every event is one chunk whose choices carry ``text``::

    data: {"id": "cmpl-...", "object": "text_completion", "created": 1, "model": "...",
           "choices": [{"text": " Hi", "index": 0, "logprobs": null, "finish_reason": null}]}

It ends with ``data: [DONE]``; ``stream_options.include_usage`` adds a chunk with empty
``choices`` and the usage, and an error inside the stream is ``{"error": {...}}``, as in
the chat dialect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.dialects.base import Delta, DeltaKind
from harness.dialects.fields import Fields
from harness.dialects.openai_chat import envelope, usage_delta
from harness.sse import Event

__all__ = ["OpenAICompletions"]

_IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)


@dataclass(frozen=True, slots=True)
class OpenAICompletions:
    """The ``openai-completions`` dialect: ``/v1/completions`` with ``stream: true``."""

    name: str = "openai-completions"
    framing: Literal["sse", "text"] = "sse"

    def interpret(self, event: Event) -> tuple[Delta, ...]:
        """Return what one chunk adds to the response.

        Args:
            event: one SSE event of the stream.

        Returns:
            Per choice: its text (CONTENT, when not empty) and finish reason; then the
            usage when not null. A chunk that adds nothing gives one IGNORABLE delta.

        Raises:
            DialectError: the data is not a JSON object or a field has the wrong type.
        """
        fields = Fields(self.name, event.data)
        final, payload, choices = envelope(fields)
        if final is not None:
            return final
        deltas: list[Delta] = []
        for position, value in enumerate(choices):
            path = f"choices[{position}]"
            choice = fields.object(value, path)
            number = fields.integer(choice, "index", path, default=position)
            text = fields.string(choice, "text", path)
            if text:
                deltas.append(Delta(kind=DeltaKind.CONTENT, text=text, choice=number))
            reason = fields.string(choice, "finish_reason", path)
            if reason is not None:
                deltas.append(Delta(kind=DeltaKind.FINISH, finish_reason=reason, choice=number))
        deltas.extend(usage_delta(fields, payload))
        return tuple(deltas) or _IGNORABLE
