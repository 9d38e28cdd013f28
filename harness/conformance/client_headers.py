"""The headers real clients send, so that ``check`` meets compression and proxies as a
user's client does (``--client-headers``).

Each set is what the client sends by default besides the request's own headers
(authorization, content type, the user's ``--header``s, which win). Only the codings
``check`` decodes are offered (``gzip``, ``deflate``): the SDKs add ``br`` and ``zstd``
when the ``brotli`` and ``zstandard`` packages are installed, and browsers always do.
``minimal`` asks for no compression at all, as ``run`` does.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CLIENT_HEADERS", "default_client", "headers_of"]

_COMPRESSED = "gzip, deflate"
#: Each client's default headers (lower-case names).
CLIENT_HEADERS: Mapping[str, Mapping[str, str]] = {
    "openai-python": {
        "accept": "application/json",
        "accept-encoding": _COMPRESSED,
        "user-agent": "OpenAI/Python",
        "x-stainless-lang": "python",
    },
    "anthropic-python": {
        "accept": "application/json",
        "accept-encoding": _COMPRESSED,
        "user-agent": "Anthropic/Python",
        "x-stainless-lang": "python",
    },
    "httpx": {"accept": "*/*", "accept-encoding": _COMPRESSED, "user-agent": "python-httpx"},
    "browser": {
        "accept": "text/event-stream",
        "accept-encoding": _COMPRESSED,
        "cache-control": "no-cache",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0 Safari/537.36",
    },
    "minimal": {"accept": "text/event-stream", "accept-encoding": "identity"},
}
#: The official SDK of each request kind; any other kind is read by plain httpx code.
_SDK = {
    "openai-chat": "openai-python",
    "openai-completions": "openai-python",
    "openai-responses": "openai-python",
    "anthropic": "anthropic-python",
}


def default_client(request: str) -> str:
    """The client whose headers a request of kind ``request`` carries by default."""
    return _SDK.get(request, "httpx")


def headers_of(client: str, own: Mapping[str, str]) -> dict[str, str]:
    """``own`` headers (the request's, which win) over ``client``'s defaults.

    Raises:
        KeyError: an unknown client.
    """
    names = {name.lower() for name in own}
    defaults = {k: v for k, v in CLIENT_HEADERS[client].items() if k not in names}
    return {**defaults, **own}
