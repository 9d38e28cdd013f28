"""``check`` against a hostile server: control characters in every place. Every report
is still written, well-formed, and shows them escaped, in one visible form."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from tests.conformance.hostile import serving
from tests.conformance.test_cli import SMALL

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
