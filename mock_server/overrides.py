"""Per-request overrides: ``X-Mock-*`` headers, a ``mock`` object in the body, or query.

Parsed at the edge into a frozen ``Overrides``; a bad value raises ``ConfigError`` naming
the header, body key or query parameter as the client spelled it, and the handler answers
400 with that message. ``mock_server/OVERRIDES.md`` is the reference for clients.

Precedence: a header beats the body's ``mock`` object, which beats a ``mock_*`` query
parameter (the only way a browser ``EventSource`` can ask).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from mock_server.config import MAX_TIME_MS

__all__ = ["FaultSpec", "Overrides", "parse_fault", "parse_overrides"]

#: Override name -> (header, body key, query parameter).
_NAMES = {
    "ttft_ms": ("X-Mock-Ttft-Ms", "ttft_ms", "mock_ttft_ms"),
    "itl_ms": ("X-Mock-Itl-Ms", "itl_ms", "mock_itl_ms"),
    "tokens": ("X-Mock-Tokens", "tokens", "mock_tokens"),
    "reasoning_tokens": ("X-Mock-Reasoning-Tokens", "reasoning_tokens", "mock_reasoning_tokens"),
    "seed": ("X-Mock-Seed", "seed", "mock_seed"),
    "fault": ("X-Mock-Fault", "fault", "mock_fault"),
}

#: Fault specs without a parameter.
_FLAGS = frozenset(
    {"http_429", "http_500", "http_503", "no_terminator", "crlf", "cr", "split_bytes"}
    | {"split_random"}
)
#: Fault specs that take ``@N`` (the 1-based token event it happens at; default 1).
_AT_ONLY = frozenset({"malformed_json", "error_event"})
_MAX_COUNT = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One fault a request asks for.

    Attributes:
        kind: a kind of ``mock_server.config.FAULT_KINDS`` (``disconnect_after=N`` is kind
            ``disconnect``).
        at: the 1-based token event it happens at (``stall``, ``malformed_json``,
            ``error_event``), or the number of token events before it (``disconnect``).
        value: seconds for ``stall`` and ``slow_headers``, milliseconds for ``keepalive``;
            None takes the configured default.
    """

    kind: str
    at: int | None = None
    value: float | None = None

    def __str__(self) -> str:
        if self.kind == "disconnect":
            return f"disconnect_after={self.at}"
        text = self.kind
        if self.value is not None:
            text += f"={self.value:g}"
        if self.at is not None:
            text += f"@{self.at}"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrides:
    """What one request changes about its own response.

    ``faults`` is None when the request named no fault (faults are then drawn from the
    configured rates); a tuple, even empty (``none``), replaces the draw.
    """

    ttft_ms: float | None = None
    itl_ms: float | None = None
    tokens: int | None = None
    reasoning_tokens: int | None = None
    seed: int | None = None
    faults: tuple[FaultSpec, ...] | None = None


def parse_overrides(
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    query: Mapping[str, str] | None = None,
) -> Overrides:
    """Read a request's overrides.

    Args:
        headers: the request headers (case-insensitive lookup is the caller's mapping's).
        body: the value of the body's ``mock`` key (a JSON object), or None.
        query: the query parameters.

    Returns:
        The overrides.

    Raises:
        ConfigError: an override has a bad value, or ``mock`` has an unknown key.
    """
    if body is not None and not isinstance(body, dict):
        raise ConfigError("mock", "must be a JSON object")
    if body:
        known = {names[1] for names in _NAMES.values()}
        for key in body:
            if key not in known:
                raise ConfigError(f"mock.{key}", f"unknown override; valid: {sorted(known)}")
    values: dict[str, Any] = {}
    for name, (header, key, param) in _NAMES.items():
        raw: Any = None
        where = ""
        if headers is not None and header in headers:
            raw, where = headers[header], header
        elif body and key in body:
            raw, where = body[key], f"mock.{key}"
        elif query is not None and param in query:
            raw, where = query[param], param
        if where:
            values[name] = _convert(name, where, raw)
    faults = values.pop("fault", None)
    return Overrides(**values, faults=faults)


