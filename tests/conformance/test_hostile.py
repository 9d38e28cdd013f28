"""``check`` against a hostile server: a flood of tiny events, control characters in every
place, JSON nested too deeply, its secrets echoed back, and checks that raise. Every
report is still written, well-formed and free of secrets, and memory stays bounded."""

from __future__ import annotations

import dataclasses
import json
import re
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.conformance import catalogue
from harness.conformance.captured import Purpose
from harness.conformance.catalogue import CATALOGUE, judge
from harness.conformance.checks.framing import FramingDigest
from harness.conformance.model import Status
from harness.conformance.reading import ReadEvent
from harness.conformance.redaction import Redactor
from harness.servers.embedded import EmbeddedMock
from harness.sse import encode
from tests.conformance.builders import captured, chat_stream, chunk, exchange, run
from tests.conformance.hostile import serving
from tests.conformance.test_cli import SMALL

pytestmark = pytest.mark.slow  # the checker against real servers

KEY = "sk-hostile-test-key-0123456789abcdef"
TEAM = "team-token-abcdefghijklmnop"
#: Raw control characters: C0 but tab, line feed and carriage return, DEL, C1.
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def run_check(url: str, tmp_path: Path, *extra: str) -> tuple[int, dict[str, str]]:
    """``sse-harness check`` with every report file; its exit code and every output."""
    files = {name: tmp_path / f"check.{name}" for name in ("json", "junit", "markdown")}
    arguments = [f"--{name}={path}" for name, path in files.items()]
    code = main(["check", url, *SMALL, *arguments, *extra])
    return code, {name: path.read_text(encoding="utf-8") for name, path in files.items()}


def strings(value: Any) -> list[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(encode("x"), id="one-byte-events"),
        pytest.param(chat_stream(["x"])[1], id="chat-chunks"),
    ],
)
def test_judging_keeps_bounded_state_however_many_events(event: bytes) -> None:
    events = 10_000
    body = event * events + encode("[DONE]")
    reads = [body[start : start + 4096] for start in range(0, len(body), 4096)]
    suite = captured(
        *(exchange(reads, label=f"stream-{n}", times_ns=range(len(reads))) for n in range(1, 4)),
        exchange(reads, label="long", purpose=Purpose.LONG, times_ns=range(len(reads))),
    )
    received = 4 * len(body)
    ours = [c for c in CATALOGUE if c.area != "sdk"]  # the SDKs' replay is theirs to bound
    tracemalloc.start()
    try:
        report = judge(suite, checks=ours)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.results
    assert not [r.check.id for r in report.results if r.status is Status.ERROR]
    # an object kept per event costs hundreds of bytes an event: tens of times the body
    assert peak < 6 * received, f"{peak:,} bytes at the peak for {received:,} bytes received"


def test_a_flood_of_tiny_events_is_judged_to_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving("tiny", events=20_000) as url:
        code, files = run_check(url, tmp_path, "--quiet")
    document = json.loads(files["json"])
    found = {c["id"]: c for c in document["checks"]}
    assert code == 1, capsys.readouterr().out
    assert document["dialect"] == "generic"
    assert found["generic.json-text"]["status"] == "WARN"  # raw text in data
    assert len(found["generic.json-text"]["findings"][0]["evidence"]) == 3
    assert found["framing.no-events"]["status"] == "pass"


def test_control_characters_never_reach_an_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving("controls", events=1) as url:
        _, files = run_check(url, tmp_path)
    shown = {"terminal": capsys.readouterr().out, **files}
    for name, text in shown.items():
        assert not CONTROLS.search(text), f"a raw control character in the {name} output"
    visible = "\\x1b[31m\\x00\\x07\\x9b2J"  # what the server sent, in one visible form
    assert visible in shown["terminal"]
    assert visible in shown["markdown"]
    assert visible in shown["junit"]
    assert any(visible in text for text in strings(json.loads(shown["json"])))
    ET.fromstring(shown["junit"])  # well-formed XML


def test_json_nested_too_deeply_is_a_finding_and_every_output_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving("deep", events=100_000) as url:
        code, files = run_check(url, tmp_path, "--quiet")
    assert code == 1, capsys.readouterr()
    document = json.loads(files["json"])
    found = {c["id"]: c for c in document["checks"]}
    assert found["openai.json"]["status"] == "FAIL"
    assert found["openai.json"]["findings"][0]["evidence"][0]["excerpt"].startswith("data: [[[")
    assert not [c["id"] for c in document["checks"] if c["status"] == "error"]
    ET.fromstring(files["junit"])
    assert "openai.json" in files["markdown"]


def test_tool_arguments_nested_too_deeply_are_not_json() -> None:
    first = {"index": 0, "id": "call_1", "function": {"name": "get", "arguments": ""}}
    deep = {"index": 0, "function": {"arguments": "[" * 100_000}}
    stream = [
        chunk({"role": "assistant", "tool_calls": [first]}),
        chunk({"tool_calls": [deep]}),
        chunk({}, "tool_calls"),
        encode("[DONE]"),
    ]
    result = run("openai.tool-call-json", captured(exchange(stream)))
    assert result.status is Status.FAIL
    message = "tool call 0 (get): its argument fragments do not join into JSON"
    assert result.findings[0].message == message
    assert len(result.findings[0].evidence[0].detail or "") == 120


