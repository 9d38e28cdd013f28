"""Error bodies in each dialect's own shape.

* OpenAI (chat, completions, Responses):
  ``{"error": {"message", "type", "param", "code"}}``;
* Anthropic: ``{"type": "error", "error": {"type", "message"}}``;
* the tutorial endpoints (FastAPI style): ``{"detail": message}``.
"""

from __future__ import annotations

from typing import Any

from mock_server.plan import Endpoint

__all__ = ["error_body"]

_OPENAI = {Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.RESPONSES}

#: status -> (OpenAI type, OpenAI code)
_OPENAI_TYPES = {
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}
_ANTHROPIC_TYPES = {
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


def error_body(
    endpoint: Endpoint | None, status: int, message: str, *, param: str | None = None
) -> dict[str, Any]:
    """The JSON error body a dialect's API would send.

    Args:
        endpoint: the endpoint the request was for; None answers in OpenAI's shape.
        status: the HTTP status.
        message: what went wrong.
        param: the offending request field, when there is one (OpenAI's ``param``).

    Returns:
        The body.
    """
    if endpoint is Endpoint.MESSAGES:
        kind = _ANTHROPIC_TYPES.get(
            status, "invalid_request_error" if status < 500 else "api_error"
        )
        return {"type": "error", "error": {"type": kind, "message": message}}
    if endpoint is not None and endpoint not in _OPENAI:
        return {"detail": message}
    default = ("invalid_request_error", None) if status < 500 else ("server_error", None)
    kind, code = _OPENAI_TYPES.get(status, default)
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