def _convert(name: str, where: str, raw: Any) -> Any:
    if name == "fault":
        items = raw if isinstance(raw, list) else [raw]
        specs: list[FaultSpec] = []
        for item in items:
            if not isinstance(item, str):
                raise ConfigError(where, f"a fault spec is a string, not {item!r}")
            for part in item.split(","):
                spec = parse_fault(part.strip(), where)
                if spec is not None:
                    specs.append(spec)
        return tuple(specs)
    if name in ("ttft_ms", "itl_ms"):
        return _real(where, raw, 0, MAX_TIME_MS)
    if name == "seed":
        return _whole(where, raw, -(2**63), 2**63 - 1)
    return _whole(where, raw, 0, _MAX_COUNT)


def parse_fault(text: str, where: str = "fault") -> FaultSpec | None:
    """Parse one fault spec such as ``stall=2.5@10``.

    Args:
        text: the spec; ``none`` (or empty) asks for no fault.
        where: how the client named the override, for errors.

    Returns:
        The spec, or None for ``none``.

    Raises:
        ConfigError: an unknown kind or a bad parameter.
    """
    if text in ("", "none"):
        return None
    head, _, at_text = text.partition("@")
    kind, equals, value_text = head.partition("=")
    at = _whole(where, at_text, 1, _MAX_COUNT, spec=text) if at_text else None
    if kind == "disconnect_after":
        if not equals or at is not None:
            raise ConfigError(where, f"write disconnect_after=N (N tokens first), not {text!r}")
        return FaultSpec(kind="disconnect", at=_whole(where, value_text, 0, _MAX_COUNT, spec=text))
    if kind in _FLAGS or kind in _AT_ONLY:
        if equals or (at is not None and kind in _FLAGS):
            raise ConfigError(where, f"{kind} takes no parameter: {text!r}")
        return FaultSpec(kind=kind, at=None if kind in _FLAGS else (at or 1))
    if kind == "stall":
        value = _real(where, value_text, 0, MAX_TIME_MS / 1000, spec=text) if equals else None
        return FaultSpec(kind=kind, at=at or 1, value=value)
    if kind in ("slow_headers", "keepalive"):
        if at is not None:
            raise ConfigError(where, f"{kind} takes no @N: {text!r}")
        high = MAX_TIME_MS / 1000 if kind == "slow_headers" else MAX_TIME_MS
        value = _real(where, value_text, 0, high, spec=text) if equals else None
        if kind == "keepalive" and value is not None and value < 1:
            raise ConfigError(where, f"a keep-alive interval is at least 1 ms: {text!r}")
        return FaultSpec(kind=kind, value=value)
    valid = "http_429, http_500, http_503, disconnect_after=N, stall=S@N, malformed_json@N, "
    valid += "no_terminator, crlf, cr, keepalive=MS, split_bytes, split_random, "
    valid += "slow_headers=S, error_event@N, none"
    raise ConfigError(where, f"unknown fault {text!r}; valid: {valid}")


def _real(where: str, raw: Any, low: float, high: float, *, spec: str = "") -> float:
    try:
        value = float(raw) if isinstance(raw, str) else raw
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(where, f"must be a number, not {spec or raw!r}")
    if not low <= value <= high:
        raise ConfigError(where, f"must be between {low:g} and {high:g}, not {spec or raw!r}")
    return float(value)


def _whole(where: str, raw: Any, low: int, high: int, *, spec: str = "") -> int:
    if isinstance(raw, str):
        text = raw.strip()
        value: Any = int(text) if text.lstrip("-").isdigit() and text.isascii() else None
    else:
        value = raw
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, f"must be an integer, not {spec or raw!r}")
    if not low <= value <= high:
        raise ConfigError(where, f"must be between {low} and {high}, not {spec or raw!r}")
    return value
