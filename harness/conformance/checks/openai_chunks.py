"""What the OpenAI checks keep of a stream of chat or completions chunks, in one pass.

Every chunk is looked at once, as it is read; what the checks judge afterwards is held
here in bounded form: the problems found with a few places each, the first identity and
its first change, roles, each choice's finish reasons, and the usage chunks.
"""

from __future__ import annotations

from typing import Any

from harness.conformance.checks.evidence import Found
from harness.conformance.display import brief
from harness.conformance.reading import Digest, ReadEvent, Spot
from harness.dialects import DeltaKind

__all__ = ["MAX_CHOICES", "OPENAI", "TEXT_KINDS", "Choice", "OpenAIDigest", "choices"]

OPENAI = frozenset({"openai-chat", "openai-completions"})
TEXT_KINDS = frozenset(
    {DeltaKind.CONTENT, DeltaKind.REASONING, DeltaKind.TOOL_CALL, DeltaKind.REFUSAL}
)
#: Choices beyond this many in one stream are not followed (``n`` is small in practice).
MAX_CHOICES = 64
_OBJECTS = {"openai-chat": "chat.completion.chunk", "openai-completions": "text_completion"}
FINISH_REASONS = {
    "openai-chat": {"stop", "length", "tool_calls", "content_filter", "function_call"},
    "openai-completions": {"stop", "length", "content_filter"},
}
_ENVELOPE = (("id", str, "a string"), ("created", int, "an integer"), ("model", str, "a string"))


