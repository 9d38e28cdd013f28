"""API dialects: what each event of an LLM stream adds to the response.

A dialect turns one SSE ``Event`` into ``Delta``s; ``StreamReader`` runs the decoder, the
dialect (given or detected) and the ``Accumulator`` over a response body. ``get`` maps a
command-line name to a dialect.
"""

from __future__ import annotations

from harness.dialects.anthropic import Anthropic
from harness.dialects.base import Accumulator, Delta, DeltaKind, Dialect, StreamResult
from harness.dialects.detect import detect
from harness.dialects.ending import answer_complete, incomplete_why, is_streamed
from harness.dialects.generic_json import GenericJSON
from harness.dialects.openai_chat import OpenAIChat
from harness.dialects.openai_completions import OpenAICompletions
from harness.dialects.openai_responses import OpenAIResponses
from harness.dialects.plain_text import PlainText
from harness.dialects.stream import Read, StreamReader
from harness.errors import ConfigError

__all__ = [
    "Accumulator",
    "Anthropic",
    "DIALECT_NAMES",
    "Delta",
    "DeltaKind",
    "Dialect",
    "GenericJSON",
    "OpenAIChat",
    "OpenAICompletions",
    "OpenAIResponses",
    "PlainText",
    "Read",
    "StreamReader",
    "StreamResult",
    "answer_complete",
    "detect",
    "get",
    "incomplete_why",
    "is_streamed",
]

#: The dialects' names, as the command line spells them (``auto`` is not one of them).
DIALECT_NAMES = (
    "openai-chat",
    "openai-responses",
    "openai-completions",
    "anthropic",
    "generic",
    "text",
)

_FIXED: dict[str, Dialect] = {
    "openai-chat": OpenAIChat(),
    "openai-responses": OpenAIResponses(),
    "openai-completions": OpenAICompletions(),
    "anthropic": Anthropic(),
    "text": PlainText(),
}


def get(
    name: str, *, pointer: str | None = None, terminator: str | None = "[DONE]"
) -> Dialect | None:
    """The dialect called ``name``.

    Args:
        name: one of ``DIALECT_NAMES``, or ``"auto"``.
        pointer: for ``generic``, the JSON pointer to the text field.
        terminator: for ``generic``, the data that ends the stream (None: none does).

    Returns:
        The dialect; None for ``"auto"``, meaning: detect it from the stream. Only the
        generic dialect takes a pointer, so ``"auto"`` with a pointer is ``generic``.

    Raises:
        ConfigError: ``name`` is unknown (field ``dialect``), a pointer is given for a
            dialect other than ``generic`` or the pointer is invalid (field ``pointer``),
            or the terminator is empty (field ``terminator``).
    """
    if name == "generic" or (name == "auto" and pointer is not None):
        return GenericJSON(pointer=pointer, terminator=terminator)
    if name != "auto" and name not in _FIXED:
        valid = ", ".join(("auto", *DIALECT_NAMES))
        raise ConfigError("dialect", f"unknown dialect {name!r}; valid names: {valid}")
    if pointer is not None:
        raise ConfigError(
            "pointer", f"a pointer applies to the generic dialect only, not to {name!r}"
        )
    return _FIXED.get(name)
