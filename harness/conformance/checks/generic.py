"""Home-made streams (the formats tutorials teach): JSON data with a text field, and an
end the client can recognise."""

from __future__ import annotations

from collections.abc import Sequence

from harness.conformance.checks.evidence import (
    Found,
    Streams,
    found_items,
    grouped,
    of_request,
    over,
)
from harness.conformance.model import CheckFactory, Finding, Severity, Skip
from harness.conformance.reading import Digest, ReadEvent, Suite
from harness.dialects import DeltaKind

__all__ = ["CHECKS", "GenericDigest"]

GENERIC = frozenset({"generic"})
GENERIC_OR_TEXT = frozenset({"generic", "text"})


class GenericDigest(Digest):
    """What the generic checks keep of a stream: its events that do not parse as JSON
    (``fails``), and those with raw text or no text field the harness knows (``warns``)."""

    dialects = GENERIC

    def __init__(self, suite_dialect: str | None) -> None:
        super().__init__(suite_dialect)
        self.fails = Found()
        self.warns = Found()

    def event(self, event: ReadEvent) -> None:
        kinds = event.kinds()
        if event.error is not None:
            self.fails.add("an event's data looks like JSON but does not parse", event.spot)
        elif event.payload() is None and DeltaKind.DONE not in kinds:
            message = (
                "raw text in data, not JSON: a token holding a line end breaks "
                "the framing, and leading spaces are easy to lose"
            )
            self.warns.add(message, event.spot)
        elif kinds == {DeltaKind.IGNORABLE} and event.event.type == "message":
            message = (
                "an event with no text field the harness knows (content, text, "
                "delta, token): give --pointer, or name the field so"
            )
            self.warns.add(message, event.spot)


def _streams(suite: Suite) -> Streams | Skip:
    streams = tuple(r for r in suite.streams if r.dialect in GENERIC_OR_TEXT)
    return streams or Skip("no generic stream was received")


@over(_streams)
def _json_text(streams: Streams) -> Sequence[Finding] | Skip:
    digests = [(r, r.digest(GenericDigest)) for r in streams if r.framing == "sse"]
    fails = found_items((r, d.fails) for r, d in digests)
    warns = found_items((r, d.warns) for r, d in digests)
    return grouped(JSON_TEXT, fails) + grouped(JSON_TEXT, warns, Severity.WARN)


@over(_streams)
def _terminator(streams: Streams) -> Sequence[Finding] | Skip:
    sse = [
        (r, r.result) for r in streams if r.framing == "sse" and r.complete and r.result is not None
    ]
    if not sse:
        return Skip("a text/plain stream has no terminator to send")
    items = [
        (
            "the stream ends without a terminator ([DONE] or a done/complete event): a client "
            "cannot tell a finished answer from a dropped connection",
            of_request(r),
        )
        for r, result in sse
        if not result.done and result.error is None
    ]
    return grouped(TERMINATOR, items)


check = CheckFactory("generic", GENERIC)

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
JSON_TEXT = check("generic.json-text", Severity.FAIL, "JSON data with a text field",
                  "JSON survives any token text; raw text in data lines does not", _json_text)
TERMINATOR = check("generic.terminator", Severity.WARN, "an end marker",
                   "only an explicit end tells a complete answer from a connection that dropped",
                   _terminator)
# fmt: on

CHECKS = (JSON_TEXT, TERMINATOR)