def choices(payload: dict[str, Any]) -> list[dict[str, Any]]:
    choices = payload.get("choices")
    return [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []


class Choice:
    """One choice's finish reasons: how many, where the second came, and the first
    content after the event of the first."""

    __slots__ = ("finishes", "later", "second")

    def __init__(self) -> None:
        self.finishes = 0
        self.second: Spot | None = None
        self.later: Spot | None = None


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except RecursionError:  # values nested too deeply to compare: shown as they differ
        return False


class OpenAIDigest(Digest):
    """The OpenAI chunks of one stream, judged as they pass.

    Attributes:
        not_json: events whose data is neither ``[DONE]`` nor a JSON object.
        fails, warns: problems with the chunks' fields, by severity.
        identity: the first chunk's id, model and created; ``changed`` the first change
            (the keys, the detail, where).
        roles: how many deltas carry a role; ``first_role`` the first delta's role and
            where; ``second_role`` where the second role came.
        finishes: each choice's finish reasons, in the order they first finished.
        numbers: the choices that carried text.
        unknown_reasons: finish reasons the dialect does not document.
        chunks: how many chunks (JSON objects that are not errors); ``usage`` how many of
            them carry a usage object, ``first_usage`` where the first did,
            ``riding`` where the first usage came on a chunk that finishes a choice,
            ``beside`` where the first came on a chunk whose choices are not empty and
            finish nothing.
        usage_down: whether cumulative ``completion_tokens`` went down.
    """

    dialects = OPENAI

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self.not_json = Found()
        self.fails = Found()
        self.warns = Found()
        self.identity: dict[str, Any] | None = None
        self.changed: tuple[list[str], str, Spot] | None = None
        self.roles = 0
        self.first_role: tuple[Any, Spot] | None = None
        self.second_role: Spot | None = None
        self.finishes: dict[int, Choice] = {}
        self.numbers: set[int] = set()
        self.unknown_reasons = Found()
        self.chunks = 0
        self.usage = 0
        self.first_usage: Spot | None = None
        self.riding: Spot | None = None
        self.beside: Spot | None = None
        self._completion: int | None = None
        self.usage_down = False

    def event(self, event: ReadEvent) -> None:
        payload = event.payload()
        if event.event.data.strip() != "[DONE]" and not isinstance(payload, dict):
            message = "an event's data is not a JSON object: the SDK raises on it"
            self.not_json.add(message, event.spot)
        self._deltas(event)
        if isinstance(payload, dict) and "error" not in payload:
            self.chunks += 1
            self._fields(event, payload)
            self._identity(event, payload)
            self._roles(event, payload)
            self._usage(event, payload)

    def _fields(self, event: ReadEvent, payload: dict[str, Any]) -> None:
        spot = event.spot
        if event.error is not None:
            parts = event.error.split(": ")
            reason = (parts[1] if len(parts) > 1 else event.error)[:200]
            self.fails.add(f"a field has the wrong type: {reason}", spot)
        if "choices" not in payload:
            self.fails.add("a chunk without choices", spot)
        for key, kind, name in _ENVELOPE:
            value = payload.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                self.warns.add(f"chunk {key!r} is missing or not {name}", spot)
        expected = _OBJECTS[self.dialect or "openai-chat"]
        if payload.get("object") != expected:
            said = brief(payload.get("object"))
            self.warns.add(f"chunk 'object' is {said}, not {expected!r}", spot)
        for choice in choices(payload):
            if "index" not in choice:
                self.warns.add("a choice without its index", spot)
            if self.dialect == "openai-chat" and not isinstance(choice.get("delta"), dict):
                self.fails.add("a chat choice without a delta object", spot)

    def _identity(self, event: ReadEvent, payload: dict[str, Any]) -> None:
        seen = {key: payload.get(key) for key in ("id", "model", "created")}
        if self.identity is None:
            self.identity = seen
            return
        if self.changed is not None:
            return
        first = self.identity
        changed = [key for key in seen if not _same(seen[key], first[key])]
        if changed:
            detail = ", ".join(f"{k} {brief(first[k])} -> {brief(seen[k])}" for k in changed)
            self.changed = (changed, detail, event.spot)

    def _roles(self, event: ReadEvent, payload: dict[str, Any]) -> None:
        if self.dialect != "openai-chat":
            return
        for choice in choices(payload):
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            role = delta.get("role")
            if self.first_role is None:
                self.first_role = (role, event.spot)
            if role is not None:
                self.roles += 1
                if self.roles == 2:
                    self.second_role = event.spot

    def _deltas(self, event: ReadEvent) -> None:
        allowed = FINISH_REASONS[self.dialect or "openai-chat"]
        finished = []
        for delta in event.deltas:
            if delta.kind in TEXT_KINDS:
                if len(self.numbers) < MAX_CHOICES:
                    self.numbers.add(delta.choice)
                choice = self.finishes.get(delta.choice)
                text = delta.text or delta.tool_id
                if choice is not None and choice.later is None and text:
                    choice.later = event.spot  # a finish came in an earlier event
            if delta.kind is DeltaKind.FINISH and delta.finish_reason is not None:
                finished.append(delta)
        for delta in finished:
            choice = self.finishes.get(delta.choice)
            if choice is None:
                if len(self.finishes) >= MAX_CHOICES:
                    continue
                choice = self.finishes[delta.choice] = Choice()
            choice.finishes += 1
            if choice.finishes == 2:
                choice.second = event.spot
            reason = delta.finish_reason
            if reason not in allowed:
                message = (
                    f"finish_reason {brief(reason)} is not one of {', '.join(sorted(allowed))}"
                )
                self.unknown_reasons.add(message, event.spot)

    def _usage(self, event: ReadEvent, payload: dict[str, Any]) -> None:
        usage = payload.get("usage")
        if not isinstance(usage, dict):
            return
        self.usage += 1
        if self.first_usage is None:
            self.first_usage = event.spot
        listed = choices(payload)
        if any(c.get("finish_reason") for c in listed):
            self.riding = self.riding or event.spot
        elif listed:
            self.beside = self.beside or event.spot
        count = usage.get("completion_tokens")
        if isinstance(count, int):
            if self._completion is not None and count < self._completion:
                self.usage_down = True
            self._completion = count