def test_values_from_a_payload_are_shown_bounded_however_long_or_deep() -> None:
    events = chat_stream()
    deep: Any = []
    for _ in range(50):
        deep = [deep]
    odd = chunk({"content": "!"}, object=deep, id="x" * 10_000)
    report = judge(captured(exchange([events[0], odd, *events[1:]])))
    found = {r.check.id: r for r in report.results}
    fields = [f.message for f in found["openai.chunk-fields"].findings]
    assert "chunk 'object' is [[[[...]]]], not 'chat.completion.chunk'" in fields
    identity = found["openai.same-identity"].findings[0].evidence[0].detail or ""
    assert identity == f"id 'chatcmpl-1' -> '{'x' * 27}...{'x' * 28}'"
    assert max(len(f.message) for r in report.results for f in r.findings) < 200
    assert len(identity) < 200


def failing(message: str) -> Callable[[Any], Any]:
    def run(suite: Any) -> Any:
        raise RuntimeError(message)

    return run


def test_a_check_that_raises_is_its_own_error_and_the_others_still_judge(
    mock: EmbeddedMock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tuple(
        dataclasses.replace(c, run=failing("boom")) if c.id == "openai.done" else c
        for c in catalogue.CATALOGUE
    )
    monkeypatch.setattr(catalogue, "CATALOGUE", broken)
    code, files = run_check(mock.base_url, tmp_path)
    out = capsys.readouterr().out
    assert code == 1  # a check that could not judge does not pass
    assert "error openai.done" in out
    assert "RuntimeError: boom" in out
    document = json.loads(files["json"])
    statuses = {c["id"]: c["status"] for c in document["checks"]}
    assert statuses.pop("openai.done") == "error"
    assert document["counts"]["error"] == 1
    assert set(statuses.values()) <= {"pass", "skip", "INFO"}  # the clean mock otherwise
    suite = ET.fromstring(files["junit"]).find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"
    case = next(c for c in suite.findall("testcase") if c.get("name") == "openai.done")
    assert "RuntimeError: boom" in (case.find("error").get("message") or "")  # type: ignore[union-attr]
    assert "- **error** `openai.done`" in files["markdown"]


def test_a_digest_that_raises_makes_an_error_of_its_checks_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def event(self: FramingDigest, event: ReadEvent) -> None:
        raise ValueError("no digest today")

    monkeypatch.setattr(FramingDigest, "event", event)
    report = judge(captured(exchange(chat_stream())))
    statuses = {r.check.id: r.status for r in report.results}
    assert statuses["framing.after-terminator"] is Status.ERROR
    assert statuses["framing.split-reads"] is Status.ERROR
    assert statuses["framing.utf8"] is Status.PASS  # it reads the body, not the digest
    assert statuses["openai.done"] is Status.PASS


def pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_secrets_echoed_from_every_place_never_reach_an_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTILE_TEST_KEY", KEY)
    with serving("echo", events=1) as url:
        result = run_check(
            url + "/v1/chat/completions",
            tmp_path,
            "--api-key-env",
            "HOSTILE_TEST_KEY",
            "--header",
            f"X-Team-Token: {TEAM}",
        )
    shown = {"terminal": capsys.readouterr().out, **result[1]}
    for name, text in shown.items():
        leaked = [p for p in pieces(KEY) | pieces(TEAM) if p in text]
        assert not leaked, f"the {name} output shows {leaked[:3]}"
    document = json.loads(shown["json"])
    found = {c["id"]: c for c in document["checks"]}
    # the server's echoes were judged, and shown redacted
    assert "[redacted]" in found["http.cache-control"]["findings"][0]["message"]
    assert "[redacted]" in json.dumps(found["errors.error-body"])  # the error body
    assert "[redacted]" in json.dumps(found["errors.in-stream"])  # the in-stream error
    assert "[redacted]" in json.dumps(found["openai.json"])  # the broken event's excerpt
    streams = [r for r in document["requests"] if r["status"] == 200]
    assert streams
    assert all("[redacted]" in r["content_type"] for r in streams)  # a response header


def test_a_secret_cut_by_a_bound_is_hidden_by_its_pieces() -> None:
    redactor = Redactor([KEY, "short"])
    cut = f"quota exceeded for {KEY[:12]}"  # an excerpt's end cut the key
    assert redactor.text(cut) == "quota exceeded for [redacted]"
    assert redactor.text(f"{KEY[-9:]} ends it") == "[redacted] ends it"
    assert redactor.text("a short note, sho") == "a [redacted] note, sho"  # whole only
    assert redactor.data(b"\xff" + KEY.encode() + b"\xfe") == b"\xff[redacted]\xfe"
    assert redactor.text(KEY[:7]) == KEY[:7]  # too short a piece to tell from chance
