"""What a request sends: the body (or URL) for each API, chosen apart from how the answer
is read, because many apps accept an OpenAI-style body and answer in their own format.

Pure functions from (request kind, prompt, options) to an ``HttpRequest``. The API key
goes into a header here and nowhere else; ``HttpRequest``'s repr leaves headers out.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.transports.base import HttpRequest

__all__ = [
    "MAX_TOKENS_PLACEHOLDER",
    "PROMPT_PLACEHOLDER",
    "REQUEST_KINDS",
    "Message",
    "RequestSpec",
    "build_request",
    "default_api_key_env",
    "fill_template",
    "read_prompt_file",
    "synthetic_prompt",
]

REQUEST_KINDS = ("openai-chat", "openai-completions", "openai-responses", "anthropic", "json")

#: Where each kind of API lives below a bare base URL (``http://host:port``).
DEFAULT_PATHS = {
    "openai-chat": "/v1/chat/completions",
    "openai-completions": "/v1/completions",
    "openai-responses": "/v1/responses",
    "anthropic": "/v1/messages",
}
ANTHROPIC_VERSION = "2023-06-01"
#: In a ``--request json`` template and a GET URL: the prompt, and the output length asked.
PROMPT_PLACEHOLDER = "{prompt}"
MAX_TOKENS_PLACEHOLDER = "{max_tokens}"

Message = Mapping[str, str]


def default_api_key_env(request: str) -> str:
    """The environment variable that holds the key for a request kind."""
    return "ANTHROPIC_API_KEY" if request == "anthropic" else "OPENAI_API_KEY"


#: Header names whose values are credentials, whatever their length.
_CREDENTIAL = re.compile(r"auth|key|token|secret|cookie|session|passw|credential", re.IGNORECASE)
#: From this length on, the value of any other header is treated as a secret too.
SECRET_MIN_CHARS = 16
#: Request bodies as ``json.dumps(body, ensure_ascii=False)`` writes them, with one encoder
#: kept (``json.dumps`` builds one per call when given an option).
_BODY_ENCODER = json.JSONEncoder(ensure_ascii=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSpec:
    """How to build every request of a run. ``api_key`` never appears in its repr."""

    request: str = "openai-chat"
    url: str
    method: str = "POST"
    model: str = "mock-model"
    max_tokens: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body_json: Mapping[str, Any] | str | None = None
    include_usage: bool = True
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.request not in REQUEST_KINDS:
            raise ConfigError(
                "request", f"must be one of {', '.join(REQUEST_KINDS)}, not {self.request!r}"
            )
        if self.method not in ("GET", "POST"):
            raise ConfigError("method", f"must be GET or POST, not {self.method!r}")
        if self.request == "json" and self.method == "POST":
            if not isinstance(self.body_json, str):
                raise ConfigError(
                    "body-json",
                    'with --request json, give a template such as \'{"prompt": "{prompt}"}\'',
                )
            for limit in (1, None):  # the prompt is escaped: its text cannot break the JSON
                fill_template(self.body_json, 'a "quoted"\nprompt', limit)
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError("max-tokens", f"must be at least 1, not {self.max_tokens}")

    @property
    def full_url(self) -> str:
        """The URL, with the API's usual path added to a bare ``http://host:port``."""
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.path in ("", "/") and self.request in DEFAULT_PATHS and self.method == "POST":
            return self.url.rstrip("/") + DEFAULT_PATHS[self.request]
        return self.url

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in any output: the API key, the value of every header
        whose name speaks of credentials (and the token after a scheme such as
        ``Bearer``), and any other header value long enough to be a key.

        A short value of another header (a fault name, an API version) is not one: hunted
        as a substring, it would mangle every text that happens to contain it.
        """
        found = [self.api_key] if self.api_key else []
        for name, value in self.headers:
            if _CREDENTIAL.search(name):
                found += [value, value.rsplit(" ", 1)[-1]]
            elif len(value) >= SECRET_MIN_CHARS:
                found.append(value)
        return tuple(dict.fromkeys(s for s in found if len(s) >= 4))

    def redacted(self) -> dict[str, Any]:
        """What is sent, as JSON-able data: header values and the API key left out."""
        return {
            "url": self.full_url,
            "request": self.request,
            "method": self.method,
            "model": self.model,
            "max_tokens": self.max_tokens,
            # any header may carry a credential (X-Api-Token, ...): only names are shown
            "headers": {name: "[redacted]" for name, _ in self.headers},
            "api_key": "[redacted]" if self.api_key else None,
        }


def synthetic_prompt(words: int, seed: int = 0) -> str:
    """A prompt of about ``words`` words (a word is roughly one to two tokens)."""
    return " ".join(_WORDS[(seed + i * 7) % len(_WORDS)] for i in range(max(words, 1)))


def read_prompt_file(path: Path) -> list[tuple[Message, ...]]:
    """The conversations of a JSONL prompt file: per line a string, ``{"prompt": ...}``, a
    list of ``{"role", "content"}`` messages, or ``{"messages": [...]}``.

    Raises:
        ConfigError: the file cannot be read, or a line is none of those (field
            ``prompt-file`` or ``prompt-file:<line>``).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError("prompt-file", f"cannot read {path}: {exc.strerror}") from exc
    prompts: list[tuple[Message, ...]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"prompt-file:{number}", "not JSON") from exc
        if isinstance(item, dict) and "prompt" in item:
            item = item["prompt"]
        if isinstance(item, dict) and "messages" in item:
            item = item["messages"]
        if isinstance(item, str):
            prompts.append(({"role": "user", "content": item},))
        elif isinstance(item, list) and all(isinstance(m, dict) and "content" in m for m in item):
            prompts.append(
                tuple({"role": m.get("role", "user"), "content": m["content"]} for m in item)
            )
        else:
            raise ConfigError(
                f"prompt-file:{number}", "expected a string, {prompt} or a message list"
            )
    return prompts


