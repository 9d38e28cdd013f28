"""The data of an HTTP/1.1 chunked body, without I/O: a strict reader for the common case.

``ChunkedBody`` takes the bytes of a body sent with ``Transfer-Encoding: chunked`` as
they arrive and returns the data they complete. It reads only the plainest framing, a
hexadecimal size line, the data and CRLF, which is what servers send. At the last chunk
(``0``), or at anything it does not read (a chunk extension, a malformed size, a missing
CRLF), it stops and returns the bytes from that point on, so that a full HTTP parser
can take over from a chunk boundary: that parser then reads the trailers, or names what
is wrong, exactly as if it had read the whole body itself.
"""

from __future__ import annotations

__all__ = ["MAX_SIZE_LINE", "ChunkedBody"]

#: The longest size line read here (CRLF included); a longer one is handed over.
MAX_SIZE_LINE = 18
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_AFTER_DATA = -1  # the CRLF that ends a chunk's data is next


def _chunk_size(line: bytes) -> int | None:
    """The size a size line (without its CRLF) states; None when it is not plain hex."""
    if not line or line.translate(None, _HEX_DIGITS):
        return None
    return int(line, 16)


#: By the length of a feed, the size line (with its CRLF) it starts with when it is one
#: whole chunk, its size in lowercase hex without leading zeros (as servers write it);
#: filled as lengths are met. Where no such line fits, bytes longer than the feed, which
#: no feed of that length starts with.
_WHOLE_CHUNK_HEADS: dict[int, bytes] = {}


def _whole_chunk_head(length: int) -> bytes:
    """The size line of a feed of ``length`` bytes that is one whole chunk: ``size`` in
    hex, CRLF, ``size`` bytes of data and CRLF, so ``length`` = digits + size + 4."""
    head = bytes(length + 1)
    for digits in range(1, MAX_SIZE_LINE - 1):
        size = length - digits - 4
        if size > 0 and len(b"%x" % size) == digits:
            head = b"%x\r\n" % size
            break
    if len(_WHOLE_CHUNK_HEADS) < 1 << 16:
        _WHOLE_CHUNK_HEADS[length] = head
    return head


class ChunkedBody:
    """Reads the data out of a chunked body, chunk by chunk, in feeds of any size."""

    __slots__ = ("_left", "_tail")

    def __init__(self) -> None:
        self._tail = b""  # a size line or a CRLF not complete yet
        self._left = 0  # data bytes of the current chunk still to come; 0: a size line next

    def feed(self, data: bytes) -> tuple[bytes, bytes | None]:
        """Read the next bytes of the body.

        Returns:
            ``(body, rest)``: the body data these bytes complete (often all of them), and
            None while the body goes on, or else the bytes from the last chunk or from
            the first thing not read here on, for a full parser. The reader is not fed
            again after it returned a rest.
        """
        left = self._left
        if not left and not self._tail:  # the common case: one whole chunk, nothing more
            head = _WHOLE_CHUNK_HEADS.get(len(data)) or _whole_chunk_head(len(data))
            if data.startswith(head) and data.endswith(b"\r\n"):
                return data[len(head) : -2], None
        elif left > 0 and len(data) <= left:  # all of it is data
            self._left = left - len(data) if len(data) < left else _AFTER_DATA
            return data, None
        buf = self._tail + data if self._tail else data
        self._tail = b""
        pos = 0
        end = len(buf)
        pieces = []
        while pos < end:
            if left > 0:
                stop = min(end, pos + left)
                pieces.append(buf[pos:stop])
                left -= stop - pos
                pos = stop
                if not left:
                    left = _AFTER_DATA
            elif left == _AFTER_DATA:
                if end - pos < 2:
                    if buf[pos:] != b"\r":
                        return b"".join(pieces), buf[pos:]
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    return b"".join(pieces), buf[pos:]
                pos += 2
                left = 0
            else:
                line_end = buf.find(b"\r\n", pos, pos + MAX_SIZE_LINE)
                if line_end < 0:
                    if end - pos >= MAX_SIZE_LINE:
                        return b"".join(pieces), buf[pos:]
                    break
                stated = _chunk_size(buf[pos:line_end])
                if not stated:  # the last chunk, or a size line not read here
                    return b"".join(pieces), buf[pos:]
                left = stated
                pos = line_end + 2
        self._left = left
        self._tail = buf[pos:]
        return b"".join(pieces), None
