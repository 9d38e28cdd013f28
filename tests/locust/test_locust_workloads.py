"""The workload options drive the locust user as they drive ``run``: a locust test
against the mock on loopback (a subprocess, bounded by -t), checked against the mock's
ground truth (the prompt it counted and the limit it was asked for, per request)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.record import Outcome, RequestRecord
from harness.results import read_records
from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments
from tests.launcher import DEADLINE_S
from tests.locust.conftest import run_locust

pytestmark = pytest.mark.slow

CONVERSATIONS = 8


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    """Answers of up to 100 tokens, quickly: a request's max_tokens decides its length."""
    with embedded_mock(mock_arguments(ttft_ms=5, itl_ms=2, tokens=100)) as running:
        yield running


def sharegpt(path: Path) -> Path:
    """Conversations whose first human turns have 1 to 8 words (the mock's prompt counts
    tell them apart) and whose first answers have 20 down to 13."""
    conversations = [
        {
            "id": str(i),
            "conversations": [
                {"from": "human", "value": " ".join(f"q{i}w{k}" for k in range(i + 1))},
                {"from": "gpt", "value": " ".join(["word"] * (20 - i))},
                {"from": "human", "value": "a later turn, never sent"},
            ],
        }
        for i in range(CONVERSATIONS)
    ]
    path.write_text(json.dumps(conversations))
    return path


def in_send_order(out: Path) -> list[RequestRecord]:
    return sorted(read_records(out / "results.jsonl"), key=lambda r: r.t_sent_ns)


def test_a_sharegpt_dataset_is_sent_in_order_with_each_answers_length(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    dataset = sharegpt(tmp_path / "conversations.json")
    out = tmp_path / "run"
    run = run_locust(["-u", "3", "-r", "30", "-t", "3s", "--host", mock.base_url, "--out",
                      str(out), "--stop-timeout", "10", "--dataset", str(dataset),
                      "--output-len", "dataset"])  # fmt: skip
    assert run.returncode == 0, run.log[-3000:]
    records = in_send_order(out)
    assert len(records) > CONVERSATIONS  # the pool wrapped round at least once
    # the users of one node take the prompts in turn: the n-th request sent is the
    # (n mod 8)-th conversation's first human turn, asking for its first answer's length
    for n, record in enumerate(records):
        if record.outcome is not Outcome.OK:
            continue  # a stream locust stopped at the end
        i = n % CONVERSATIONS
        assert (record.prompt_tokens, record.output_tokens) == (i + 1, 20 - i), n
        truth = mock.truth(record.mock_request_id or "", timeout_s=DEADLINE_S)
        assert truth is not None
        assert (truth["prompt_tokens"], truth["max_tokens"]) == (i + 1, 20 - i)
    assert sum(r.outcome is Outcome.OK for r in records) >= CONVERSATIONS
    workload = json.loads((out / "summary.json").read_text())["config"]["workload"]
    assert workload["source"] == "dataset"
    assert workload["output_tokens"] == "dataset"
    assert workload["dataset"] == {"file": dataset.name, "format": "sharegpt",
                                   "rows": 8, "kept": 8, "skipped": 0, "filtered": 0}  # fmt: skip


def test_token_lengths_send_prompts_of_that_length_asking_for_that_output(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = run_locust(["-u", "2", "-r", "20", "-t", "2s", "--host", mock.base_url, "--out",
                      str(out), "--stop-timeout", "10", "--input-tokens", "50",
                      "--output-tokens", "10", "--seed", "3"])  # fmt: skip
    assert run.returncode == 0, run.log[-3000:]
    done = [r for r in in_send_order(out) if r.outcome is Outcome.OK]
    assert done
    for record in done:
        assert (record.prompt_tokens, record.output_tokens) == (50, 10)
        truth = mock.truth(record.mock_request_id or "", timeout_s=DEADLINE_S)
        assert truth is not None
        assert (truth["prompt_tokens"], truth["max_tokens"]) == (50, 10)
    config = json.loads((out / "summary.json").read_text())["config"]
    assert config["seed"] == 3
    assert config["workload"] == {"source": "synthetic", "prompt_tokens_source": "words",
                                  "items": 1000, "input_tokens": "50",
                                  "output_tokens": "10"}  # fmt: skip


def test_a_bad_workload_option_is_named_and_nothing_is_sent(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = run_locust(["-u", "1", "-r", "10", "-t", "5s", "--host", mock.base_url, "--out",
                      str(out), "--output-tokens", "uniform:9,2"])  # fmt: skip
    assert run.returncode == 2
    assert "sse-harness: output-tokens:" in run.log
    assert not (out / "results.jsonl").exists()


def test_a_scenario_file_drives_sse_harness_locust_and_its_run_folder_reruns_it(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    dataset = sharegpt(tmp_path / "conversations.json")
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(
        "[target]\n"
        f'url = "{mock.base_url}"\n'
        "[workload]\n"
        'dataset = "conversations.json"   # read from the file\'s folder\n'
        'output-len = "dataset"\n'
        "[load]\n"
        "concurrency = 2\n"
        "spawn-rate = 20\n"
        "duration = 60\n"
        "seed = 5\n"
    )
    cli = [sys.executable, "-m", "harness.cli", "locust"]
    out = tmp_path / "first"
    # flags override the file: 3 users, not 2; 2 s, not 60
    run = run_locust([str(scenario), "-u", "3", "-t", "2s", "--out", str(out)], command=cli)
    assert run.returncode == 0, run.log[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["profile"]["users"] == 3
    assert summary["config"]["profile"]["run_time_s"] == 2
    assert summary["config"]["url"] == f"{mock.base_url}/v1/chat/completions"
    assert summary["config"]["seed"] == 5
    assert summary["config"]["workload"]["dataset"]["kept"] == CONVERSATIONS
    for n, record in enumerate(in_send_order(out)):
        if record.outcome is Outcome.OK:
            assert (record.prompt_tokens, record.output_tokens) == (n % 8 + 1, 20 - n % 8)
    written = (out / "scenario.toml").read_text()
    assert "sse-harness locust --config scenario.toml" in written
    assert "users = 3" in written
    assert 'run-time = "2s"' in written
    assert f'dataset = "{dataset.resolve()}"' in written
    again = tmp_path / "second"
    rerun = run_locust(["--config", str(out / "scenario.toml"), "--out", str(again)], command=cli)
    assert rerun.returncode == 0, rerun.log[-3000:]
    assert (again / "scenario.toml").read_text() == written
    repeated = json.loads((again / "summary.json").read_text())["config"]
    assert repeated["workload"] == summary["config"]["workload"]
    assert repeated["profile"] == summary["config"]["profile"]
