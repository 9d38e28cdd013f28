"""JavaScript clients' verdict: the captured streams replayed through ``eventsource-parser``
(the parser under the Vercel AI SDK) and the ``openai`` npm package, where Node.js and the
packages are installed.

Browser and Node front-ends are most of the SSE clients in use, and they do not share the
Python clients' parsers. A Node program shipped beside this module (``js/replay.mjs``, its
packages pinned by ``js/package-lock.json``) gets each complete event stream as it was
captured, status, headers and body in the very reads it arrived in, feeds the reads to a
client one by one, and prints the events the client dispatched (and, for ``openai``, the
text and finish reason its client rebuilt). The checks compare those events with the WHATWG
parse (``harness.sse``, through ``read_events``) and point at the first event that differs.

Two steps, as in ``harness.conformance.replay``: ``replay`` runs Node (a subprocess with a
bounded time), and ``compare`` judges what it printed, a pure function. Without Node or the
packages the checks skip and say what is missing.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.conformance.checks.evidence import at_event, grouped, of_request
from harness.conformance.events import ReadEvent, read_events
from harness.conformance.model import (
    SSE_DIALECTS,
    Check,
    CheckFactory,
    Evidence,
    Finding,
    Passed,
    Severity,
    Skip,
    brief,
)
from harness.conformance.reading import Reading, Suite
from harness.dialects import DeltaKind
from harness.sse import Decoder

__all__ = [
    "CHECKS",
    "EVENTSOURCE_PARSER",
    "OPENAI",
    "PACKAGES_ENV",
    "SCRIPT",
    "ClientRead",
    "Replayed",
    "compare",
    "find_runtime",
    "replay",
]

logger = logging.getLogger(__name__)

#: The Node program that replays the streams; its ``package.json`` is beside it.
SCRIPT = Path(__file__).with_name("js") / "replay.mjs"
#: Names a directory where ``npm ci`` was run with ``js/package.json`` (default: ``js/``).
PACKAGES_ENV = "SSE_HARNESS_JS_PACKAGES"
#: The clients ``replay.mjs`` knows, by the npm package that holds each.
EVENTSOURCE_PARSER = "eventsource-parser"
OPENAI = "openai"
#: How long one replay may take, Node's start included.
TIMEOUT_S = 60.0
#: At most this many body bytes are replayed in one run (the streams past it are not).
MAX_REPLAY_BYTES = 16 * 1024 * 1024
#: At most this many of a stream's events are compared one by one; the rest are counted.
MAX_EVENTS = 20_000
#: What ``replay.mjs`` calls each openai dialect's request.
_OPENAI_APIS = {
    "openai-chat": "chat",
    "openai-completions": "completions",
    "openai-responses": "responses",
}
_DROPPED_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRead:
    """What one JavaScript client made of one captured stream.

    Attributes:
        events: the first ``MAX_EVENTS`` events it dispatched, ``(type, data)`` each; the
            type is ``"message"`` when the stream named none, as the WHATWG parse has it.
        count: how many events it dispatched in all.
        error: what its reader threw (``"TypeError: ..."``), if it threw.
        text: the openai client only: the text of choice 0 (of a Responses stream, the
            output text) it rebuilt.
        finish_reason: the openai client only: the last finish reason it reported for
            choice 0 (of a Responses stream, its final status or incomplete reason).
        client_error: the openai client only: what it threw, if it threw.
    """

    events: tuple[tuple[str, str], ...]
    count: int
    error: str | None = None
    text: str | None = None
    finish_reason: str | None = None
    client_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Replayed:
    """One client's run over the streams of a suite.

    Attributes:
        client: the npm package.
        version: its version, as installed.
        node: the version of Node.js that ran it.
        reads: what it made of each stream, by the stream's label.
        left_out: streams not replayed, past ``MAX_REPLAY_BYTES``.
    """

    client: str
    version: str
    node: str
    reads: Mapping[str, ClientRead]
    left_out: int = 0


@dataclass(frozen=True, slots=True)
class Runtime:
    """A Node.js to run ``SCRIPT`` with, and the directory its packages are in."""

    node: str
    packages: Path


def find_runtime(client: str) -> Runtime | Skip:
    """Node.js and the installed package of ``client``, or why they cannot be had.

    The packages are looked for in the directory ``SSE_HARNESS_JS_PACKAGES`` names, else
    beside ``SCRIPT`` (where ``npm ci`` puts them when run there).
    """
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        return Skip("Node.js is not installed (no node on the PATH)")
    named = os.environ.get(PACKAGES_ENV)
    packages = Path(named) if named else SCRIPT.parent
    if not (packages / "node_modules" / client / "package.json").is_file():
        if named:
            return Skip(
                f"the npm package {client} is not installed in {packages} ({PACKAGES_ENV}): "
                f"run `npm ci` there with the package.json and package-lock.json of "
                f"{SCRIPT.parent}"
            )
        return Skip(f"the npm package {client} is not installed: run `npm ci` in {packages}")
    return Runtime(node, packages)


def _request(readings: Sequence[Reading], client: str) -> tuple[dict[str, Any], int]:
    """The JSON document ``SCRIPT`` reads, and how many streams it leaves out."""
    exchanges = []
    size = 0
    for reading in readings:
        size += len(reading.body)
        if size > MAX_REPLAY_BYTES:
            break
        exchange = reading.exchange
        exchanges.append(
            {
                "label": exchange.label,
                "api": _OPENAI_APIS.get(reading.dialect or ""),
                "status": exchange.status or 200,
                "headers": [[k, v] for k, v in exchange.headers if k not in _DROPPED_HEADERS],
                "reads": [base64.b64encode(data).decode("ascii") for _, data in exchange.chunks],
            }
        )
    request = {"clients": [client], "max_events": MAX_EVENTS, "exchanges": exchanges}
    return request, len(readings) - len(exchanges)


def _thrown(error: Any) -> str | None:
    if not error:
        return None
    return f"{error.get('name', 'Error')}: {error.get('message', '')}"


def _client_read(result: Mapping[str, Any]) -> ClientRead:
    events = tuple((kind or "message", data) for kind, data in result["events"])
    client = result.get("client") or {}
    reasons = client.get("finish_reasons") or []
    return ClientRead(
        events=events,
        count=int(result["count"]),
        error=_thrown(result.get("error")),
        text=client.get("text"),
        finish_reason=reasons[-1] if reasons else None,
        client_error=_thrown(client.get("error")),
    )


def replay(
    readings: Sequence[Reading],
    client: str,
    *,
    runtime: Runtime,
    timeout_s: float = TIMEOUT_S,
) -> Replayed | Skip:
    """Replay ``readings`` through ``client`` in Node.js: the I/O half of the checks.

    Returns:
        What the client made of each stream, or why the replay could not run (Node
        failed, ran past ``timeout_s``, or printed what cannot be read).
    """
    request, left_out = _request(readings, client)
    env = {**os.environ, PACKAGES_ENV: str(runtime.packages)}
    try:
        done = subprocess.run(
            [runtime.node, str(SCRIPT)],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Skip(f"the replay through {client} took longer than {timeout_s:g} s")
    except OSError as exc:
        return Skip(f"Node.js could not be started: {exc}")
    said = done.stderr.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0:
        logger.warning("the replay through %s failed: %s", client, "\n".join(said))
        last = said[-1] if said else f"exit status {done.returncode}"
        return Skip(f"the replay through {client} failed: {brief(last, bare=True)}")
    try:
        printed = json.loads(done.stdout)
        reads = {
            exchange["label"]: _client_read(exchange["results"][client])
            for exchange in printed["exchanges"]
        }
        return Replayed(
            client=client,
            version=printed["versions"][client] or "?",
            node=printed["node"],
            reads=reads,
            left_out=left_out,
        )
    except (ValueError, KeyError, TypeError) as exc:
        return Skip(f"the replay through {client} printed what cannot be read: {exc!r}")


def _show(event: tuple[str, str]) -> str:
    kind, data = event
    shown = brief(data)
    return shown if kind == "message" else f"event {brief(kind)} data {shown}"


def _carried(event: ReadEvent) -> str:
    """What an event meant to the answer, when it matters that a client lost it."""
    kinds = event.kinds()
    if DeltaKind.FINISH in kinds:
        reason = next(d.finish_reason for d in event.deltas if d.kind is DeltaKind.FINISH)
        return f"; it carries the finish reason {brief(reason)}"
    if DeltaKind.DONE in kinds:
        return "; it ends the stream"
    return ""


def _whatwg(reading: Reading) -> Iterator[tuple[str, str]]:
    """The stream's events as the WHATWG parse (``harness.sse``) dispatches them."""
    decoder = Decoder()
    for _, data in reading.exchange.chunks:
        for event in decoder.feed(data):
            yield event.type, event.data
    decoder.close()


