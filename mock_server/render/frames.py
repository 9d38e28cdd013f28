"""The frames of one streamed response, and the driver every dialect shares.

A dialect says *what* each part of a stream looks like (``StreamDialect``: the preamble,
the start and end of the reasoning and answer phases, one token event, the finish, the
terminator, an error); ``build_frames`` says *when*, applying the plan's schedule and its
stream faults (disconnect, mid-stream error, malformed JSON, missing terminator, line
ends, keep-alive comments, Anthropic pings). Every SSE byte goes through
``harness.sse.encode``, except the token blocks of a dialect that offers
``token_bytes(phase, text, choice)`` (OpenAI chat): those are built from encoded
prefixes, at admission once per token, and a test holds them equal to what ``encode``
writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from harness.sse import encode
from mock_server.plan import Plan

__all__ = [
    "MAX_PERIODIC",
    "Frame",
    "Identity",
    "Piece",
    "Rendered",
    "StreamDialect",
    "build_frames",
]

#: The most keep-alive comments or pings one response carries.
MAX_PERIODIC = 10_000

REASONING, CONTENT = "reasoning", "content"


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """What names one response on the wire.

    Attributes:
        request_id: the mock's request id (``x-mock-request-id``).
        response_id: hex digits; each dialect adds its prefix (``chatcmpl-``, ``msg_``...).
        created_s: the Unix time of the ``created`` fields.
    """

    request_id: str
    response_id: str
    created_s: int


class Piece(NamedTuple):
    """One SSE block before encoding (or, with ``raw``, plain text).

    A named tuple: a stream makes one per token at admission, and a tuple is the
    cheapest immutable record to make.
    """

    data: str | None
    event: str | None = None
    id: str | None = None
    comment: str | None = None
    raw: bool = False


class Frame(NamedTuple):
    """Bytes due at one time.

    A named tuple rather than a dataclass on purpose: a tuple holding only ints and bytes
    is untracked by the cycle collector, so the hundreds of thousands of frames a busy
    mock holds cost nothing at each garbage collection (as dataclass instances, every
    full collection walked them all and stalled every stream for tens of milliseconds).

    Attributes:
        offset_ns: when it is due, from the request's receipt.
        data: the bytes (an HTTP chunk's payload).
        tokens: tokens it carries; 0 for structural frames, pings and comments.
    """

    offset_ns: int
    data: bytes
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Rendered:
    """A streamed response, ready for the writer.

    Attributes:
        frames: the frames in the order to write them (offsets never decrease).
        content_type: the response's ``Content-Type``.
        cut: close the connection abruptly after the last frame (the disconnect fault),
            instead of ending the body properly.
        error: the stream ends with an error event (the error_event fault).
    """

    frames: tuple[Frame, ...]
    content_type: str
    cut: bool = False
    error: bool = False


class StreamDialect(Protocol):
    """How one API's stream looks; each method returns the pieces of one moment.

    ``token`` gets the event's 1-based position and its choice (always 0 but for OpenAI
    chat and completions with ``n`` above 1); the preamble and the finish cover every
    choice of the plan.
    """

    content_type: str
    #: True when token pieces carry JSON (the malformed_json fault can break them).
    json_tokens: bool

    def preamble(self) -> list[Piece]: ...
    def start(self, phase: str) -> list[Piece]: ...
    def token(self, phase: str, text: str, position: int, choice: int = 0) -> Piece: ...
    def end(self, phase: str) -> list[Piece]: ...
    def finish(self) -> list[Piece]: ...
    def terminator(self) -> list[Piece]: ...
    def error(self) -> list[Piece]: ...
    def periodic(self) -> tuple[float, Piece] | None: ...


class _Frames:
    __slots__ = ("frames", "newline")

    def __init__(self, newline: str) -> None:
        self.frames: list[Frame] = []
        self.newline = newline

    def encode(self, piece: Piece) -> bytes:
        if piece.raw:
            return (piece.data or "").encode("utf-8")
        return encode(
            piece.data, event=piece.event, id=piece.id, comment=piece.comment, newline=self.newline
        )

    def add(self, offset_ns: int, pieces: list[Piece]) -> None:
        if pieces:
            self.frames.append(Frame(offset_ns, b"".join(self.encode(p) for p in pieces)))

    def add_token(self, offset_ns: int, piece: Piece, tokens: int) -> None:
        self.frames.append(Frame(offset_ns, self.encode(piece), tokens))


def build_frames(plan: Plan, dialect: StreamDialect) -> Rendered:
    """Lay out a streamed response in time.

    Args:
        plan: the response's plan.
        dialect: how its API's stream looks.

    Returns:
        The frames, and whether the connection is to be cut after them.
    """
    faults = plan.faults
    out = _Frames(faults.newline)
    start_ns = plan.headers_offset_ns
    out.add(start_ns, dialect.preamble())
    phases, texts, choices = _token_events(plan)
    tokens = plan.event_tokens()
    phase: str | None = None
    cut = ended = False
    # a dialect may offer the encoded block of a token directly (``token_bytes``)
    fast = getattr(dialect, "token_bytes", None) if faults.newline == "\n" else None
    for index, kind in enumerate(phases):
        at = plan.offsets_ns[index]
        if faults.disconnect_after == index:
            cut = True
            break
        if faults.error_at == index + 1:
            out.add(at, dialect.error())
            ended = True
            break
        if kind != phase:
            pieces = dialect.end(phase) if phase else []
            # The first phase opens with the preamble, as the real APIs send it.
            out.add(start_ns if phase is None else at, pieces + dialect.start(kind))
            phase = kind
        if fast is not None and faults.malformed_at != index + 1:
            out.frames.append(Frame(at, fast(kind, texts[index], choices[index]), tokens[index]))
            continue
        piece = dialect.token(kind, texts[index], index + 1, choices[index])
        if faults.malformed_at == index + 1 and dialect.json_tokens and piece.data:
            piece = Piece(piece.data[:-1], piece.event, piece.id, piece.comment, piece.raw)
        out.add_token(at, piece, tokens[index])
    else:
        if faults.disconnect_after is not None:
            cut = True  # fewer token events than disconnect_after: cut before the finish
    if not cut and not ended:
        end_ns = plan.end_offset_ns
        closing: list[Piece] = []
        if phase != CONTENT:  # no answer tokens: open and close an empty answer
            closing = (dialect.end(phase) if phase else []) + dialect.start(CONTENT)
        out.add(end_ns, closing + dialect.end(CONTENT) + dialect.finish())
        if not faults.no_terminator:
            out.add(end_ns, dialect.terminator())
    frames = out.frames
    periodic = _periodic(plan, dialect, out, start_ns, frames[-1].offset_ns if frames else start_ns)
    if periodic:
        frames = sorted(frames + periodic, key=_offset)
    return Rendered(tuple(frames), dialect.content_type, cut, ended)


def _token_events(plan: Plan) -> tuple[list[str], list[str], list[int]]:
    """Each token event's phase, text and choice, in ``plan.offsets_ns`` order."""
    steps = [REASONING] * len(plan.reasoning) + [CONTENT] * len(plan.content)
    n = plan.n
    if n == 1:
        return steps, [*plan.reasoning, *plan.content], [0] * len(steps)
    per_choice = [choice.reasoning + choice.content for choice in map(plan.choice, range(n))]
    phases = [phase for phase in steps for _ in range(n)]
    texts = [text for step in zip(*per_choice, strict=True) for text in step]
    return phases, texts, list(range(n)) * len(steps)


def _offset(frame: Frame) -> int:
    return frame.offset_ns


def _periodic(
    plan: Plan, dialect: StreamDialect, out: _Frames, start_ns: int, end_ns: int
) -> list[Frame]:
    """Keep-alive comments (fault) and the dialect's own pings, strictly inside the stream."""
    sources: list[tuple[float, Piece]] = []
    if plan.faults.keepalive_ms and dialect.content_type.startswith("text/event-stream"):
        sources.append((plan.faults.keepalive_ms, Piece(None, comment="keep-alive")))
    own = dialect.periodic()
    if own is not None and own[0] > 0:
        sources.append(own)
    frames: list[Frame] = []
    for interval_ms, piece in sources:
        step_ns = round(interval_ms * 1_000_000)
        data = out.encode(piece)
        at = start_ns + step_ns
        while at < end_ns and len(frames) < MAX_PERIODIC:
            frames.append(Frame(at, data))
            at += step_ns
    return frames
