"""Framing: the event stream's bytes, judged by the WHATWG rules.

Events come from ``harness.sse`` (through the reading); these checks look at the raw
bytes only for what the decoder deliberately forgives: invalid UTF-8 (replaced), line
ends (all accepted), comments and unknown fields (ignored), a last block without its
blank line (dropped).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

from harness.conformance.checks.evidence import (
    Streams,
    at_event,
    at_offset,
    grouped,
    of_request,
    over,
)
from harness.conformance.model import SSE_DIALECTS, CheckFactory, Evidence, Finding, Severity, Skip
from harness.conformance.reading import Digest, Line, ReadEvent, Spot, Suite
from harness.dialects import DeltaKind

__all__ = ["CHECKS", "FramingDigest"]

_BOM = b"\xef\xbb\xbf"
_FIELDS = frozenset({b"data", b"event", b"id", b"retry"})
_SUBSTANTIAL = frozenset(
    {
        DeltaKind.CONTENT,
        DeltaKind.REASONING,
        DeltaKind.TOOL_CALL,
        DeltaKind.USAGE,
        DeltaKind.FINISH,
        DeltaKind.ERROR,
        DeltaKind.REFUSAL,
    }
)
_NAMES = {b"\n": "LF", b"\r\n": "CRLF", b"\r": "CR"}


class FramingDigest(Digest):
    """What the framing checks keep of a stream: its line ends, comments and unknown
    fields, the events after its terminator, and the events split across reads.

    Attributes:
        endings: how many lines end in each line end, in the order first seen.
        first_ending: where the first line with each line end ends.
        bare_cr: where the first line ending in a bare CR ends.
        comments: how many ``:`` comment lines; ``first_comment`` where the first starts.
        unknown: the first line with an unknown field name: where it starts, the name.
        done: the first event with the dialect's terminator.
        after: events after it; ``first_after`` the first of them, ``substantial`` the
            first that carried something.
        split: events that began in an earlier read than the one that ended them;
            ``first_split`` the first of them.
    """

    wants_lines = True

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self.endings: dict[bytes, int] = {}
        self.first_ending: dict[bytes, int] = {}
        self.bare_cr: int | None = None
        self.comments = 0
        self.first_comment: int | None = None
        self.unknown: tuple[int, bytes] | None = None
        self.done: Spot | None = None
        self.after = 0
        self.first_after: Spot | None = None
        self.substantial: Spot | None = None
        self.split = 0
        self.first_split: Spot | None = None

    def line(self, line: Line, content: bytes) -> None:
        ending = line.ending
        if ending:
            if ending not in self.endings:
                self.endings[ending] = 0
                self.first_ending[ending] = line.end
            self.endings[ending] += 1
            if ending == b"\r" and self.bare_cr is None:
                self.bare_cr = line.end
        if content[:1] == b":":
            self.comments += 1
            if self.first_comment is None:
                self.first_comment = line.start
        elif content and self.unknown is None and not (line.start == 0 and content == _BOM):
            name = content.split(b":", 1)[0].removeprefix(_BOM)
            if name not in _FIELDS:
                self.unknown = (line.start, name[:30])

    def event(self, event: ReadEvent) -> None:
        if event.split:
            self.split += 1
            if self.first_split is None:
                self.first_split = event.spot
        if self.done is None:
            if DeltaKind.DONE in event.kinds():
                self.done = event.spot
            return
        self.after += 1
        if self.first_after is None:
            self.first_after = event.spot
        if self.substantial is None and event.kinds() & _SUBSTANTIAL:
            self.substantial = event.spot


def _sse(suite: Suite) -> Streams | Skip:
    readings = tuple(r for r in suite.readings if r.exchange.ok and r.framing == "sse")
    readings = tuple(r for r in readings if r.exchange.purpose.value != "invalid")
    return readings or Skip("no event stream was received")


@over(_sse)
def _utf8(readings: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in readings:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:  # a character cut by the client's own close is not the server's fault
            decoder.decode(reading.body, final=reading.complete)
        except UnicodeDecodeError as exc:
            items.append(
                (
                    "invalid UTF-8: decoders replace it with U+FFFD and the text is damaged",
                    at_offset(reading, exc.start),
                )
            )
    return grouped(UTF8, items)


@over(_sse)
def _bom(readings: Streams) -> Sequence[Finding] | Skip:
    items = [
        (
            "the body starts with a byte-order mark: WHATWG parsers skip it, but httpx-sse and "
            "the SDK decoders derived from it read the first field name with it and lose the "
            "first event",
            at_offset(r, 0),
        )
        for r in readings
        if r.body.startswith(_BOM)
    ]
    return grouped(BOM, items)


@over(_sse)
def _line_endings(readings: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in readings:
        digest = reading.digest(FramingDigest)
        kinds, first = digest.endings, digest.first_ending
        if len(kinds) > 1:
            counts = ", ".join(f"{kinds[k]} {_NAMES[k]}" for k in kinds)
            odd = min(kinds, key=kinds.__getitem__)
            items.append(
                (
                    "mixed line ends: valid, but fragile for line splitters",
                    at_offset(reading, first[odd], counts),
                )
            )
        elif b"\r\n" in kinds:
            items.append(
                (
                    "lines end in CRLF: valid; parsers that split on LF keep a CR on every value",
                    at_offset(reading, first[b"\r\n"]),
                )
            )
    return grouped(LINE_ENDINGS, items)


@over(_sse)
def _bare_cr(readings: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in readings:
        cr = reading.digest(FramingDigest).bare_cr
        if cr is not None:
            items.append(
                (
                    "lines end in a bare CR: WHATWG accepts it, but parsers that split "
                    "on LF see one endless line",
                    at_offset(reading, cr),
                )
            )
    return grouped(BARE_CR, items)


@over(_sse)
def _unterminated(readings: Streams) -> Sequence[Finding] | Skip:
    items = [
        (
            "the body ended inside an event (no blank line after it): WHATWG parsers drop it",
            at_offset(r, r.unterminated_at),
        )
        for r in readings
        if r.complete and r.unterminated_at is not None
    ]
    return grouped(UNTERMINATED, items)


@over(_sse)
def _after_terminator(readings: Streams) -> Sequence[Finding] | Skip:
    items: list[tuple[str, Evidence]] = []
    warnings: list[tuple[str, Evidence]] = []
    infos: list[tuple[str, Evidence]] = []
    for reading in readings:
        digest = reading.digest(FramingDigest)
        if digest.done is None:
            continue
        if digest.substantial is not None:
            items.append(
                (
                    "events with content after the terminator: clients stop reading "
                    "at it and lose them",
                    at_event(reading, digest.substantial),
                )
            )
        elif digest.first_after is not None:
            warnings.append(
                (
                    f"{digest.after} event(s) after the terminator",
                    at_event(reading, digest.first_after),
                )
            )
        elif reading.body[digest.done.end :].strip():
            infos.append(
                ("bytes after the terminator (not events)", at_offset(reading, digest.done.end))
            )
    return (
        grouped(AFTER_TERMINATOR, items)
        + grouped(AFTER_TERMINATOR, warnings, Severity.WARN)
        + grouped(AFTER_TERMINATOR, infos, Severity.INFO)
    )


@over(_sse)
def _comments(readings: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in readings:
        digest = reading.digest(FramingDigest)
        if digest.first_comment is not None:
            items.append(
                (
                    "':' comment lines, e.g. keep-alives as OpenRouter and DeepSeek send them: "
                    "parsers ignore them",
                    at_offset(reading, digest.first_comment, f"{digest.comments} comment lines"),
                )
            )
    return grouped(COMMENTS, items)


@over(_sse)
def _unknown_fields(readings: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in readings:
        unknown = reading.digest(FramingDigest).unknown
        if unknown is not None:
            offset, name = unknown
            shown = name.decode("utf-8", "replace")
            items.append(
                (
                    f"lines with an unknown field name such as {shown!r}: every "
                    "parser ignores them",
                    at_offset(reading, offset),
                )
            )
    return grouped(UNKNOWN_FIELDS, items)


def _no_events(suite: Suite) -> Sequence[Finding] | Skip:
    streams = [r for r in suite.streams if r.complete]
    if not streams:
        return Skip("no stream was read to its end")
    items = [
        ("a 2xx stream without a single event", of_request(r, f"{len(r.body)} bytes"))
        for r in streams
        if not r.event_count
    ]
    return grouped(NO_EVENTS, items)


@over(_sse)
def _split_reads(readings: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in readings:
        digest = reading.digest(FramingDigest)
        if digest.first_split is not None:
            detail = f"{digest.split} of {reading.event_count} events"
            items.append(
                (
                    "events arrive split across reads: valid, but a client that parses each "
                    "read on its own breaks",
                    at_event(reading, digest.first_split, detail),
                )
            )
    return grouped(SPLIT_READS, items)


check = CheckFactory("framing", SSE_DIALECTS)

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
UTF8 = check("framing.utf8", Severity.FAIL, "valid UTF-8",
             "an event stream is UTF-8; invalid bytes become U+FFFD and the text is lost", _utf8)
BOM = check("framing.bom", Severity.FAIL, "no byte-order mark",
            "the official SDKs' decoders keep a BOM in the first field name and lose that event",
            _bom)
LINE_ENDINGS = check("framing.line-endings", Severity.INFO, "LF line ends throughout",
                     "CR, LF and CRLF are all valid, but a mix or CRLF trips hand-written parsers",
                     _line_endings)
BARE_CR = check("framing.bare-cr", Severity.WARN, "no bare-CR line ends",
                "valid WHATWG, but most non-browser clients split lines on LF only", _bare_cr)
UNTERMINATED = check("framing.unterminated-event", Severity.FAIL,
                     "every event closed by a blank line",
                     "a final event without its blank line is dropped by every WHATWG parser",
                     _unterminated)
AFTER_TERMINATOR = check("framing.after-terminator", Severity.FAIL, "nothing after the terminator",
                         "clients stop at [DONE] or message_stop; whatever follows is never read",
                         _after_terminator)
COMMENTS = check("framing.comments", Severity.INFO, "comment lines",
                 "':' comments (keep-alives) are valid and ignored; worth knowing for raw readers",
                 _comments)
UNKNOWN_FIELDS = check("framing.unknown-fields", Severity.WARN, "only data/event/id/retry fields",
                       "lines with other field names are ignored; what they carry is lost",
                       _unknown_fields)
NO_EVENTS = check("framing.no-events", Severity.FAIL, "events in the stream",
                  "a stream that dispatches no event gives the client nothing", _no_events)
SPLIT_READS = check("framing.split-reads", Severity.INFO, "events whole in each read",
                    "splits are valid; they break clients that parse each network read on its own",
                    _split_reads)
# fmt: on

CHECKS = (
    UTF8,
    BOM,
    LINE_ENDINGS,
    BARE_CR,
    UNTERMINATED,
    AFTER_TERMINATOR,
    COMMENTS,
    UNKNOWN_FIELDS,
    NO_EVENTS,
    SPLIT_READS,
)
