"""Redirects: which ones a transport follows, and how.

By default no transport follows a redirect: a 3xx is the response, with its status and
``Location``, and the exchange records it. A transport made with ``follow_redirects``
follows a redirect only within the request's origin (scheme, host and port), at most
``MAX_REDIRECTS`` times, so that the request's keys and headers never reach another
server: a redirect elsewhere, or one past the limit, is the response. The method after
a redirect is what httpx (and the OpenAI and Anthropic SDKs on it) sends: 307 and 308
repeat the request as it was; 303, and 302 for all but HEAD, and 301 for a POST, turn
it into a GET without a body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import TypeVar
from urllib.parse import urldefrag, urljoin, urlsplit

from harness.transports.base import HttpRequest, StreamingResponse

__all__ = ["MAX_REDIRECTS", "following", "origin", "redirected"]

#: The most redirects followed for one request; the next one is the response.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BODY_HEADERS = frozenset({"content-length", "transfer-encoding"})
R = TypeVar("R", bound=StreamingResponse)


def origin(url: str) -> tuple[str, str, int] | None:
    """The ``(scheme, host, port)`` of an http(s) URL; None for any other URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:  # a port that is not a number, or out of range
        return None
    return scheme, parts.hostname, port


def redirected(request: HttpRequest, status: int, location: str | None) -> HttpRequest | None:
    """The request to send next when ``status`` redirects ``request`` to ``location``.

    Returns:
        The request for the redirect's target, or None when the response is the answer:
        not a redirect, no ``Location``, or a target outside the request's origin.
    """
    if status not in _REDIRECTS or not location or not location.strip():
        return None
    url = urldefrag(urljoin(request.url, location.strip())).url
    here = origin(request.url)
    if here is None or origin(url) != here:
        return None
    method = request.method
    if method != "HEAD" and (status in (302, 303) or (status == 301 and method == "POST")):
        method = "GET"
    if method == request.method:
        return replace(request, url=url)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _BODY_HEADERS}
    return HttpRequest(method=method, url=url, headers=headers, body=None)


@asynccontextmanager
async def following(
    send: Callable[[HttpRequest], AbstractAsyncContextManager[R]],
    request: HttpRequest,
    max_redirects: int = MAX_REDIRECTS,
) -> AsyncIterator[R]:
    """Send ``request`` with ``send`` and follow its redirects within its origin; the
    context yields the first response that is not followed.

    Each redirect's response is closed unread before the next request goes out.
    """
    for _ in range(max_redirects):
        async with send(request) as response:
            after = redirected(request, response.status, response.headers.get("location"))
            if after is None:
                yield response
                return
        request = after
    async with send(request) as response:
        yield response
