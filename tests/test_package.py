"""The package's public surface, its command line, its import layers and its lint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness import dialects
from harness.dialects import Delta, DeltaKind, Read
from harness.sse import Event

ROOT = Path(__file__).resolve().parent.parent


def test_the_dialects_surface_is_sorted_and_every_name_exists() -> None:
    # the package's own surface is pinned in tests/test_public_api.py
    assert dialects.__all__ == sorted(dialects.__all__)
    for name in dialects.__all__:
        assert hasattr(dialects, name), name


def test_the_value_types_are_immutable_and_compare_by_value() -> None:
    event = Event("message", "hi", "7", None)
    delta = Delta(kind=DeltaKind.CONTENT, text="hi")
    read = Read(event, (delta,), True)
    assert event == Event(data="hi", id="7") != Event(data="hi")
    assert hash(event) == hash(Event(data="hi", id="7"))
    assert delta == Delta(kind=DeltaKind.CONTENT, text="hi", choice=0)
    assert hash(delta) == hash(Delta(kind=DeltaKind.CONTENT, text="hi"))
    assert read == Read(event=event, deltas=(delta,), token=True, terminator=False)
    assert repr(event) == "Event(type='message', data='hi', id='7', retry=None)"
    assert repr(read).startswith("Read(event=Event(type='message', data='hi'")
    for value, name in ((event, "data"), (delta, "text"), (read, "token")):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(value, name, getattr(value, name))
    with pytest.raises(TypeError):
        Delta(DeltaKind.CONTENT, "hi")  # type: ignore[misc]
    match read:
        case Read(Event(type="message", data=data), (Delta(kind=DeltaKind.CONTENT),), True):
            assert data == "hi"
        case _:
            pytest.fail(f"{read!r} does not match its own fields")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip


def test_cli_help_lists_the_subcommands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "decode" in result.stdout
    assert "bench" in result.stdout


def test_cli_version() -> None:
    result = run_cli("--version")
    assert result.stdout.strip() == f"sse-harness {harness.__version__}"


def test_cli_without_a_command_shows_help_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage:" in result.stdout


def test_cli_unreadable_file_is_a_clear_usage_error() -> None:
    result = run_cli("decode", "/nonexistent/body.sse")
    assert result.returncode == 2
    assert "cannot read /nonexistent/body.sse" in result.stderr


def test_import_layers_hold() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint_imports, "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is part of the test extra and must be installed")
    result = subprocess.run(
        [ruff, "check", "--quiet", "."], capture_output=True, text=True, cwd=ROOT, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    mypy = shutil.which("mypy") or str(Path(sys.executable).parent / "mypy")
    if not Path(mypy).exists():
        pytest.fail("mypy is part of the test extra and must be installed")
    result = subprocess.run(
        [mypy], capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_decode_prints_the_summary_as_json() -> None:
    result = run_cli("decode", "tests/dialects/fixtures/openai_chat_basic.sse")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dialect"] == "openai-chat"
    assert summary["done_sentinel"] is True
    assert summary["text"]