def _at(reading: Reading, number: int, detail: str) -> Evidence:
    """Evidence at event ``number`` (from 0) of the WHATWG parse, with what it meant."""
    dialect, pointer, _ = reading.how
    event = next(itertools.islice(read_events(reading.exchange, dialect, pointer), number, None))
    return at_event(reading, event.spot, detail + _carried(event))


def _first_difference(reading: Reading, name: str, read: ClientRead) -> Evidence | None:
    """Evidence at the first event where ``read`` differs from the WHATWG parse (only the
    count of the events past the first ``MAX_EVENTS`` is compared)."""
    theirs = read.events
    count = 0
    first: tuple[int, tuple[str, str]] | None = None
    for number, expected in enumerate(_whatwg(reading)):
        count += 1
        if first is None and (
            number == read.count or (number < len(theirs) and theirs[number] != expected)
        ):
            first = number, expected
    counts = f"{name} dispatched {read.count} events, WHATWG {count}"
    if first is not None:
        number, expected = first
        if number < read.count:
            got = _show(theirs[number])
            detail = f"event {number + 1}: WHATWG {_show(expected)}, {name} {got}; {counts}"
        else:
            detail = f"{counts}; the first it lost is event {number + 1}, {_show(expected)}"
        return _at(reading, number, detail)
    if read.count > count:
        extra = f"; the first extra is {_show(theirs[count])}" if count < len(theirs) else ""
        return of_request(reading, counts + extra)
    return None


