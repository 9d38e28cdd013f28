"""Workloads end to end: ``sse-harness run`` against the mock, checked against the
mock's ground truth (what it counted in each prompt, the limit it was asked for, what
its prefix cache held)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.results import read_records
from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments
from tests.launcher import DEADLINE_S

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "harness.cli"]
#: The mock's prefill per uncached token, ms: a miss of 1000 tokens waits 100 ms more.
PREFILL_MS = 0.1


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    extra = ["--prefill-ms-per-token", str(PREFILL_MS), "--prefix-cache-tokens", "200000"]
    with embedded_mock(mock_arguments(ttft_ms=5, itl_ms=1, tokens=4, extra=extra)) as running:
        yield running


def run(out: Path, *options: str) -> dict[str, object]:
    done = subprocess.run(
        [*CLI, "run", "--out", str(out), "--quiet", *options],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((out / "summary.json").read_text())


def truths(mock: EmbeddedMock, out: Path) -> list[tuple[object, dict[str, object]]]:
    pairs = []
    for record in read_records(out / "results.jsonl"):
        assert record.mock_request_id is not None
        truth = mock.truth(record.mock_request_id, timeout_s=DEADLINE_S)
        assert truth is not None
        pairs.append((record, truth))
    return pairs


def test_a_sharegpt_file_sends_each_first_human_turn_once(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    """30 conversations whose first human turns have 1 to 30 words (so the mock's
    prompt counts tell them apart) and whose first answers have 60 down to 31."""
    conversations = [
        {
            "id": str(i),
            "conversations": [
                {"from": "human", "value": " ".join(f"q{i}w{k}" for k in range(i + 1))},
                {"from": "gpt", "value": " ".join(["word"] * (60 - i))},
                {"from": "human", "value": "a later turn, never sent"},
            ],
        }
        for i in range(30)
    ]
    dataset = tmp_path / "conversations.json"
    dataset.write_text(json.dumps(conversations))
    out = tmp_path / "run"
    summary = run(
        out, "--url", mock.base_url, "--dataset", str(dataset), "--output-len", "dataset",
        "--requests", "30", "--concurrency", "4",
    )  # fmt: skip
    assert summary["errors"] == 0
    sent = Counter()
    for record, truth in truths(mock, out):
        assert truth["max_tokens"] == truth["tokens_sent"] == record.output_tokens
        assert truth["prompt_tokens"] == record.prompt_tokens
        sent[(truth["prompt_tokens"], truth["tokens_sent"])] += 1
    assert sent == Counter({(i + 1, 60 - i): 1 for i in range(30)})
    workload = summary["config"]["workload"]
    assert workload["source"] == "dataset"
    assert workload["prompt_tokens_source"] == "words"
    assert workload["dataset"]["format"] == "sharegpt"


def test_a_trace_line_reaches_the_mock_with_its_prompt_and_output_lengths(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text(
        '{"offset_s": 0.2, "prompt_tokens": 50, "output_tokens": 10}\n'
        '{"offset_s": 0.3, "input_length": 7, "output_length": 3}\n'
    )
    out = tmp_path / "run"
    run(out, "--url", mock.base_url, "--trace", str(trace))
    seen = sorted(
        (truth["prompt_tokens"], truth["max_tokens"], truth["tokens_sent"])
        for _, truth in truths(mock, out)
    )
    assert seen == [(7, 3, 3), (50, 10, 10)]


def test_shared_prefixes_hit_the_cache_and_the_split_matches_the_truth(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    summary = run(
        out, "--url", mock.base_url, "--prefix-groups", "4", "--prefix-tokens", "1000",
        "--input-tokens", "uniform:20,60", "--output-tokens", "4", "--requests", "60",
        "--concurrency", "2", "--seed", "11",
    )  # fmt: skip
    block = summary["prompt_cache"]
    pairs = truths(mock, out)
    prompt = sum(truth["prompt_tokens"] for _, truth in pairs)
    cached = sum(truth["cached_tokens"] for _, truth in pairs)
    assert block["cached_share"] == pytest.approx(cached / prompt)
    assert block["cached_share"] > 0.8
    for record, truth in pairs:
        assert (record.prompt_tokens, record.cached_tokens) == (
            truth["prompt_tokens"],
            truth["cached_tokens"],
        )
    hits = [truth for _, truth in pairs if truth["cached_tokens"] > 0]
    misses = [truth for _, truth in pairs if truth["cached_tokens"] == 0]
    assert (block["hits"], block["misses"]) == (len(hits), len(misses))
    assert len(misses) >= 4  # each group's first request, at least
    # the mock's own prefill: a miss computes >= 1000 tokens more than any hit
    assert min(t["prefill_ns"] for t in misses) >= max(t["prefill_ns"] for t in hits) + 90e6
    assert block["ttft_hit_s"]["p50"] < block["ttft_miss_s"]["p50"]


def test_cache_busting_prefixes_miss_every_time(mock: EmbeddedMock, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run(
        out, "--url", mock.base_url, "--prefix-groups", "2", "--prefix-tokens", "200",
        "--prefix-cache-bust", "--input-tokens", "10", "--output-tokens", "2",
        "--requests", "10", "--seed", "5",
    )  # fmt: skip
    assert summary["prompt_cache"]["hits"] == 0
    assert summary["prompt_cache"]["cached_share"] == 0
    assert all(truth["cached_tokens"] == 0 for _, truth in truths(mock, out))


def test_the_embedded_mock_takes_the_prefill_and_cache_options(tmp_path: Path) -> None:
    summary = run(
        tmp_path / "run", "--mock-ttft-ms", "1", "--mock-itl-ms", "1",
        "--mock-prefix-cache-tokens", "10000", "--mock-prefill-ms-per-token", "0.01",
        "--prefix-groups", "1", "--prefix-tokens", "100", "--input-tokens", "5",
        "--output-tokens", "2", "--requests", "6", "--concurrency", "1",
    )  # fmt: skip
    block = summary["prompt_cache"]
    assert (block["hits"], block["misses"]) == (5, 1)
    assert block["cached_tokens"] == 5 * 96  # six full blocks of 16 of the 100 shared


def test_dataset_conversations_are_replayed_turn_by_turn(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    """Conversation i has i + 1 turns; turn t says t + 2 words and its answer has
    3 + t + i. Each request carries the turns and answers before it."""
    conversations = [
        {"conversations": [
            part
            for t in range(i + 1)
            for part in ({"from": "human", "value": " ".join([f"c{i}t{t}"] * (t + 2))},
                         {"from": "gpt", "value": " ".join(["a"] * (3 + t + i))})
        ]}
        for i in range(3)
    ]  # fmt: skip
    dataset = tmp_path / "conversations.json"
    dataset.write_text(json.dumps(conversations))
    out = tmp_path / "run"
    run(
        out, "--url", mock.base_url, "--dataset", str(dataset), "--turns", "dataset",
        "--output-len", "dataset", "--requests", "6", "--concurrency", "1",
    )  # fmt: skip
    seen = sorted(
        (record.turn, truth["prompt_tokens"], truth["max_tokens"], truth["tokens_sent"])
        for record, truth in truths(mock, out)
    )
    expected = []
    for i in range(3):
        prompt = 0
        for t in range(i + 1):
            prompt += t + 2
            expected.append((t, prompt, 3 + t + i, 3 + t + i))
            prompt += 3 + t + i
    assert seen == sorted(expected)
