"""Request bodies checked and read into an ``Ask``, per endpoint.

Each ``parse_*`` function takes the decoded JSON body (or a GET's query) and returns the
``Ask`` the plan needs, or raises ``RequestError`` naming the offending field; the handler
answers it with a 4xx in the dialect's own error shape, never with a stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import HarnessError
from mock_server.plan import Ask, Endpoint

__all__ = [
    "PARSERS",
    "RequestError",
    "parse_counter",
    "parse_tutorial",
    "reject_lone_surrogates",
]

_MAX_LIMIT = 10_000_000
_SURROGATE = "holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair)"


class RequestError(HarnessError):
    """A request the mock refuses (answered with ``status`` and the dialect's error body).

    Attributes:
        message: what is wrong, for the client.
        param: the offending field, when there is one.
        status: the HTTP status to answer with.
    """

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


def reject_lone_surrogates(body: Any) -> None:
    """Refuse a decoded JSON body with a lone UTF-16 surrogate in any string or key.

    JSON can spell one (``"\\ud800"``), but no UTF-8 text can hold it: the text seed, an
    echoed model name and every rendered byte would fail to encode. A pair of escapes
    (``"\\ud83d\\ude00"``) decodes to one character and passes.

    Args:
        body: the decoded body.

    Raises:
        RequestError: naming the first offending field as ``messages[0].content``.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _has_lone_surrogate(value):
                where = _path_text(path)
                raise RequestError(f"{where} {_SURROGATE}", param=where or None)
        elif isinstance(value, dict):
            for key, child in value.items():
                if _has_lone_surrogate(key):
                    where = _path_text(path)
                    owner = f"a key of {where}" if where else "a key of the body"
                    raise RequestError(f"{owner} {_SURROGATE}", param=where or None)
                stack.append((child, (*path, key)))
        elif isinstance(value, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(value))


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _path_text(path: tuple[str | int, ...]) -> str:
    """``("messages", 0, "content")`` as ``messages[0].content``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "an array" if isinstance(value, list) else "an object"
    )


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, not {_type_name(body)}")
    return body


def _optional(body: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RequestError(f"'{key}' must be {what}, not {_type_name(value)}", param=key)
    return value


def _limit(body: Mapping[str, Any], *keys: str, required: bool = False) -> int | None:
    limit = None
    for key in keys:
        value = _optional(body, key, int, "an integer")
        if value is not None:
            if not 1 <= value <= _MAX_LIMIT:
                raise RequestError(f"'{key}' must be between 1 and {_MAX_LIMIT}", param=key)
            limit = value if limit is None else min(limit, value)
    if limit is None and required:
        raise RequestError(f"'{keys[0]}' is required", param=keys[0])
    return limit


def _model(body: Mapping[str, Any], default: str, *, required: bool = False) -> str:
    model = _optional(body, "model", str, "a string")
    if model is None and required:
        raise RequestError("'model' is required", param="model")
    return model or default


def _stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = bool(_optional(body, "stream", bool, "a boolean"))
    options = _optional(body, "stream_options", dict, "an object") or {}
    include = _optional(options, "include_usage", bool, "a boolean")
    return stream, bool(include)


def _choices(body: Mapping[str, Any]) -> int:
    """OpenAI's ``n``, how many choices: absent or null is 1 (the handler applies the cap)."""
    n = _optional(body, "n", int, "an integer")
    if n is None:
        return 1
    if n < 1:
        raise RequestError(f"'n' must be at least 1, not {n}", param="n")
    return n


def _content_texts(content: Any, where: str) -> list[str]:
    """The texts of a message's content: a string, or a list of parts with ``text``."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts = []
        for position, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
            else:
                raise RequestError(
                    f"{where}[{position}] must be an object, not {_type_name(part)}", param=where
                )
        return texts
    raise RequestError(f"{where} must be a string or an array of parts", param=where)


def _messages(body: Mapping[str, Any], *, key: str = "messages") -> list[str]:
    if key not in body:
        raise RequestError(f"'{key}' is required", param=key)
    messages = body[key]
    if not isinstance(messages, list) or not messages:
        raise RequestError(f"'{key}' must be a non-empty array of messages", param=key)
    texts: list[str] = []
    for position, message in enumerate(messages):
        where = f"{key}[{position}]"
        if not isinstance(message, dict):
            raise RequestError(f"{where} must be an object", param=where)
        if not isinstance(message.get("role"), str):
            raise RequestError(f"{where}.role must be a string", param=f"{where}.role")
        texts += _content_texts(message.get("content"), f"{where}.content")
    return texts


def parse_chat(body: Any, default_model: str) -> Ask:
    """Read a ``/v1/chat/completions`` body."""
    body = _require_object(body)
    texts = _messages(body)
    stream, include_usage = _stream(body)
    return Ask(
        endpoint=Endpoint.CHAT,
        body=body,
        model=_model(body, default_model),
        stream=stream,
        include_usage=include_usage,
        limit=_limit(body, "max_completion_tokens", "max_tokens"),
        prompt_texts=tuple(texts),
        n=_choices(body),
    )


def parse_completions(body: Any, default_model: str) -> Ask:
    """Read a legacy ``/v1/completions`` body."""
    body = _require_object(body)
    if "prompt" not in body:
        raise RequestError("'prompt' is required", param="prompt")
    prompt = body["prompt"]
    if isinstance(prompt, str):
        texts = [prompt]
    elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        texts = list(prompt)
    else:
        raise RequestError("'prompt' must be a string or an array of strings", param="prompt")
    stream, include_usage = _stream(body)
    return Ask(
        endpoint=Endpoint.COMPLETIONS,
        body=body,
        model=_model(body, default_model),
        stream=stream,
        include_usage=include_usage,
        limit=_limit(body, "max_tokens"),
        prompt_texts=tuple(texts),
        n=_choices(body),
    )


def parse_responses(body: Any, default_model: str) -> Ask:
    """Read a ``/v1/responses`` body (``input`` a string or a list of items)."""
    body = _require_object(body)
    if "input" not in body:
        raise RequestError("'input' is required", param="input")
    given = body["input"]
    if isinstance(given, str):
        texts = [given]
    elif isinstance(given, list) and given:
        texts = []
        for position, item in enumerate(given):
            if not isinstance(item, dict):
                raise RequestError(f"input[{position}] must be an object", param="input")
            texts += _content_texts(item.get("content"), f"input[{position}].content")
    else:
        raise RequestError("'input' must be a string or a non-empty array", param="input")
    instructions = _optional(body, "instructions", str, "a string")
    if instructions:
        texts.append(instructions)
    stream, _ = _stream(body)
    return Ask(
        endpoint=Endpoint.RESPONSES,
        body=body,
        model=_model(body, default_model),
        stream=stream,
        limit=_limit(body, "max_output_tokens"),
        prompt_texts=tuple(texts),
    )


def parse_messages(body: Any, default_model: str) -> Ask:
    """Read an Anthropic ``/v1/messages`` body (``model``, ``max_tokens`` required)."""
    body = _require_object(body)
    texts = _messages(body)
    system = body.get("system")
    if system is not None:
        texts += _content_texts(system, "system")
    stream, _ = _stream(body)
    return Ask(
        endpoint=Endpoint.MESSAGES,
        body=body,
        model=_model(body, default_model, required=True),
        stream=stream,
        limit=_limit(body, "max_tokens", required=True),
        prompt_texts=tuple(texts),
    )


def parse_tutorial(endpoint: Endpoint, body: Any, default_model: str) -> Ask:
    """Read a tutorial request: ``prompt`` or OpenAI-style ``messages``.

    A GET's query is passed as ``{"prompt": ..., "max_tokens": ...}`` so that a GET and a
    POST of the same prompt give the same text.
    """
    body = _require_object(body)
    if "messages" in body:
        texts = _messages(body)
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise RequestError("'prompt' (a string) or 'messages' is required", param="prompt")
        texts = [prompt]
    return Ask(
        endpoint=endpoint,
        body=body,
        model=_model(body, default_model),
        limit=_limit(body, "max_tokens"),
        prompt_texts=tuple(texts),
    )


def parse_counter(body: Any, default_model: str) -> Ask:
    """Read a ``/tutorial/counter`` request: ``max`` (default 10)."""
    body = _require_object(body)
    top = _optional(body, "max", int, "an integer")
    if top is not None and top < 0:
        raise RequestError("'max' must not be negative", param="max")
    return Ask(
        endpoint=Endpoint.TUTORIAL_COUNTER,
        body=body,
        model=_model(body, default_model),
        counter_max=10 if top is None else top,
    )


#: The body parser of each OpenAI/Anthropic endpoint.
PARSERS: dict[Endpoint, Callable[[Any, str], Ask]] = {
    Endpoint.CHAT: parse_chat,
    Endpoint.COMPLETIONS: parse_completions,
    Endpoint.RESPONSES: parse_responses,
    Endpoint.MESSAGES: parse_messages,
}
