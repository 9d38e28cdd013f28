"""OpenAI Chat Completions streaming (``chat.completion.chunk``), and its many clones.

Every event is one chunk::

    data: {"id": "...", "object": "chat.completion.chunk", "created": 1, "model": "...",
           "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}

and the stream ends with ``data: [DONE]``. The first chunk usually carries only the role;
``delta.tool_calls`` fragments carry the call's id and name first, then argument text;
DeepSeek and vLLM send reasoning as ``delta.reasoning_content`` (or ``delta.reasoning``).
With ``stream_options.include_usage`` a last chunk with empty ``choices`` carries the
usage; some servers put (cumulative) usage on every chunk instead. An error inside the
stream is a chunk ``{"error": {...}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from harness.dialects.base import Delta, DeltaKind
from harness.dialects.fields import Fields
from harness.sse import Event

__all__ = ["DONE_SENTINEL", "OpenAIChat", "envelope", "usage_delta"]

#: The data of OpenAI's terminating event.
DONE_SENTINEL = "[DONE]"

_DONE = (Delta(kind=DeltaKind.DONE),)
_IGNORABLE = (Delta(kind=DeltaKind.IGNORABLE),)
_REASONING_KEYS = ("reasoning_content", "reasoning")


def envelope(fields: Fields) -> tuple[tuple[Delta, ...] | None, dict[str, Any], list[Any]]:
    """Read what OpenAI's chat and completions chunks share.

    Args:
        fields: the event's data, read for one dialect.

    Returns:
        ``(final, payload, choices)``: ``final`` is the whole answer when the event is the
        ``[DONE]`` sentinel or an error object (else None); ``payload`` is the chunk and
        ``choices`` its choices (empty for a usage-only chunk).

    Raises:
        DialectError: the data is not a JSON object, or ``choices`` is not an array.
    """
    if fields.data.strip() == DONE_SENTINEL:
        return _DONE, {}, []
    payload = fields.load()
    error = payload.get("error")
    if error is not None:  # a finish reason beside it (OpenRouter's "error") is kept
        return (*_finishes_beside(payload), Delta(kind=DeltaKind.ERROR, error=error)), payload, []
    return None, payload, fields.array(payload, "choices") or []


def _finishes_beside(payload: dict[str, Any]) -> tuple[Delta, ...]:
    """The finish reasons an error chunk's choices carry, read leniently: the error is
    the chunk's news, and a malformed choice beside it does not hide it."""
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return ()
    return tuple(
        Delta(kind=DeltaKind.FINISH, finish_reason=choice["finish_reason"], choice=position)
        for position, choice in enumerate(choices)
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str)
    )


def usage_delta(fields: Fields, payload: dict[str, Any]) -> list[Delta]:
    """The USAGE delta of a chunk whose ``usage`` is not null (else nothing).

    Raises:
        DialectError: ``usage`` is present and not an object.
    """
    usage = fields.mapping(payload, "usage")
    return [] if usage is None else [Delta(kind=DeltaKind.USAGE, usage=usage)]


