"""What every dialect shares: the ``Delta`` it produces and the accumulator of a stream.

A dialect is a pure function from one ``Event`` to a tuple of ``Delta``s: what that event
adds to the response (text, reasoning, a tool-call fragment, usage, a finish reason, an
error, the terminator). The ``Accumulator`` folds the deltas of one stream back into the
final response, the way an SDK client would.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from harness.errors import DialectError
from harness.sse import Event

__all__ = [
    "Accumulator",
    "Delta",
    "DeltaKind",
    "Dialect",
    "JSONTooDeep",
    "StreamResult",
    "ToolCall",
    "load_json",
    "parse_json",
]


class DeltaKind(enum.StrEnum):
    """What a delta adds to the response."""

    CONTENT = "content"  # answer text
    REASONING = "reasoning"  # reasoning / thinking text shown before the answer
    REFUSAL = "refusal"  # refusal text (OpenAI)
    TOOL_CALL = "tool_call"  # a tool-call fragment: id and name first, then argument text
    USAGE = "usage"  # token counts as the server reports them
    FINISH = "finish"  # why a choice ended
    ERROR = "error"  # an error object sent inside the stream
    DONE = "done"  # the stream's terminator: [DONE], message_stop, response.completed
    IGNORABLE = "ignorable"  # a valid event that adds nothing (role-only chunk, ping)


#: Kinds whose text makes an event token-bearing (see the TTFT definition).
TOKEN_KINDS = frozenset({DeltaKind.CONTENT, DeltaKind.REASONING})


class Delta(msgspec.Struct, frozen=True, kw_only=True):
    """One thing an event adds to the response: immutable, built by keyword.

    Unlike ``Event`` it stays tracked by the garbage collector: ``usage`` and ``error``
    hold whatever the payload held.

    Attributes:
        kind: what it adds.
        text: the text for CONTENT, REASONING and REFUSAL; the argument fragment for
            TOOL_CALL.
        choice: which choice it belongs to (OpenAI ``n`` > 1), else 0.
        index: for TOOL_CALL, the call's index within the choice (OpenAI's
            ``tool_calls[].index``, Anthropic's content-block index, the Responses API's
            output index).
        tool_id: for TOOL_CALL, the call's id when this fragment carries it.
        tool_name: for TOOL_CALL, the function's name when this fragment carries it.
        usage: for USAGE, the token counts as reported (the dialect's own keys).
        finish_reason: for FINISH, the dialect's own word (``stop``, ``end_turn``, ...).
        error: for ERROR, the error object as sent.
        full_text: for FINISH, the complete text when the stream states it (a tutorial
            ``complete`` event's ``full_content``): a cross-check, not more text.
    """

    kind: DeltaKind
    text: str = ""
    choice: int = 0
    index: int = 0
    tool_id: str | None = None
    tool_name: str | None = None
    usage: Mapping[str, Any] | None = None
    finish_reason: str | None = None
    error: Any = None
    full_text: str | None = None


class Dialect(Protocol):
    """An API's streaming format, read event by event.

    ``name`` and ``framing`` are read-only properties, so the frozen dataclasses that are
    the dialects satisfy it.

    A dialect may also have ``plain_content(data) -> (text, choice) | None`` (openai-chat
    does): what an event adds when it adds only answer text, read from its data alone
    (a ``str``, or the data's UTF-8 bytes).
    ``StreamReader.read_plain`` then reads such events without building them.
    """

    @property
    def name(self) -> str:
        """The dialect's name on the command line (``openai-chat``, ...)."""
        ...

    @property
    def framing(self) -> Literal["sse", "text"]:
        """``"sse"`` when the body is an event stream; ``"text"`` when every body chunk is
        text (``text/plain`` streams), wrapped in an ``Event`` per chunk."""
        ...

    def interpret(self, event: Event) -> tuple[Delta, ...]:
        """Return what ``event`` adds to the response.

        Raises:
            DialectError: the event's payload does not fit the dialect (bad JSON, a
                field of the wrong type).
        """
        ...


_decode_json = msgspec.json.decode


class JSONTooDeep(ValueError):
    """JSON nested deeper than the parsers' recursion allows: refused like bad JSON."""

    def __init__(self) -> None:
        super().__init__("JSON nested too deeply to read")


def parse_json(data: str) -> Any:
    """``json.loads(data)``, read by msgspec where it can: about five times as fast.

    msgspec is the stricter parser: what it reads, ``json.loads`` reads the same; what it
    refuses (NaN, Infinity, a number out of a float's range, a lone surrogate escape,
    nesting too deep, as well as malformed JSON) goes to ``json.loads``, which reads it
    or raises as it would have. Nesting too deep for ``json.loads`` (its recursion
    runs out) is refused with a ``ValueError`` like any other JSON it cannot read, so
    a hostile payload is a bad event, never an escaping ``RecursionError``.
    """
    try:
        return _decode_json(data)
    except (msgspec.MsgspecError, ValueError):
        pass
    except RecursionError:
        raise JSONTooDeep from None
    try:
        return json.loads(data)
    except RecursionError:
        raise JSONTooDeep from None


def load_json(dialect: str, data: str) -> Any:
    """Parse an event's data as JSON, mapping a failure to ``DialectError``."""
    try:
        return parse_json(data)
    except ValueError as exc:
        raise DialectError(dialect, f"data is not valid JSON ({exc})", data) from exc


@dataclass(slots=True)
class ToolCall:
    """A tool call rebuilt from its fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class _Choice:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, ToolCall] = field(default_factory=dict)
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class StreamResult:
    """The final response of one stream, rebuilt from its deltas.

    ``text``, ``reasoning``, ``refusal``, ``tool_calls`` and ``finish_reason`` are choice
    0's; ``choices`` holds the same fields for every choice beyond 0 (OpenAI ``n`` > 1).
    """

    text: str
    reasoning: str | None
    refusal: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Mapping[str, Any] | None
    error: Any
    done: bool
    full_text: str | None
    choices: tuple[Mapping[str, Any], ...] = ()
    #: token-bearing events by what they bore: ``text``, ``reasoning``, ``tool_call``
    token_events: Mapping[str, int] = field(default_factory=dict)
    #: every choice the stream opened has its finish reason (the answer is complete)
    finished: bool = False


class Accumulator:
    """Folds the deltas of one stream into its final response.

    Usage is the last the stream reported, merged key by key: cumulative per-chunk usage
    ends at its final value, and Anthropic's ``message_start`` usage is updated by the
    counts in ``message_delta``.
    """

    __slots__ = (
        "_choices",
        "_text",
        "_text_choice",
        "done",
        "error",
        "full_text",
        "reasoning_events",
        "text_events",
        "tool_events",
        "usage",
    )

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._text_choice = -1  # the choice ``add_text`` added to last, and its text
        self._text: list[str] = []
        self.usage: dict[str, Any] | None = None
        self.error: Any = None
        self.done = False
        self.full_text: str | None = None
        #: token-bearing events by what they bore (an event counts once, for its first)
        self.text_events = 0
        self.reasoning_events = 0
        self.tool_events = 0

    def add(self, deltas: Iterable[Delta]) -> bool:
        """Fold in the deltas of one event.

        Returns:
            True when the event was token-bearing: it carried non-empty content or
            reasoning text, or a piece of a tool call's arguments.
        """
        token = False
        for delta in deltas:
            kind = delta.kind
            if kind is DeltaKind.CONTENT or kind is DeltaKind.REASONING:
                if delta.text:
                    choice = self._choices.get(delta.choice) or self._choice(delta.choice)
                    if kind is DeltaKind.CONTENT:
                        choice.text.append(delta.text)
                    else:
                        choice.reasoning.append(delta.text)
                    if not token:
                        token = True
                        if kind is DeltaKind.CONTENT:
                            self.text_events += 1
                        else:
                            self.reasoning_events += 1
            elif kind is DeltaKind.REFUSAL:
                if delta.text:
                    self._choice(delta.choice).refusal.append(delta.text)
            elif kind is DeltaKind.TOOL_CALL:
                calls = self._choice(delta.choice).tool_calls
                call = calls.get(delta.index)
                if call is None:
                    call = calls[delta.index] = ToolCall(delta.index)
                if delta.tool_id:
                    call.id = delta.tool_id
                if delta.tool_name:
                    call.name = delta.tool_name
                call.arguments += delta.text
                if delta.text and not token:  # a piece of the arguments is output too
                    token = True
                    self.tool_events += 1
            elif kind is DeltaKind.USAGE:
                if delta.usage is not None:
                    self.usage = {**(self.usage or {}), **delta.usage}
            elif kind is DeltaKind.FINISH:
                if delta.finish_reason is not None:
                    self._choice(delta.choice).finish_reason = delta.finish_reason
                if delta.full_text is not None:
                    self.full_text = delta.full_text
            elif kind is DeltaKind.ERROR:
                self.error = delta.error
            elif kind is DeltaKind.DONE:
                self.done = True
        return token

    def add_text(self, text: str, choice: int = 0) -> None:
        """Fold in answer text: what ``add((Delta(kind=CONTENT, text=text, choice=choice),))``
        does, for a reader that did not build the delta (``text`` is not empty)."""
        if choice != self._text_choice:
            self._text_choice = choice
            self._text = self._choice(choice).text
        self._text.append(text)
        self.text_events += 1

    def _choice(self, index: int) -> _Choice:
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = _Choice()
        return choice

    def result(self) -> StreamResult:
        """The response as rebuilt so far."""
        first = self._choices.get(0) or _Choice()
        others = tuple(
            _choice_dict(index, self._choices[index]) for index in sorted(self._choices) if index
        )
        return StreamResult(
            text="".join(first.text),
            reasoning="".join(first.reasoning) if first.reasoning else None,
            refusal="".join(first.refusal) if first.refusal else None,
            tool_calls=tuple(first.tool_calls[i] for i in sorted(first.tool_calls)),
            finish_reason=first.finish_reason,
            usage=self.usage,
            error=self.error,
            done=self.done,
            full_text=self.full_text,
            choices=others,
            token_events={
                "text": self.text_events,
                "reasoning": self.reasoning_events,
                "tool_call": self.tool_events,
            },
            finished=bool(self._choices)
            and all(c.finish_reason is not None for c in self._choices.values()),
        )


def _choice_dict(index: int, choice: _Choice) -> dict[str, Any]:
    return {
        "index": index,
        "text": "".join(choice.text),
        "reasoning": "".join(choice.reasoning) if choice.reasoning else None,
        "refusal": "".join(choice.refusal) if choice.refusal else None,
        "tool_calls": [choice.tool_calls[i].as_dict() for i in sorted(choice.tool_calls)],
        "finish_reason": choice.finish_reason,
    }