def compare(
    check: Check, readings: Sequence[Reading], replayed: Replayed
) -> Sequence[Finding] | Passed:
    """Judge a replay: the pure half of the checks.

    A stream whose events differ from the WHATWG parse gets a finding at the first that
    differs; so does one the client threw on and, for the openai client, one whose text
    or finish reason differs from ``harness.dialects``' (unless the stream sent an error
    and the client threw it, as it should).
    """
    name = f"{replayed.client} {replayed.version}"
    items: list[tuple[str, Evidence]] = []
    judged = 0
    for reading in readings:
        read = replayed.reads.get(reading.label)
        if read is None:
            continue
        judged += 1
        differs = _first_difference(reading, replayed.client, read)
        if differs is not None:
            items.append((f"{name} reads other events than the WHATWG parse", differs))
        if read.error is not None:
            items.append((f"{name}'s reader throws", of_request(reading, read.error[:200])))
        items += _client_items(name, reading, read)
    if items:
        return grouped(check, items)
    streams = "1 stream" if judged == 1 else f"{judged} streams"
    note = f"{name} (Node.js {replayed.node}) read {streams} as the WHATWG parse does"
    if replayed.left_out:
        note += f"; {replayed.left_out} more were past the replay's size bound"
    return Passed(note)


def _client_items(name: str, reading: Reading, read: ClientRead) -> list[tuple[str, Evidence]]:
    """What the openai client rebuilt, against ``harness.dialects``."""
    if read.text is None and read.client_error is None:
        return []  # not an openai client's read
    result = reading.result
    stream_error = result is not None and result.error is not None
    if read.client_error is not None:
        if stream_error and read.client_error.split(":")[0].endswith("APIError"):
            return []  # it threw the error the stream sent, as it should
        return [(f"{name}'s client throws", of_request(reading, read.client_error[:200]))]
    ours = result.text if result is not None else ""
    theirs = read.text or ""
    items = []
    if theirs != ours:
        detail = f"client {len(theirs)} characters, ours {len(ours)}: {brief(theirs)}"
        items.append((f"{name}'s client rebuilds a different text", of_request(reading, detail)))
    our_reason = result.finish_reason if result is not None else None
    if not stream_error and read.finish_reason != our_reason:
        detail = f"client {brief(read.finish_reason)}, ours {brief(our_reason)}"
        items.append(
            (f"{name}'s client reports another finish reason", of_request(reading, detail))
        )
    return items


def _replayable(suite: Suite, dialects: frozenset[str]) -> list[Reading]:
    """Event streams read to their end, whole (not given up on past a bound)."""
    return [
        r
        for r in suite.sse_streams
        if r.complete and r.fatal is None and r.dialect in dialects and r.body
    ]


def _replay_and_compare(
    check: Check, suite: Suite, client: str, dialects: frozenset[str]
) -> Sequence[Finding] | Skip | Passed:
    readings = _replayable(suite, dialects)
    if not readings:
        return Skip("no event stream was read to its end")
    runtime = find_runtime(client)
    if isinstance(runtime, Skip):
        return runtime
    replayed = replay(readings, client, runtime=runtime)
    if isinstance(replayed, Skip):
        return replayed
    return compare(check, readings, replayed)


def _eventsource_parser(suite: Suite) -> Sequence[Finding] | Skip | Passed:
    return _replay_and_compare(JS_EVENTSOURCE_PARSER, suite, EVENTSOURCE_PARSER, SSE_DIALECTS)


def _openai(suite: Suite) -> Sequence[Finding] | Skip | Passed:
    return _replay_and_compare(JS_OPENAI, suite, OPENAI, _OPENAI_DIALECTS)


_OPENAI_DIALECTS = frozenset(_OPENAI_APIS)

check = CheckFactory("sdk")

# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
JS_EVENTSOURCE_PARSER = check(
    "sdk.js-eventsource-parser", Severity.WARN, "eventsource-parser reads it",
    "the captured reads replayed through eventsource-parser, the parser under the Vercel AI "
    "SDK and many browser front-ends: it must dispatch the events the WHATWG parse does",
    _eventsource_parser, SSE_DIALECTS)
JS_OPENAI = check(
    "sdk.js-openai", Severity.WARN, "the openai npm package reads it",
    "the captured reads replayed through the openai npm package's stream reader and client: "
    "the same events as the WHATWG parse, the same text and finish reason",
    _openai, _OPENAI_DIALECTS)
# fmt: on

CHECKS = (JS_EVENTSOURCE_PARSER, JS_OPENAI)
