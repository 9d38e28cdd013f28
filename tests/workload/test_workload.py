"""The run's pool of prompts: datasets, drawn lengths, shared prefixes and trace lengths,
as ``sse-harness run``'s options make them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.cli.run_options import config_from_args
from harness.errors import ConfigError
from harness.load.config import RunConfig
from harness.load.lengths import LengthSpec, WordRule
from harness.load.schedule import Trace
from harness.load.workload import WorkloadSpec, build_workload, fill_trace

RULE = WordRule()
URL = "http://127.0.0.1:9"


def config(*options: str) -> RunConfig:
    args = build_parser().parse_args(["run", "--url", URL, *options])
    return config_from_args(args, URL)[0]


def test_synthetic_prompts_have_the_drawn_lengths_with_the_seed() -> None:
    spec = WorkloadSpec(
        input_tokens=LengthSpec(kind="uniform", a=5, b=50),
        output_tokens=LengthSpec(kind="normal", a=20, b=4),
    )
    workload = build_workload(spec, [], RULE, seed=3, requests=40)
    assert len(workload.prompts) == len(workload.max_tokens) == 40
    lengths = [RULE.count(p[-1]["content"]) for p in workload.prompts]
    assert lengths == LengthSpec(kind="uniform", a=5, b=50).draws(40, 3)
    assert all(isinstance(n, int) and n >= 1 for n in workload.max_tokens)
    assert len(set(lengths)) > 10
    again = build_workload(spec, [], RULE, seed=3, requests=40)
    assert again == workload
    assert build_workload(spec, [], RULE, seed=4, requests=40).prompts != workload.prompts
    assert workload.info.describe() == {
        "source": "synthetic",
        "prompt_tokens_source": "words",
        "items": 40,
        "input_tokens": "uniform:5,50",
        "output_tokens": "normal:20,4",
    }


def test_shared_prefixes_lead_every_prompt_round_robin() -> None:
    spec = WorkloadSpec(input_tokens=LengthSpec(kind="fixed", a=8), prefix_groups=3,
                        prefix_tokens=100)  # fmt: skip
    workload = build_workload(spec, [], RULE, seed=0, requests=12)
    words = [p[-1]["content"].split() for p in workload.prompts]
    assert all(len(w) == 108 for w in words)
    prefixes = [tuple(w[:100]) for w in words]
    assert len(set(prefixes)) == 3
    assert all(prefixes[i] == prefixes[i % 3] for i in range(12))
    assert len({tuple(w[100:]) for w in words}) == 12  # each request's own text differs
    busted = build_workload(
        WorkloadSpec(**{**_fields(spec), "prefix_cache_bust": True}), [], RULE, seed=0,
        requests=12,
    )  # fmt: skip
    busted_words = [p[-1]["content"].split() for p in busted.prompts]
    assert all(len(w) == 108 for w in busted_words)
    assert len({tuple(w[:100]) for w in busted_words}) == 12


def _fields(spec: WorkloadSpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def test_trace_lengths_become_prompts_of_that_many_tokens() -> None:
    trace = Trace.from_lines(
        [
            '{"offset_s": 0.2, "prompt_tokens": 50, "output_tokens": 10}',
            '{"offset_s": 0.5, "prompt": "hi there"}',
        ]
    )
    filled = fill_trace(trace, RULE, seed=0)
    first, second = filled.entries
    assert second.prompt == "hi there"
    assert first.prompt is not None
    assert RULE.count(first.prompt) == 50
    assert (first.prompt_tokens, first.output_tokens, first.offset_s) == (50, 10, 0.2)


def test_run_options_make_the_pool(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "a b c"}, {"from": "gpt", "value": "x y"}]},
        {"conversations": [{"from": "human", "value": "d e"}, {"from": "gpt", "value": "z"}]},
    ]))  # fmt: skip
    made = config("--dataset", str(path), "--output-len", "dataset", "--requests", "5")
    assert made.prompts == (
        ({"role": "user", "content": "a b c"},),
        ({"role": "user", "content": "d e"},),
    )
    assert [made.max_tokens_for(i) for i in range(4)] == [2, 1, 2, 1]
    described = made.redacted()["workload"]
    assert described["dataset"] == {
        "file": "sg.json", "format": "sharegpt", "rows": 2, "kept": 2, "skipped": 0,
        "filtered": 0,
    }  # fmt: skip
    drawn = config("--input-tokens", "uniform:3,9", "--output-tokens", "7", "--requests", "20")
    assert len(drawn.prompts) == 20
    assert set(drawn.prompt_max_tokens) == {7}
    assert "workload" not in config("--prompt", "hello").redacted()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (["--output-len", "dataset"], "output-len"),
        (["--input-tokens", "normal:3"], "input-tokens"),
        (["--output-tokens", "uniform:9,2"], "output-tokens"),
        (["--input-tokens", "5", "--prompt-words", "3"], "input-tokens"),
        (["--prefix-groups", "2"], "prefix-groups"),
        (["--prefix-groups", "0", "--prefix-tokens", "3"], "prefix-groups"),
        (["--prefix-cache-bust"], "prefix-cache-bust"),
        (["--dataset", "nowhere.json"], "dataset"),
        (["--dataset", "x.json", "--input-tokens", "4"], "input-tokens"),
        (["--dataset", "x.json", "--dataset-sample", "0"], "dataset-sample"),
        (["--tokenizer", "nowhere.json"], "tokenizer"),
        (["--min-input-tokens", "5"], "min-input-tokens"),
        (["--output-tokens", "5", "--max-tokens", "9"], "output-tokens"),
    ],
)
def test_impossible_workload_options_are_named(options: list[str], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(*options)
    assert caught.value.field == field


def test_dataset_turns_make_a_pool_of_conversations(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "a b"}, {"from": "gpt", "value": "x"},
                           {"from": "human", "value": "c"}, {"from": "gpt", "value": "y z"}]},
        {"conversations": [{"from": "human", "value": "d"}, {"from": "gpt", "value": "w w w"}]},
    ]))  # fmt: skip
    made = config("--dataset", str(path), "--turns", "dataset", "--output-len", "dataset")
    assert made.prompts == (
        ({"role": "user", "content": "a b"}, {"role": "user", "content": "c"}),
        ({"role": "user", "content": "d"},),
    )
    assert made.turn_max_tokens == ((1, 2), (3,))
    assert made.redacted()["workload"]["turns"] == "dataset"
    with pytest.raises(ConfigError, match="closed loop only"):
        config("--dataset", str(path), "--turns", "dataset", "--rate", "2")
    with pytest.raises(ConfigError, match="replays the conversations of a --dataset"):
        config("--turns", "dataset")


def test_a_local_tokenizer_builds_the_run_prompts_and_is_recorded(tmp_path: Path) -> None:
    from harness.load.lengths import TokenizerRule
    from tests.workload.tokenizers_local import bpe

    path = bpe(tmp_path / "tokenizer.json")
    made = config("--tokenizer", str(path), "--input-tokens", "uniform:20,40", "--requests", "8",
                  "--prefix-groups", "2", "--prefix-tokens", "30")  # fmt: skip
    rule = TokenizerRule(path)
    drawn = LengthSpec(kind="uniform", a=20, b=40).draws(8, 0)
    prefixes = set()
    for prompt, length in zip(made.prompts, drawn, strict=True):
        prefix, own = prompt[-1]["content"].split("\n\n")
        prefixes.add(prefix)
        assert rule.count(prefix) == 30
        assert rule.count(own) == length
    assert len(prefixes) == 2
    assert made.redacted()["workload"]["prompt_tokens_source"] == "tokenizer"
