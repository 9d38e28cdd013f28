"""Server-Sent Events, without I/O: a decoder that turns bytes into events, and an encoder.

This module follows the WHATWG HTML standard's "event stream interpretation" exactly
(https://html.spec.whatwg.org/multipage/server-sent-events.html). It never touches a
socket or a clock: bytes go in through ``Decoder.feed``, events come out, and the end of
the stream is an explicit ``Decoder.close``. Every transport, the conformance checker and
the mock server share it, so nothing in sse-harness parses or writes SSE twice.

How the decoder reads bytes, and why it is exact whatever the chunking:

* Line ends (LF, CR, CRLF) are ASCII bytes that never occur inside a UTF-8 sequence, so
  the decoder splits on them *before* decoding. Only complete lines are decoded; the
  bytes of an unterminated line wait in a buffer. A multi-byte character split across
  two feeds is therefore never damaged, and invalid bytes decode to U+FFFD exactly as
  if the whole stream had been decoded at once.
* A CR at the very end of a feed ends its line at once; if the next feed starts with LF,
  that LF belongs to the same CRLF and is skipped.
* The unterminated-line buffer is re-joined with each feed (``tail + data``), which is
  O(n) per feed in the length of the pending line. Lines are short in practice, and the
  buffer is bounded by ``max_event_bytes``, so this stays linear in the stream's size.
* A feed that is exactly one ``data: ...`` line and its blank line, with nothing
  pending (what an LLM stream sends, one event per write), is read without splitting it
  into lines: the same event, in about half the time (``Decoder.single_data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import msgspec

from harness.errors import EventTooLarge, SSEError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "Decoder", "Event", "encode"]

#: Default bound on one line (bytes) and one event's data (characters): 8 MiB.
DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_CR = 13
_LF = 10


class Event(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event: immutable, hashable, compared field by field.

    Its fields are strings, an int and None, which can hold no reference back to an
    event, so the garbage collector need not track it (``gc=False``): a stream makes
    one per event.

    Attributes:
        type: the ``event`` field of its block, or ``"message"`` when there was none.
        data: the block's ``data`` lines joined with LF.
        id: the last-event-ID buffer at dispatch. It persists across events, as the
            standard says; ``None`` until any ``id`` field was seen.
        retry: the value of a valid ``retry`` field inside this event's block, else None.
    """

    type: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class Decoder:
    """Incremental, sans-IO event-stream decoder.

    Feed it the body of a ``text/event-stream`` response in chunks of any size; it
    returns the events each chunk completes::

        decoder = Decoder()
        for chunk in body_chunks:
            for event in decoder.feed(chunk):
                ...
        decoder.close()

    Args:
        max_event_bytes: the largest line (in bytes) and the largest event data (in
            decoded characters, never more than its bytes) the decoder accepts. Past it,
            ``feed`` raises ``EventTooLarge`` instead of growing memory without limit.
    """

    __slots__ = (
        "_bom_pending",
        "_closed",
        "_data",
        "_failed",
        "_last_id",
        "_limit",
        "_retry",
        "_single",
        "_skip_lf",
        "_tail",
        "_type",
        "_unusual",
        "discarded",
    )

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be positive, not {max_event_bytes}")
        self._limit = max_event_bytes
        self._tail = b""  # bytes of the line still waiting for its line end
        self._skip_lf = False  # the previous feed ended in CR: an LF next completes CRLF
        self._bom_pending = True  # nothing decoded yet: a leading BOM is still possible
        self._data: list[str] = []  # the data lines of the event being read
        self._type = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._closed = False
        self._failed = False
        self._unusual = True  # any of the four flags above is set: feed takes the slow way
        #: nothing unusual and nothing pending: a feed that is one data event alone is
        #: that event (``single_data``)
        self._single = False
        #: Set by ``close``: True when it discarded an event or line left unterminated.
        self.discarded = False

    @property
    def last_event_id(self) -> str | None:
        """The last-event-ID buffer: what a reconnecting client would send back."""
        return self._last_id

    def feed(self, data: bytes) -> list[Event]:
        """Decode the next chunk of the stream.

        Args:
            data: the next bytes of the body, exactly as received.

        Returns:
            The events completed by this chunk, in order (often none).

        Raises:
            EventTooLarge: a line or an event's data outgrew ``max_event_bytes``. The
                events this feed completed before that point are in its ``events``;
                the decoder is unusable afterwards.
            SSEError: the decoder was closed or had failed before.
        """
        if self._unusual:  # closed, failed, a BOM still possible, or a CR just read
            data = self._prelude(data)
            if not data:
                return []
        single = self.single_data(data)
        if single is not None:  # one "data:" event alone: no line machinery
            return [Event("message", single.decode("utf-8", "replace"), self._last_id, None)]
        has_cr = _CR in data  # the tail never holds a line end, so look at new bytes only
        buf = self._tail + data if self._tail else data
        end = buf.rfind(b"\n")
        if has_cr:
            end = max(end, buf.rfind(b"\r"))
        if end < 0:
            if len(buf) > self._limit:
                self._fail("line", len(buf))
            self._tail = buf
            self._single = False
            return []

        if end == len(buf) - 1:  # the common case: the feed ends with a line end
            complete = buf
            self._tail = b""
            if has_cr and buf[end] == _CR:
                self._skip_lf = self._unusual = True
        else:
            complete = buf[: end + 1]
            self._tail = buf[end + 1 :]

        text = complete.decode("utf-8", "replace")
        if has_cr:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        del lines[-1]  # the text ends with its last line end, so the last piece is empty
        if len(complete) > self._limit:  # only then can a line be longer than the limit
            for number, size in enumerate(_line_sizes(complete)):
                if size > self._limit:
                    self._fail("line", size, self._interpret(lines[:number]))
        events = self._interpret(lines)
        if len(self._tail) > self._limit:
            self._fail("line", len(self._tail), events)
        self._single = not (
            self._unusual or self._tail or self._data or self._type or self._retry is not None
        )
        return events

    def single_data(self, data: bytes) -> bytes | None:
        """The data of the one event ``data`` is, when it is exactly one ``data: ...``
        line and its blank line and nothing is pending before it.

        Such a feed dispatches that event (type ``message``, the current last event ID,
        no retry) and leaves the decoder as it was, so reading the data here is the same
        as feeding it: a reader may take the data and not feed the bytes. It is what an
        LLM stream sends in each write.

        Returns:
            The event's data, as bytes (UTF-8, decoded with errors replaced, is the
            event's data), or None when ``data`` is anything else (feed it then).
        """
        if (
            not self._single  # something unusual, or a line or an event pending
            or not data.startswith(b"data: ")
            or data.find(b"\n") != (last := len(data) - 1) - 1  # the last but one is its
            or data[last] != _LF  # first line end, and the last byte the blank line
            or _CR in data
            or last >= self._limit
        ):
            return None
        return data[6:-2]

    def _prelude(self, data: bytes) -> bytes:
        """Handle the rare states before a feed: closed, failed, BOM, split CRLF."""
        if self._closed or self._failed:
            raise SSEError("feed() on a decoder that is closed or has failed")
        if not data:
            return data
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == 10:  # the LF of a CRLF whose CR ended the previous feed
                data = data[1:]
        if self._bom_pending and data:
            data = self._tail + data
            self._tail = b""
            if len(data) < 3 and _BOM.startswith(data):
                self._tail = data  # too short to tell yet
                return b""
            self._bom_pending = False
            if data.startswith(_BOM):
                data = data[3:]
        self._unusual = self._bom_pending
        return data

    def close(self) -> list[Event]:
        """End the stream.

        An event not ended by a blank line is discarded, as the standard says; so is an
        unterminated line. ``discarded`` tells whether that happened.

        Returns:
            The events the end of the stream dispatches: always none for SSE, since only
            a blank line dispatches (the list keeps the shape of other framings).
        """
        if not self._closed:
            self._closed = self._unusual = True
            self._single = False
            self.discarded = bool(self._tail or self._data or self._type)
            self._tail = b""
            self._data = []
        return []

    def _interpret(self, lines: list[str]) -> list[Event]:
        events: list[Event] = []
        data = self._data
        for line in lines:
            if not line:  # a blank line dispatches the event, if it has data
                if data:
                    text = "\n".join(data)
                    if len(text) > self._limit:
                        self._fail("event", len(text), events)
                    events.append(Event(self._type or "message", text, self._last_id, self._retry))
                    data = self._data = []
                self._type = ""
                self._retry = None
            elif line.startswith("data:"):  # the most common field first
                data.append(line[6:] if line.startswith(" ", 5) else line[5:])
            elif line[0] != ":":  # a line starting with ':' is a comment
                name, colon, value = line.partition(":")
                if colon and value.startswith(" "):
                    value = value[1:]
                if name == "data":  # "data" with no colon: an empty data line
                    data.append(value)
                elif name == "event":
                    self._type = value
                elif name == "id":
                    if "\0" not in value:  # an id holding NUL is ignored
                        self._last_id = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    self._retry = int(value)  # a retry of anything but digits is ignored
                # any other field name is ignored
        if data:
            size = sum(map(len, data)) + len(data) - 1
            if size > self._limit:
                self._fail("event", size, events)
        return events

    def _fail(self, what: str, size: int, events: Sequence[Event] = ()) -> NoReturn:
        self._failed = self._unusual = True
        self._single = False
        raise EventTooLarge(what, size, self._limit, events)


