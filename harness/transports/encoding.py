"""Content codings: what every transport asks for, and what it does with what it gets.

Every transport asks for ``Accept-Encoding: identity`` unless the request names its
own: a compressed stream is held back by the compressor until a block fills, which is
not what a harness means to measure. A server may compress anyway. Then every
transport decodes ``gzip`` and ``deflate`` itself, with ``BodyDecoder``, read by read,
so each piece of decoded body keeps the arrival time of the read that completed it;
any other coding (``br``, ``zstd``, several stacked) fails the read with
``UndecodableBody`` (a ``ReadFailed``; the record says ``protocol``) naming it, at the
first body byte, rather than handing compressed bytes to the SSE decoder. The
libraries' own decompression is off, so all three behave alike whatever optional
packages are installed.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

from harness.errors import UndecodableBody

__all__ = ["ACCEPT_ENCODING", "DECODED", "MAX_PIECE", "BodyDecoder", "content_coding", "decoded"]

#: What every transport asks for when the request does not say.
ACCEPT_ENCODING = "identity"
#: The content codings decoded here.
DECODED = ("gzip", "deflate")
#: The most decoded bytes handed on in one piece: a read that inflates to more (a
#: "zip bomb") is handed on in pieces, and the SSE decoder's limits take over.
MAX_PIECE = 256 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def content_coding(value: str | None) -> str | None:
    """The coding a ``Content-Encoding`` value (all its lines, joined with commas) names,
    lower-cased; None for none or identity.

    Several codings come back as they are listed (``"gzip, br"``), ``identity`` left out.
    """
    if not value:
        return None
    codings = [c for c in (p.strip().lower() for p in value.split(",")) if c and c != "identity"]
    return ", ".join(codings) or None


class BodyDecoder:
    """Decodes a gzip or deflate body in feeds of any size, without I/O.

    ``deflate`` is read as the zlib format the standard names, or as a bare deflate
    stream where the first byte says so (servers send both). Concatenated gzip
    members are read one after the other.

    Args:
        coding: ``gzip`` or ``deflate``.

    Raises:
        UndecodableBody: any other coding.
    """

    __slots__ = ("_coding", "_inflate")

    def __init__(self, coding: str) -> None:
        if coding not in DECODED:
            raise UndecodableBody(
                f"the body is sent with Content-Encoding: {coding}, which is not decoded "
                f"here (only {' and '.join(DECODED)} are; the request asks for identity)"
            )
        self._coding = coding
        self._inflate: zlib._Decompress | None = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes ``data`` completes, in pieces of at most ``MAX_PIECE`` bytes.

        Raises:
            UndecodableBody: the bytes are not valid for the coding.
        """
        try:
            while data:
                inflate = self._inflate
                if inflate is None:
                    inflate = self._inflate = self._start(data)
                piece = inflate.decompress(data, MAX_PIECE)
                if piece:
                    yield piece
                data = inflate.unconsumed_tail
                while len(piece) == MAX_PIECE and not data:  # output still held in zlib
                    piece = inflate.decompress(b"", MAX_PIECE)
                    if piece:
                        yield piece
                    data = inflate.unconsumed_tail
                if inflate.eof and not data:
                    if self._coding != "gzip":
                        return  # the deflate stream ended: nothing after it is read
                    data = inflate.unused_data  # the next gzip member, if any
                    self._inflate = None
        except zlib.error as exc:
            raise UndecodableBody(f"the body's {self._coding} coding is broken: {exc}") from exc

    def flush(self) -> bytes:
        """What is left once the body ended (usually nothing).

        Raises:
            UndecodableBody: the bytes are not valid for the coding.
        """
        if self._inflate is None:
            return b""
        try:
            return self._inflate.flush()
        except zlib.error as exc:
            raise UndecodableBody(f"the body's {self._coding} coding is broken: {exc}") from exc

    def _start(self, data: bytes) -> zlib._Decompress:
        if self._coding == "gzip":
            return zlib.decompressobj(_GZIP_WBITS)
        # the zlib format's first byte names the deflate method (8); a bare stream's does not
        return zlib.decompressobj(zlib.MAX_WBITS if (data[0] & 0x0F) == 8 else -zlib.MAX_WBITS)


async def decoded(
    chunks: AsyncIterator[tuple[int, bytes]], coding: str
) -> AsyncGenerator[tuple[int, bytes], None]:
    """``chunks`` decoded from ``coding``, each piece with the arrival of its read.

    Raises:
        UndecodableBody: a coding not decoded here (at the first body byte), or bytes not
            valid for it; and whatever ``chunks`` raises.
    """
    decoder: BodyDecoder | None = None
    arrival_ns = 0
    try:
        async for arrival_ns, data in chunks:
            if decoder is None:
                decoder = BodyDecoder(coding)
            for piece in decoder.feed(data):
                yield arrival_ns, piece
        if decoder is not None and (rest := decoder.flush()):
            yield arrival_ns, rest
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
