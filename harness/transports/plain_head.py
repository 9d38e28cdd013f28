"""The common exchange of HTTP/1.1, read without h11: a strict reader with h11 behind it.

A load sends the same request head over and over and reads the same kind of response
head back, and h11 validates and parses every one of them afresh: most of what a short
stream costs the client. Here, without I/O:

* ``request_bytes``: the bytes h11 writes for a request head, worked out once per head,
  when sending them needs nothing more of h11 (the body, if any, framed by its
  ``Content-Length``).
* ``plain_head``: the response head nearly every server sends: an HTTP/1.1 status line
  with a reason phrase, header lines of a token name and a value of visible ASCII, every
  line ended by CRLF, and a chunked body. What it reads, h11 reads the same: the same
  status, the same headers (names lower-cased, values without the whitespace around
  them), the same framing, the same persistence. Anything else (an interim 1xx, a folded
  or bare-LF line, bytes past ASCII, another framing, a body-less status) it declines,
  and h11 reads the head. What it needs of the request (``asked``: its method, whether
  it asks to close) is worked out once per request head.
* ``replayed``: h11 brought to where such an exchange stands (the request sent, the head
  received), for when the body turns out to need it: trailers, framing ``ChunkedBody``
  does not read, a connection that breaks mid-body.
* ``sent``: the bytes h11 sends for a whole request, for both of the above and the
  transport.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

import h11

__all__ = [
    "LAST_CHUNK",
    "Asked",
    "PlainHead",
    "asked",
    "plain_head",
    "replayed",
    "request_bytes",
    "sent",
]

#: The last chunk of a body without trailers: the end of the body, nothing for h11 to read.
LAST_CHUNK = b"0\r\n\r\n"
_LF = 0x0A
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([2-5][0-9][0-9]) [\t\x20-\x7e]*\r\n")
#: One header line, from a line's start to its CRLF: a token name and a value of visible
#: ASCII, spaces and tabs around the value left out (``^``: only where a line starts).
_HEADER_LINE = re.compile(
    rb"^([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)[ \t]*\r\n",
    re.MULTILINE,
)
#: Request headers that put h11 in a state of its own, or frame the body themselves.
_H11_REQUEST_HEADERS = frozenset((b"expect", b"upgrade", b"transfer-encoding"))


class Asked(NamedTuple):
    """What of a request its response head is read against, worked out once per request
    head (``asked``)."""

    method: bytes
    #: The request asks to close the connection after the exchange.
    close: bool


def asked(request: h11.Request) -> Asked:
    """What ``plain_head`` needs of ``request``."""
    return Asked(request.method, _closes(request.headers))


class PlainHead(NamedTuple):
    """A response head read here: what h11's ``Response`` would say of it."""

    status: int
    #: ``(name, value)``: names lower-cased, in the order received.
    headers: list[tuple[bytes, bytes]]
    #: Neither the response nor the request asked to close the connection after it.
    keep_alive: bool


def request_bytes(head: h11.Request, body_bytes: int) -> bytes | None:
    """The bytes h11 writes for ``head`` (its body, ``body_bytes`` long, follows them as it
    is), or None when the request needs h11 to send it: a body without its length
    stated, ``Expect``, ``Upgrade``, or a method h11 treats apart (``CONNECT``)."""
    names = {name for name, _ in head.headers}
    if names & _H11_REQUEST_HEADERS or head.method == b"CONNECT":
        return None
    stated = [value for name, value in head.headers if name == b"content-length"]
    if stated != ([str(body_bytes).encode()] if body_bytes or stated else []):
        return None  # h11 names the mismatch
    return h11.Connection(h11.CLIENT).send(head)


def plain_head(raw: bytes, request: Asked) -> PlainHead | None:
    """Read ``raw``, a response head up to and including its blank line, when it is the
    plain kind (see the module's description) answering ``request``; else None."""
    found = _STATUS_LINE.match(raw)
    if found is None or request.method in (b"HEAD", b"CONNECT"):
        return None
    status = int(found.group(1))
    if status == 204 or status == 304:  # no body, whatever the headers say
        return None
    start, end = found.end(), len(raw) - 2
    if raw[end:] != b"\r\n" or (end > start and raw[end - 1] != _LF):
        return None
    fields = _HEADER_LINE.findall(raw, start, end)
    if len(fields) != raw.count(b"\n", start, end):  # a line that is not a plain header
        return None  # (each found line ends at a line feed: as many as those, all lines)
    headers = [(name.lower(), value) for name, value in fields]
    names = [name for name, _ in headers]
    if names.count(b"transfer-encoding") != 1 or b"content-length" in names:
        return None
    coding = names.index(b"transfer-encoding")
    if headers[coding][1].lower() != b"chunked":
        return None
    headers[coding] = (b"transfer-encoding", b"chunked")  # h11 lower-cases the coding
    close = request.close or (b"connection" in names and _closes(headers))
    return PlainHead(status, headers, not close)


def sent(h: h11.Connection, request: h11.Request, body: bytes | None) -> bytes:
    """The bytes ``h`` sends for ``request`` and its ``body``, the whole message.

    Raises:
        h11.LocalProtocolError: h11 refuses to send it.
    """
    data = h.send(request) or b""
    if body:
        data += h.send(h11.Data(data=body)) or b""
    return data + (h.send(h11.EndOfMessage()) or b"")


def replayed(request: h11.Request, body: bytes | None, raw: bytes) -> h11.Connection:
    """An h11 connection that has sent ``request`` (with ``body``) and received ``raw``,
    a response head ``plain_head`` read: it stands at the start of the body."""
    h = h11.Connection(h11.CLIENT)
    sent(h, request, body)
    h.receive_data(raw)
    event = h.next_event()
    assert type(event) is h11.Response, f"h11 read the head as {event!r}"
    return h


def _closes(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether ``Connection`` asks to close, read as h11 reads it (comma-separated,
    case-insensitive; names lower-cased)."""
    for name, value in headers:
        if name == b"connection":
            for token in value.split(b","):
                if token.strip().lower() == b"close":
                    return True
    return False
