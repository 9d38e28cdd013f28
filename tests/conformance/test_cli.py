"""``sse-harness check``: the table, the files, and the exit codes (0 no FAIL, 1 a FAIL,
2 bad usage or an unreachable target)."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.servers.embedded import EmbeddedMock

pytestmark = pytest.mark.slow  # `sse-harness check` against the mock

SMALL = [
    "--streams",
    "1",
    "--max-tokens",
    "8",
    "--long-tokens",
    "24",
    "--burst",
    "3",
    "--disconnect-wait",
    "2",
]


def test_a_clean_mock_exits_0_and_writes_every_format(
    mock: EmbeddedMock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {name: tmp_path / f"check.{name}" for name in ("json", "junit", "markdown")}
    code = main(
        [
            "check",
            mock.base_url,
            *SMALL,
            "--header",
            "Authorization: Bearer sk-topsecret",
            "--json",
            str(files["json"]),
            "--junit",
            str(files["junit"]),
            "--markdown",
            str(files["markdown"]),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "http.status" in out
    assert "disconnect.stops" in out
    assert "PASS: 0 FAIL" in out
    document = json.loads(files["json"].read_text())
    assert document["passed"] is True
    cases = ET.fromstring(files["junit"].read_text()).findall("testsuite/testcase")
    assert len(cases) == len(document["checks"])
    assert "| http | `http.status` | pass |" in files["markdown"].read_text()
    written = out + "".join(path.read_text() for path in files.values())
    assert "sk-topsecret" not in written


def test_a_faulty_target_exits_1_with_the_evidence(
    mock: EmbeddedMock, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", mock.base_url, *SMALL, "--header", "X-Mock-Fault: malformed_json@2"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL openai.json" in out
    assert "stream-1 @ byte" in out  # where it is
    assert "FAIL: " in out


def test_an_unreachable_target_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["check", f"http://127.0.0.1:{port}", *SMALL, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unreachable" in err
    assert f"127.0.0.1:{port}" in err


def test_a_target_that_never_answers_exits_2_after_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:  # listens, so connections queue, but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        code = main(["check", url, *SMALL, "--timeout", "1", "--quiet"])
    assert code == 2
    assert "no response headers within 1 s" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["ftp://example.com/x"], "url: expected an http:// or https:// URL"),
        (
            ["http://127.0.0.1:9", "--metrics-url", "http://127.0.0.1:9/metrics"],
            "give --metrics-url and --metrics-gauge together",
        ),
        (
            ["http://127.0.0.1:9", "--server-metrics", "http://127.0.0.1:9/metrics"],
            "no recognised server's gauge of running requests at http://127.0.0.1:9/metrics",
        ),
        (["http://127.0.0.1:9", "--burst", "1"], "burst"),
        (["http://127.0.0.1:9", "--header", "no-colon"], "expected NAME:VALUE"),
    ],
)
def test_bad_usage_exits_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_the_dialect_chooses_the_request_when_none_is_given(
    mock: EmbeddedMock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "check.json"
    code = main(
        ["check", mock.base_url, *SMALL, "--dialect", "anthropic", "--quiet", "--json", str(report)]
    )
    assert code == 0, capsys.readouterr().out
    document = json.loads(report.read_text())
    assert document["request"] == "anthropic"
    assert document["target"].endswith("/v1/messages")
    assert any(c["id"] == "anthropic.event-order" for c in document["checks"])
