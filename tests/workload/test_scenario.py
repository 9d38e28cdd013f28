"""Scenario files: loading with errors named by file, line and key; flags over the file;
the resolved scenario written for a rerun; the shipped examples."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.cli.run_options import config_from_args, run_parser
from harness.cli.scenario_file import apply_scenario, load_scenario, located, scenario_text
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("scenario-*.toml"))


def scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def args_of(*argv: str) -> argparse.Namespace:
    args = build_parser().parse_args(list(argv))
    args.argv = list(argv)
    apply_scenario(args, run_parser())
    return args


def test_tables_group_options_and_paths_are_read_from_the_files_folder(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        '# a comment\nurl = "http://127.0.0.1:9"\n[workload]\ndataset = "data/x.json"\n'
        'output-len = "dataset"\n[load]\nconcurrency = 3\nno-self-watch = true\n'
        'prompt = ["a", "b"]\n[slo]\nttft = 0.5\ntpot = "50ms"\n',
    )
    values, where = load_scenario(path, run_parser())
    assert values == {
        "url": "http://127.0.0.1:9",
        "dataset": tmp_path / "data" / "x.json",
        "output_tokens": "dataset",
        "concurrency": 3,
        "self_watch": False,
        "prompt": ["a", "b"],
        "slo": ["ttft=0.5", "tpot=50ms"],
    }
    assert where["concurrency"] == f"{path}:7: concurrency"
    assert where["slo"] == f"{path}:12: tpot"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[load]\n\nconcurency = 2\n",
         ":3: concurency: unknown setting; did you mean 'concurrency'"),
        ('requests = "many"\n', ":1: requests: not a valid value: 'many'"),
        ("requests = 2.5\n", ":1: requests: not a valid value"),
        ('arrival = "sometimes"\n', ":1: arrival: must be one of constant, poisson, gamma"),
        ("concurrency = [1, 2]\n", ":1: concurrency: takes one value, not a list"),
        ('quiet-not = 1\nhttp2 = "yes"\n', ":1: quiet-not: unknown setting"),
        ('http2 = "yes"\n', ":1: http2: a switch: true or false"),
        ("[slo]\nttft = true\n", ":2: ttft: an SLO target is a number of seconds"),
        ("[load.more]\nrate = 1\n", "tables nest one level deep"),
        ("requests = \n", "is not valid TOML"),
        ("[[load]]\nrate = 1\n", ":1: load: an array of tables"),
        ("requests = 1979-05-27\n", ":1: requests: not a valid value"),
    ],
)  # fmt: skip
def test_a_bad_scenario_is_named_by_file_line_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = scenario(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path, run_parser())
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_flags_override_the_file_and_refused_values_name_their_line(tmp_path: Path) -> None:
    path = scenario(tmp_path, "[load]\nconcurrency = 0\nrequests = 7\nseed = 2\n")
    args = args_of("run", "--config", str(path), "--url", "http://127.0.0.1:9", "--seed", "5")
    assert (args.requests, args.seed, args.concurrency) == (7, 5, 0)
    with pytest.raises(ConfigError) as caught, located(args):
        config_from_args(args, args.url)
    assert str(caught.value) == f"{path}:2: concurrency: must be more than 0, not 0"
    fixed = args_of("run", "--config", str(path), "--url", "http://127.0.0.1:9",
                    "--concurrency", "2")  # fmt: skip
    with located(fixed):
        config, _ = config_from_args(fixed, fixed.url)
    assert config.bounds.requests == 7


def test_the_resolved_scenario_reloads_to_the_same_options(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        '[load]\nrate = 4\narrival = "poisson"\nrequests = 9\n[workload]\n'
        'input-tokens = "uniform:5,9"\nprefix-groups = 2\nprefix-tokens = 40\n'
        "prefix-cache-bust = true\n[slo]\nttft = 0.25\n",
    )
    argv = ["run", "--config", str(path), "--url", "http://127.0.0.1:9", "--header",
            "Authorization: Bearer sk-secret-value-123", "--header", "X-Fault: none"]  # fmt: skip
    args = args_of(*argv)
    text = scenario_text(args, run_parser(), secrets=("sk-secret-value-123",))
    assert "sk-secret" not in text
    assert "# header: 1 value(s) left out: they hold a secret" in text
    assert "out =" not in text
    assert "config =" not in text
    written = tmp_path / "resolved" / "scenario.toml"
    written.parent.mkdir()
    written.write_text(text)
    again = args_of("run", "--config", str(written))
    for dest in ("rate", "arrival", "requests", "input_tokens", "prefix_groups", "prefix_tokens",
                 "prefix_cache_bust", "slo", "url"):  # fmt: skip
        assert getattr(again, dest) == getattr(args, dest), dest
    assert again.header == ["X-Fault: none"]


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_an_example_runs_and_its_run_folder_reruns_it(example: Path, tmp_path: Path) -> None:
    def run(*argv: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", *argv, "--quiet",
             "--mock-ttft-ms", "2", "--mock-itl-ms", "1"],
            capture_output=True, text=True, cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads((tmp_path / argv[-1] / "summary.json").read_text())

    first = run(str(example), "--out", "first")
    second = run(str(tmp_path / "first" / "scenario.toml"), "--out", "second")
    assert first["errors"] == second["errors"] == 0
    assert first["requests"] == second["requests"] > 0
    assert (tmp_path / "first" / "scenario.toml").read_text() == (
        tmp_path / "second" / "scenario.toml"
    ).read_text()
    del first["config"]["url"], second["config"]["url"]  # each embedded mock's own port
    assert first["config"] == second["config"]


@pytest.mark.slow
@pytest.mark.mock_llm(ttft_ms=5, itl_ms=1, tokens=4)
def test_sse_load_runs_a_scenario_file_at_the_tests_mock(sse_load, tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        "[load]\nrequests = 6\nconcurrency = 2\n[workload]\ninput-tokens = 12\noutput-tokens = 3\n",
    )
    summary = sse_load(scenario=path)
    assert (summary["requests"], summary["errors"]) == (6, 0)
    assert summary["config"]["workload"]["input_tokens"] == "12"
    assert (Path(summary["run_dir"]) / "scenario.toml").exists()
    bad = scenario(tmp_path, "[load]\nrequests = 0\n")
    with pytest.raises(pytest.UsageError, match=r"scenario\.toml:2: requests"):
        sse_load(scenario=bad)