_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliett",
    "kilo",
    "lima",
]


def build_request(
    spec: RequestSpec,
    messages: Sequence[Message],
    *,
    max_tokens: int | None = None,
) -> HttpRequest:
    """The request that sends ``messages`` (the last is the user's new turn).

    Args:
        spec: how the run's requests look.
        messages: the conversation so far, ``{"role", "content"}`` each.
        max_tokens: overrides ``spec.max_tokens`` (a trace entry's output length).

    Raises:
        ConfigError: ``--body-json`` is not valid JSON once the prompt is filled in.
    """
    limit = max_tokens if max_tokens is not None else spec.max_tokens
    prompt = messages[-1]["content"] if messages else ""
    headers = {"accept": "text/event-stream", "accept-encoding": "identity"}
    if spec.api_key:
        if spec.request == "anthropic":
            headers["x-api-key"] = spec.api_key
        else:
            headers["authorization"] = f"Bearer {spec.api_key}"
    if spec.request == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    if spec.method == "GET":
        url = spec.full_url.replace(PROMPT_PLACEHOLDER, urllib.parse.quote(prompt))
        url = url.replace(MAX_TOKENS_PLACEHOLDER, "" if limit is None else str(limit))
        headers.update((k.lower(), v) for k, v in spec.headers)
        return HttpRequest(method="GET", url=url, headers=headers)
    headers["content-type"] = "application/json"
    headers.update((k.lower(), v) for k, v in spec.headers)
    body = _body(spec, messages, prompt, limit)
    return HttpRequest(method="POST", url=spec.full_url, headers=headers, body=body)


def fill_template(template: str, prompt: str, limit: int | None) -> str:
    """A ``--request json`` body: ``{prompt}`` replaced by the prompt (escaped, for a JSON
    string) and ``{max_tokens}`` by the output length asked (``null`` when none is).

    Raises:
        ConfigError: the template is not valid JSON once filled in.
    """
    filled = template.replace(PROMPT_PLACEHOLDER, json.dumps(prompt)[1:-1])
    filled = filled.replace(MAX_TOKENS_PLACEHOLDER, "null" if limit is None else str(limit))
    try:
        json.loads(filled)
    except ValueError as exc:
        raise ConfigError(
            "body-json",
            f"not valid JSON once {PROMPT_PLACEHOLDER} and {MAX_TOKENS_PLACEHOLDER} are filled"
            f' in ({exc}); {PROMPT_PLACEHOLDER} goes inside a string: \'{{"q": "{{prompt}}"}}\'',
        ) from exc
    return filled


def _body(spec: RequestSpec, messages: Sequence[Message], prompt: str, limit: int | None) -> bytes:
    if spec.request == "json":
        assert isinstance(spec.body_json, str)
        return fill_template(spec.body_json, prompt, limit).encode()
    body: dict[str, Any] = {"model": spec.model, "stream": True}
    if spec.request == "openai-chat":
        body["messages"] = [dict(m) for m in messages]
        if limit is not None:
            body["max_tokens"] = limit
        if spec.include_usage:
            body["stream_options"] = {"include_usage": True}
    elif spec.request == "openai-completions":
        body["prompt"] = prompt
        if limit is not None:
            body["max_tokens"] = limit
        if spec.include_usage:
            body["stream_options"] = {"include_usage": True}
    elif spec.request == "openai-responses":
        body["input"] = [dict(m) for m in messages]
        if limit is not None:
            body["max_output_tokens"] = limit
    else:  # anthropic: max_tokens is required by the API
        body["messages"] = [dict(m) for m in messages]
        body["max_tokens"] = limit if limit is not None else 1024
    if isinstance(spec.body_json, Mapping):
        body.update(spec.body_json)
    return _BODY_ENCODER.encode(body).encode()