def _line_sizes(complete: bytes) -> list[int]:
    """The length in bytes of each line of ``complete``, which ends with a line end."""
    lines = complete.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return [len(line) for line in lines[:-1]]


_NEWLINES = ("\n", "\r\n", "\r")


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def encode(
    data: str | None,
    *,
    event: str | None = None,
    id: str | None = None,  # noqa: A002 - the SSE field's own name
    retry: int | None = None,
    comment: str | None = None,
    newline: str = "\n",
) -> bytes:
    """Write one SSE block: the only place sse-harness writes event-stream bytes.

    Args:
        data: the event's data; each of its lines (LF, CR or CRLF separated) becomes a
            ``data:`` line, so a decoder returns it with LF line ends. None writes no
            data line (a block with only a comment, id or retry dispatches nothing).
        event: the ``event`` field (the event's type).
        id: the ``id`` field.
        retry: the ``retry`` field, in milliseconds.
        comment: a comment written first (``: comment``), e.g. a keep-alive.
        newline: the line end to use: ``"\\n"``, ``"\\r\\n"`` or ``"\\r"``.

    Returns:
        The block's UTF-8 bytes, ended by a blank line.

    Raises:
        ValueError: a field cannot be written as SSE (a line end in ``event`` or ``id``,
            NUL in ``id``, a negative ``retry``, an unknown ``newline``).
    """
    if (
        data is not None
        and newline == "\n"
        and event is None
        and id is None
        and retry is None
        and comment is None
        and "\n" not in data
        and "\r" not in data
    ):  # the common block, one data line: the same bytes as below, built in one step
        return ("data: " + data + "\n\n").encode("utf-8")
    if newline not in _NEWLINES:
        raise ValueError(f"newline must be one of {_NEWLINES!r}, not {newline!r}")
    out: list[str] = []
    if comment is not None:
        out.extend(":" + (" " + line if line else "") for line in _lines(comment))
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError(f"an SSE event type cannot hold a line end: {event!r}")
        out.append("event: " + event)
    if id is not None:
        if "\n" in id or "\r" in id or "\0" in id:
            raise ValueError(f"an SSE id cannot hold a line end or NUL: {id!r}")
        out.append("id: " + id)
    if retry is not None:
        if retry < 0:
            raise ValueError(f"retry must be a non-negative number of ms, not {retry}")
        out.append(f"retry: {retry}")
    if data is not None:
        if "\r" not in data and "\n" not in data:
            out.append("data: " + data)
        else:
            out.extend("data: " + line for line in _lines(data))
    out.append("")
    out.append("")
    return newline.join(out).encode("utf-8")
