"""Scenario files read by ``sse-harness locust``: the keys with a locust meaning become
locust's options, flags override them, the others are refused by file, line and key.
(No locust process here: the command's parsing only.)"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.cli.locust_command import _own_parser
from harness.cli.locust_scenario import parse_command, timespan
from harness.errors import ConfigError


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    return parse_command(argv, _own_parser())


def scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "load.toml"
    path.write_text(text)
    return path


def test_the_keys_with_a_locust_meaning_become_locusts_options(tmp_path: Path) -> None:
    path = scenario(tmp_path, """
[target]
url = "http://127.0.0.1:9"
model = "m"
max-tokens = 7
[workload]
prefix-groups = 2
prefix-tokens = 30
prefix-cache-bust = true
input-tokens = "uniform:5,9"
[load]
concurrency = 4
spawn-rate = 2
duration = 90
headless = true
seed = 3
workers = 2
[mock]
mock-ttft-ms = 7
""")  # fmt: skip
    own, locust = _parse([str(path), "--loglevel", "INFO"])
    assert own.host == "http://127.0.0.1:9"  # passed by the command itself
    assert (own.workers, own.mock_ttft_ms) == (2, 7.0)  # the command's own
    assert locust == [
        "--model", "m", "--max-tokens", "7", "--input-tokens", "uniform:5,9",
        "--prefix-groups", "2", "--prefix-tokens", "30", "--prefix-cache-bust",
        "--seed", "3", "--users", "4", "--spawn-rate", "2.0", "--run-time", "90s",
        "--headless", "--loglevel", "INFO",
    ]  # fmt: skip


def test_flags_override_the_file_in_locusts_spelling(tmp_path: Path) -> None:
    path = scenario(tmp_path, "concurrency = 4\nduration = 90\nmodel = 'a'\n")
    own, locust = _parse(["--config", str(path), "-u", "9", "-t", "1m", "--model", "b"])
    assert (own.users, own.run_time, own.model) == (9, "1m", "b")
    assert locust == ["--model", "b", "--users", "9", "--spawn-rate", "9.0", "--run-time", "1m"]


def test_a_files_users_start_at_once_unless_it_gives_a_spawn_rate(tmp_path: Path) -> None:
    _, locust = _parse([str(scenario(tmp_path, "concurrency = 6\n"))])
    assert locust == ["--users", "6", "--spawn-rate", "6.0"]
    _, locust = _parse([str(scenario(tmp_path, "concurrency = 6\n")), "-r", "2"])
    assert locust == ["--users", "6", "--spawn-rate", "2.0"]


def test_without_a_file_the_command_line_passes_as_it_was_given() -> None:
    own, locust = _parse(["--headless", "-u", "2", "-f", "mine.py", "--host", "http://h"])
    assert own.config is None
    assert own.host == "http://h"
    assert locust == ["--users", "2", "--headless", "-f", "mine.py"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("concurrency = 2\nrate = 5\n", 2, "rate: a setting of sse-harness run with no meaning"),
        ("[load]\nrequests = 5\n", 2, "requests: a setting of sse-harness run"),
        ("[slo]\nttft = 0.5\n", 2, "ttft: an SLO target has no meaning for sse-harness locust"),
        ("concurency = 2\n", 1, "concurency: unknown setting; did you mean 'concurrency'?"),
        ("duration = 2.5\n", 1, "duration: not a valid value"),
        ("dataset-format = 'xml'\n", 1, "dataset-format: must be one of"),
    ],
)
def test_a_key_without_a_locust_meaning_is_refused_by_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = scenario(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        _parse([str(path)])
    assert str(caught.value).startswith(f"{path}:{line}: {message}")


@pytest.mark.parametrize(("text", "value"), [("30", "30s"), ("1h2m", "1h2m"), ("5s", "5s")])
def test_durations_take_seconds_or_locusts_spans(text: str, value: str) -> None:
    assert timespan(text) == value


@pytest.mark.parametrize("text", ["0", "2.5", "soon", ""])
def test_impossible_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="seconds"):
        timespan(text)


def test_the_shared_example_reads_under_both_commands() -> None:
    from harness.cli.run_options import run_parser
    from harness.cli.scenario_file import load_scenario

    example = Path(__file__).resolve().parents[2] / "examples" / "load-dataset.toml"
    values, _ = load_scenario(example, run_parser())
    own, locust = _parse([str(example)])
    assert (values["concurrency"], own.users) == (4, 4)
    assert own.dataset == values["dataset"] == example.parent / "data" / "conversations.json"
    assert locust[locust.index("--run-time") + 1] == "10s"
