"""The JavaScript replay: captured reads through eventsource-parser and the openai npm
package, against the WHATWG parse.

The judging half is tested on hand-made replays (no Node); the replay itself runs where
Node.js and the pinned packages are installed, and always in CI, which installs them.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from harness.conformance import replay_js
from harness.conformance.catalogue import CATALOGUE
from harness.conformance.model import (
    Check,
    CheckResult,
    Finding,
    Passed,
    Report,
    Severity,
    Skip,
    Status,
)
from harness.conformance.reading import Reading, read_suite
from harness.conformance.replay_js import (
    EVENTSOURCE_PARSER,
    JS_EVENTSOURCE_PARSER,
    JS_OPENAI,
    OPENAI,
    ClientRead,
    Replayed,
    Runtime,
    compare,
    find_runtime,
    replay,
)
from harness.servers.embedded import EmbeddedMock
from harness.sse import encode
from tests.conformance.builders import SSE_HEADERS, captured, chat_stream, exchange, run
from tests.conformance.conftest import check, findings_text, statuses

#: The example of the bare-CR fault: two events, each ended by CR CR.
BARE_CR = b"data: a\r\rdata: b\r\r"
MISSING = [
    runtime.reason
    for runtime in (find_runtime(EVENTSOURCE_PARSER), find_runtime(OPENAI))
    if isinstance(runtime, Skip)
]
#: Skipped where Node or the packages are missing, except in CI, which installs them.
needs_node = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("CI"), reason=MISSING[0] if MISSING else ""
)


def _reading(*reads: bytes, headers: tuple[tuple[str, str], ...] = SSE_HEADERS) -> Reading:
    return read_suite(captured(exchange(list(reads), headers=headers))).readings[0]


def _runtime(client: str) -> Runtime:
    runtime = find_runtime(client)
    assert not isinstance(runtime, Skip), runtime.reason
    return runtime


def _compare(check: Check, client: str, reading: Reading, read: ClientRead) -> list[Finding]:
    """The findings of ``check`` when ``client`` made ``read`` of ``reading`` (none when
    it passed)."""
    replayed = Replayed(client=client, version="9.9.9", node="20.0.0", reads={"stream-1": read})
    outcome = compare(check, [reading], replayed)
    return [] if isinstance(outcome, Passed) else list(outcome)


def _data(events: list[bytes]) -> tuple[tuple[str, str], ...]:
    """The events encoded by ``harness.sse.encode``, as a client should read them."""
    return _events(*(e.removeprefix(b"data: ").removesuffix(b"\n\n").decode() for e in events))


def _events(*data: str) -> tuple[tuple[str, str], ...]:
    return tuple(("message", d) for d in data)


# The judging half, on hand-made replays: no Node.


def test_the_same_events_pass_with_the_client_and_its_version_in_the_note() -> None:
    read = ClientRead(events=_events("a", "b"), count=2)
    replayed = Replayed(client=EVENTSOURCE_PARSER, version="3.1.1", node="20.1.0",
                        reads={"stream-1": read})  # fmt: skip
    outcome = compare(JS_EVENTSOURCE_PARSER, [_reading(BARE_CR)], replayed)
    assert outcome == Passed(
        "eventsource-parser 3.1.1 (Node.js 20.1.0) read 1 stream as the WHATWG parse does"
    )


def test_a_lost_event_is_a_warning_at_its_bytes() -> None:
    read = ClientRead(events=_events("a"), count=1)
    (finding,) = _compare(JS_EVENTSOURCE_PARSER, EVENTSOURCE_PARSER, _reading(BARE_CR), read)
    assert finding.severity is Severity.WARN
    assert finding.message == "eventsource-parser 9.9.9 reads other events than the WHATWG parse"
    (evidence,) = finding.evidence
    assert evidence.offset == BARE_CR.index(b"data: b")
    assert evidence.excerpt == b"data: b\r\r"
    assert evidence.detail == (
        "eventsource-parser dispatched 1 events, WHATWG 2; the first it lost is event 2, 'b'"
    )


def test_a_different_event_names_both_and_an_extra_one_is_counted() -> None:
    reading = _reading(b"event: x\ndata: a\n\ndata: b\n\n")
    other = ClientRead(events=(("message", "a"), ("message", "b")), count=2)
    extra = ClientRead(events=(("x", "a"), ("message", "b"), ("message", "")), count=3)
    (different,) = _compare(JS_OPENAI, OPENAI, reading, other)
    assert different.evidence[0].offset == 0
    assert different.evidence[0].detail.startswith("event 1: WHATWG event 'x' data 'a', openai 'a'")
    (more,) = _compare(JS_OPENAI, OPENAI, reading, extra)
    assert more.evidence[0].offset is None
    assert more.evidence[0].detail == "openai dispatched 3 events, WHATWG 2; the first extra is ''"


def test_a_lost_finish_reason_is_named_in_the_evidence() -> None:
    events = chat_stream(("a", "b"), finish="length", done=False)
    read = ClientRead(events=_data(events[:-1]), count=len(events) - 1)
    (finding,) = _compare(JS_EVENTSOURCE_PARSER, EVENTSOURCE_PARSER, _reading(*events), read)
    assert finding.evidence[0].detail.endswith("; it carries the finish reason 'length'")


def test_the_openai_client_is_judged_on_its_text_finish_reason_and_what_it_throws() -> None:
    events = chat_stream(("a", "b"), finish="length")
    reading = _reading(*events)
    same = _data(events)
    reads = {
        "ok": ClientRead(events=same, count=len(same), text="ab", finish_reason="length"),
        "text": ClientRead(events=same, count=len(same), text="a", finish_reason="length"),
        "finish": ClientRead(events=same, count=len(same), text="ab", finish_reason="stop"),
        "throws": ClientRead(events=same, count=len(same), client_error="TypeError: x"),
    }
    found = {
        label: [f.message for f in _compare(JS_OPENAI, OPENAI, reading, read)]
        for label, read in reads.items()
    }
    assert found == {
        "ok": [],
        "text": ["openai 9.9.9's client rebuilds a different text"],
        "finish": ["openai 9.9.9's client reports another finish reason"],
        "throws": ["openai 9.9.9's client throws"],
    }


def test_the_error_a_stream_sent_may_be_thrown_but_no_other() -> None:
    error = encode(json.dumps({"error": {"message": "overloaded", "type": "server_error"}}))
    events = [*chat_stream(("a",), finish=None, done=False), error]
    reading = _reading(*events)
    assert reading.result is not None
    assert reading.result.error is not None
    api_error = ClientRead(events=_data(events), count=len(events), client_error="APIError: x")
    type_error = ClientRead(events=_data(events), count=len(events), client_error="TypeError: x")
    assert _compare(JS_OPENAI, OPENAI, reading, api_error) == []
    (finding,) = _compare(JS_OPENAI, OPENAI, reading, type_error)
    assert finding.evidence[0].detail == "TypeError: x"


# Without Node, without the packages, and when Node fails: a skip that says why.


def test_without_node_the_checks_skip_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_js.shutil, "which", lambda name: None)
    suite = captured(exchange(chat_stream()))
    for check_id in ("sdk.js-eventsource-parser", "sdk.js-openai"):
        result = run(check_id, suite)
        assert result.status is Status.SKIP
        assert result.note == "Node.js is not installed (no node on the PATH)"


def test_without_the_packages_the_checks_skip_and_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(replay_js.shutil, "which", lambda name: "node")
    monkeypatch.setenv(replay_js.PACKAGES_ENV, str(tmp_path))
    result = run("sdk.js-eventsource-parser", captured(exchange(chat_stream())))
    assert result.status is Status.SKIP
    assert result.note.startswith(
        f"the npm package eventsource-parser is not installed in {tmp_path} "
        f"({replay_js.PACKAGES_ENV}): run `npm ci` there"
    )


def _fake_node(tmp_path: Path, script: str) -> Runtime:
    node = tmp_path / "node"
    node.write_text("#!/bin/sh\n" + script + "\n")
    node.chmod(node.stat().st_mode | stat.S_IXUSR)
    return Runtime(str(node), tmp_path)


def test_a_node_that_fails_or_hangs_is_a_skip_with_its_reason(tmp_path: Path) -> None:
    readings = [_reading(BARE_CR)]
    failing = _fake_node(tmp_path, "echo 'SyntaxError: no such thing' >&2; exit 1")
    outcome = replay(readings, EVENTSOURCE_PARSER, runtime=failing)
    assert outcome == Skip(
        "the replay through eventsource-parser failed: SyntaxError: no such thing"
    )
    hanging = _fake_node(tmp_path, "exec sleep 30")
    outcome = replay(readings, EVENTSOURCE_PARSER, runtime=hanging, timeout_s=0.3)
    assert outcome == Skip("the replay through eventsource-parser took longer than 0.3 s")
    garbled = _fake_node(tmp_path, "echo '{not json'")
    outcome = replay(readings, EVENTSOURCE_PARSER, runtime=garbled)
    assert isinstance(outcome, Skip)
    assert outcome.reason.startswith("the replay through eventsource-parser printed what cannot")


def test_the_packages_are_pinned_exactly_and_locked() -> None:
    here = replay_js.SCRIPT.parent
    wanted = json.loads((here / "package.json").read_text())["dependencies"]
    locked = json.loads((here / "package-lock.json").read_text())["packages"]
    assert set(wanted) == {EVENTSOURCE_PARSER, OPENAI}
    for name, version in wanted.items():
        assert version[0].isdigit(), f"{name} {version}: a range, not a pin"
        assert locked[f"node_modules/{name}"]["version"] == version


def test_the_checks_are_in_the_catalogue_after_the_python_sdks() -> None:
    ids = [c.id for c in CATALOGUE]
    assert ids.index("sdk.anthropic") < ids.index("sdk.js-eventsource-parser")
    assert ids.index("sdk.js-eventsource-parser") + 1 == ids.index("sdk.js-openai")


# The replay itself, through Node.


@needs_node
def test_bare_cr_loses_the_last_event_in_eventsource_parser_not_in_openai() -> None:
    readings = [_reading(BARE_CR, headers=(("content-type", "text/event-stream"),))]
    parser = replay(readings, EVENTSOURCE_PARSER, runtime=_runtime(EVENTSOURCE_PARSER))
    openai = replay(readings, OPENAI, runtime=_runtime(OPENAI))
    assert isinstance(parser, Replayed), parser
    assert isinstance(openai, Replayed), openai
    assert parser.reads["stream-1"].events == _events("a")  # WHATWG: a and b
    assert openai.reads["stream-1"].events == _events("a", "b")


@needs_node
def test_the_reads_are_replayed_one_by_one_and_unfinished_events_are_dropped() -> None:
    reads = (b"data: a\r", b"\ndata: b\r\n", b"\r\n", b"data: c")
    readings = [_reading(*reads)]
    for client in (EVENTSOURCE_PARSER, OPENAI):
        replayed = replay(readings, client, runtime=_runtime(client))
        assert isinstance(replayed, Replayed), replayed
        assert replayed.reads["stream-1"].events == _events("a\nb"), client
        assert replayed.reads["stream-1"].count == 1


def _result(report: Report, check_id: str) -> CheckResult:
    return next(r for r in report.results if r.check.id == check_id)


@needs_node
@pytest.mark.slow
@pytest.mark.parametrize(
    ("request_kind", "lost"),
    [
        ("openai-chat", "'[DONE]'; it ends the stream"),
        ("openai-responses", "it carries the finish reason 'max_output_tokens'"),
        ("anthropic", "event 'message_stop'"),
    ],
)
def test_the_mock_s_bare_cr_fault_is_flagged_by_eventsource_parser_with_evidence(
    mock: EmbeddedMock, request_kind: str, lost: str
) -> None:
    report = check(mock.base_url, request=request_kind, headers=(("X-Mock-Fault", "cr"),))
    found = statuses(report)
    assert found["sdk.js-eventsource-parser"] == "WARN", findings_text(report)
    if request_kind != "anthropic":
        assert found["sdk.js-openai"] == "pass", findings_text(report)
    (finding,) = _result(report, "sdk.js-eventsource-parser").findings
    assert finding.message.startswith("eventsource-parser 3.1.1 reads other events")
    evidence = finding.evidence[0]
    assert evidence.request == "stream-1"
    assert "the first it lost is event" in evidence.detail
    assert lost in evidence.detail
    assert evidence.excerpt is not None
    assert b"\r" in evidence.excerpt
    assert b"\n" not in evidence.excerpt


@needs_node
@pytest.mark.slow
@pytest.mark.parametrize("request_kind", ["openai-chat", "openai-completions", "openai-responses"])
def test_a_clean_stream_passes_both_javascript_clients(
    mock: EmbeddedMock, request_kind: str
) -> None:
    report = check(mock.base_url, request=request_kind)
    for check_id in ("sdk.js-eventsource-parser", "sdk.js-openai"):
        result = _result(report, check_id)
        assert result.status is Status.PASS, findings_text(report)
        assert "as the WHATWG parse does" in result.note