class _PlainDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A delta with content (or none) and nothing else the full reading would read."""

    content: str | None = None
    role: str | None = None
    refusal: None = None
    reasoning_content: None = None
    reasoning: None = None
    tool_calls: None = None
    function_call: None = None


class _PlainChoice(msgspec.Struct, gc=False):
    delta: _PlainDelta
    index: int | None = None
    finish_reason: None = None


class _PlainChunk(msgspec.Struct, gc=False):
    choices: list[_PlainChoice]
    usage: None = None
    error: None = None


_read_plain_chunk = msgspec.json.Decoder(_PlainChunk).decode


def _plain_content(data: str | bytes) -> tuple[str, int] | None:
    """Read the chunk nearly every event is: one choice whose delta has only ``content``
    (and perhaps ``role``, and null reasoning, refusal or tool calls), no finish reason,
    no usage, no error.

    The chunk is parsed whole by msgspec into the types above, which admit exactly such a
    chunk (any other field of the chunk or the choice is allowed, as the full reading
    ignores it); everything else fails to parse here. msgspec is a strict JSON parser:
    what it reads, ``json.loads`` reads the same; what it refuses (NaN, a lone surrogate
    escape, as well as malformed JSON) takes the full reading. ``data`` may be the
    event's UTF-8 bytes, read without decoding them first; bytes that are not valid
    UTF-8 take the full reading, which decodes them with errors replaced.

    Returns:
        ``(content, choice)`` for such a chunk (content ``""`` when it has none, as the
        role-only first chunk), or None for any other chunk.
    """
    try:  # what is not a JSON object ([DONE], say) fails to parse, as anything else
        chunk = _read_plain_chunk(data)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return None  # ValueError: a lone surrogate; RecursionError: nesting too deep
    if len(chunk.choices) != 1:
        return None
    choice = chunk.choices[0]
    return choice.delta.content or "", choice.index or 0


@dataclass(frozen=True, slots=True)
class OpenAIChat:
    """The ``openai-chat`` dialect: ``/v1/chat/completions`` with ``stream: true``."""

    name: str = "openai-chat"
    framing: Literal["sse", "text"] = "sse"

    def interpret(self, event: Event) -> tuple[Delta, ...]:
        """Return what one chunk adds to the response.

        Args:
            event: one SSE event of the stream.

        Returns:
            Per choice (in order): reasoning, content, refusal, tool-call fragments and
            the finish reason; then the usage when not null. A chunk that adds nothing
            (the role-only first chunk) gives one IGNORABLE delta.

        Raises:
            DialectError: the data is not a JSON object or a field has the wrong type.
        """
        fast = _common_chunk(event.data)
        if fast is not None:
            return fast
        fields = Fields(self.name, event.data)
        final, payload, choices = envelope(fields)
        if final is not None:
            return final
        deltas: list[Delta] = []
        for position, choice in enumerate(choices):
            deltas.extend(_choice_deltas(fields, choice, f"choices[{position}]", position))
        deltas.extend(usage_delta(fields, payload))
        return tuple(deltas) or _IGNORABLE

    #: ``plain_content(data)``: ``(content, choice)`` when an event's data is a chunk that
    #: adds only answer text (or nothing), as ``interpret`` would read it; else None. A
    #: reader may take it in place of ``interpret`` for such a chunk: what the chunk adds
    #: is ``Delta(kind=CONTENT, text=content, choice=choice)``, or nothing for ``""``.
    plain_content = staticmethod(_plain_content)


def _common_chunk(data: str) -> tuple[Delta, ...] | None:
    """The fast path of ``interpret``: what the full reading returns for a chunk that
    ``_plain_content`` reads, or None for any other chunk (the full reading then checks
    every field and names any that is wrong)."""
    plain = _plain_content(data)
    if plain is None:
        return None
    content, choice = plain
    if not content:
        return _IGNORABLE
    return (Delta(kind=DeltaKind.CONTENT, text=content, choice=choice),)


def _choice_deltas(fields: Fields, value: Any, path: str, position: int) -> list[Delta]:
    choice = fields.object(value, path)
    number = fields.integer(choice, "index", path, default=position)
    delta = fields.mapping(choice, "delta", path) or {}
    where = f"{path}.delta"
    deltas: list[Delta] = []
    for key in _REASONING_KEYS:  # vLLM may send both with the same text: take the first
        reasoning = fields.string(delta, key, where)
        if reasoning:
            deltas.append(Delta(kind=DeltaKind.REASONING, text=reasoning, choice=number))
            break
    content = fields.string(delta, "content", where)
    if content:
        deltas.append(Delta(kind=DeltaKind.CONTENT, text=content, choice=number))
    refusal = fields.string(delta, "refusal", where)
    if refusal:
        deltas.append(Delta(kind=DeltaKind.REFUSAL, text=refusal, choice=number))
    calls = fields.array(delta, "tool_calls", where) or []
    for call_position, call in enumerate(calls):
        deltas.append(_tool_call(fields, call, f"{where}.tool_calls[{call_position}]", number))
    legacy = fields.mapping(delta, "function_call", where)
    if legacy is not None:  # the deprecated single function call
        deltas.append(_function(fields, legacy, f"{where}.function_call", number, 0, None))
    reason = fields.string(choice, "finish_reason", path)
    if reason is not None:
        deltas.append(Delta(kind=DeltaKind.FINISH, finish_reason=reason, choice=number))
    return deltas


def _tool_call(fields: Fields, value: Any, path: str, choice: int) -> Delta:
    call = fields.object(value, path)
    index = fields.integer(call, "index", path)
    tool_id = fields.string(call, "id", path)
    function = fields.mapping(call, "function", path) or {}
    return _function(fields, function, f"{path}.function", choice, index, tool_id)


def _function(
    fields: Fields,
    function: dict[str, Any],
    path: str,
    choice: int,
    index: int,
    tool_id: str | None,
) -> Delta:
    return Delta(
        kind=DeltaKind.TOOL_CALL,
        text=fields.string(function, "arguments", path) or "",
        choice=choice,
        index=index,
        tool_id=tool_id,
        tool_name=fields.string(function, "name", path),
    )
