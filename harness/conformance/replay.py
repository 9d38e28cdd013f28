"""The official SDKs' verdict: the captured streams replayed through ``openai`` and
``anthropic``, where they are installed.

Each captured response (status, headers, and the body in the very reads it arrived in)
is served to the SDK by its HTTP library's ``MockTransport``, so nothing goes over the
network. The SDK reads it as its users would, and the check reports whether it raised
and whether it rebuilt the same text as ``harness.dialects``: the verdict of the clients
most users run, beside ours.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from harness.conformance.checks.evidence import grouped, of_request
from harness.conformance.model import Check, CheckFactory, Evidence, Finding, Passed, Severity, Skip
from harness.conformance.reading import Reading, Suite

__all__ = ["CHECKS", "replay_anthropic", "replay_openai"]

_DROPPED_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})
_MESSAGES = [{"role": "user", "content": "replay"}]


def _sdk(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _http_library(sdk: ModuleType) -> ModuleType:
    """The HTTP library the SDK is built on (httpx, or a fork of it)."""
    for cls in sdk.DefaultHttpxClient.__mro__:
        root = cls.__module__.split(".")[0]
        if root.startswith("httpx"):
            return importlib.import_module(root)
    raise ImportError(f"{sdk.__name__}: cannot tell which HTTP library it uses")


def _client(sdk: ModuleType, client_class: Any, base_url: str, reading: Reading) -> Any:
    """An SDK client whose every request gets the captured response, read by read."""
    http = _http_library(sdk)
    exchange = reading.exchange
    headers = [(k, v) for k, v in exchange.headers if k not in _DROPPED_HEADERS]
    reads = [data for _, data in exchange.chunks]

    def handler(request: Any) -> Any:
        return http.Response(exchange.status or 200, headers=headers, content=iter(reads))

    return client_class(
        api_key="replay",
        base_url=base_url,
        max_retries=0,
        http_client=sdk.DefaultHttpxClient(transport=http.MockTransport(handler)),
    )


def replay_openai(sdk: ModuleType, reading: Reading) -> str:
    """The text of choice 0 (of a Responses stream, its output text) as the ``openai``
    SDK reads the captured stream.

    Raises:
        Exception: whatever the SDK raises on it.
    """
    client = _client(sdk, sdk.OpenAI, "http://replay.invalid/v1", reading)
    parts: list[str] = []
    with client:
        if reading.dialect == "openai-completions":
            for chunk in client.completions.create(model="m", prompt="replay", stream=True):
                parts += [c.text or "" for c in chunk.choices or [] if c.index == 0]
        elif reading.dialect == "openai-responses":
            for event in client.responses.create(model="m", input="replay", stream=True):
                if event.type == "response.output_text.delta":
                    parts.append(event.delta or "")
        else:
            stream = client.chat.completions.create(model="m", messages=_MESSAGES, stream=True)
            for chunk in stream:
                parts += [
                    c.delta.content or ""
                    for c in chunk.choices or []
                    if c.index == 0 and c.delta is not None
                ]
    return "".join(parts)


def replay_anthropic(sdk: ModuleType, reading: Reading) -> str:
    """The text blocks as the ``anthropic`` SDK's message stream accumulates them.

    Raises:
        Exception: whatever the SDK raises on it.
    """
    client = _client(sdk, sdk.Anthropic, "http://replay.invalid", reading)
    with client, client.messages.stream(model="m", max_tokens=16, messages=_MESSAGES) as stream:
        for _ in stream:
            pass
        message = stream.get_final_message()
    return "".join(block.text for block in message.content if block.type == "text")


def _replay_all(
    check: Check,
    suite: Suite,
    sdk_name: str,
    dialects: frozenset[str],
    replay: Callable[[ModuleType, Reading], str],
) -> Sequence[Finding] | Skip | Passed:
    sdk = _sdk(sdk_name)
    if sdk is None:
        return Skip(f"the {sdk_name} SDK is not installed")
    readings = [r for r in suite.sse_streams if r.complete and r.dialect in dialects]
    if not readings:
        return Skip(f"no {sdk_name} stream was read to its end")
    items: list[tuple[str, Evidence]] = []
    for reading in readings:
        ours = reading.result.text if reading.result is not None else ""
        stream_error = reading.result is not None and reading.result.error is not None
        try:
            theirs = replay(sdk, reading)
        except Exception as exc:
            if stream_error and type(exc).__name__.endswith(("APIError", "APIStatusError")):
                continue  # it raised the error the stream sent, as it should
            message = str(exc).splitlines()[0][:200] if str(exc) else ""
            items.append(
                (f"the {sdk_name} SDK raises {type(exc).__name__}", of_request(reading, message))
            )
            continue
        if theirs != ours:
            detail = f"SDK {len(theirs)} characters, ours {len(ours)}: {theirs[:60]!r}"
            items.append(
                (f"the {sdk_name} SDK rebuilds a different text", of_request(reading, detail))
            )
    if items:
        return grouped(check, items)
    version = getattr(sdk, "__version__", "?")
    return Passed(f"{sdk_name} {version} read {len(readings)} streams to the same text as ours")


def _openai(suite: Suite) -> Sequence[Finding] | Skip | Passed:
    return _replay_all(OPENAI_SDK, suite, "openai", _OPENAI_DIALECTS, replay_openai)


def _anthropic(suite: Suite) -> Sequence[Finding] | Skip | Passed:
    return _replay_all(ANTHROPIC_SDK, suite, "anthropic", _ANTHROPIC_DIALECTS, replay_anthropic)


_OPENAI_DIALECTS = frozenset({"openai-chat", "openai-completions", "openai-responses"})
_ANTHROPIC_DIALECTS = frozenset({"anthropic"})

check = CheckFactory("sdk")

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
OPENAI_SDK = check("sdk.openai", Severity.FAIL, "the openai SDK reads it",
                   "the captured streams replayed through the official openai SDK, which most "
                   "users run: it must not raise, and must rebuild the same text",
                   _openai, _OPENAI_DIALECTS)
ANTHROPIC_SDK = check("sdk.anthropic", Severity.FAIL, "the anthropic SDK reads it",
                      "the captured streams replayed through the official anthropic SDK's message "
                      "stream: it must not raise, and must rebuild the same text",
                      _anthropic, _ANTHROPIC_DIALECTS)
# fmt: on

CHECKS = (OPENAI_SDK, ANTHROPIC_SDK)
