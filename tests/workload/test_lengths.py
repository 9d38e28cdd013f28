"""Token lengths: the specs, their seeded draws, and prompts built to a length by the word
rule and by local tokenizers made in the test."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.load.lengths import MAX_TOKENS, LengthSpec, TokenizerRule, WordRule, parse_length
from tests.strategies import length_deviations, length_means, run_seeds, uniform_bounds
from tests.workload.tokenizers_local import bpe, word_level


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("128", LengthSpec(kind="fixed", a=128)),
        ("uniform:64,256", LengthSpec(kind="uniform", a=64, b=256)),
        ("normal:200,50", LengthSpec(kind="normal", a=200, b=50)),
        ("lognormal:200,80.5", LengthSpec(kind="lognormal", a=200, b=80.5)),
    ],
)
def test_lengths_parse(text: str, spec: LengthSpec) -> None:
    assert parse_length(text, "input-tokens") == spec
    assert parse_length(str(spec), "input-tokens") == spec


@pytest.mark.parametrize(
    "text",
    ["0", "-3", "abc", "uniform:5", "uniform:9,3", "uniform:1.5,3", "normal:0,3", "normal:5,-1",
     "poisson:3,4", f"{MAX_TOKENS + 1}", ""],
)  # fmt: skip
def test_impossible_lengths_are_refused_by_name(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_length(text, "output-tokens")
    assert caught.value.field == "output-tokens"


@given(bounds=uniform_bounds, seed=run_seeds)
def test_uniform_draws_stay_within_their_bounds_and_repeat_with_the_seed(
    bounds: tuple[int, int], seed: int
) -> None:
    spec = LengthSpec(kind="uniform", a=bounds[0], b=bounds[1])
    draws = spec.draws(50, seed)
    assert all(bounds[0] <= n <= bounds[1] for n in draws)
    assert draws == spec.draws(50, seed)


@given(
    kind=st.sampled_from(["normal", "lognormal"]),
    mean=length_means,
    sd=length_deviations,
    seed=run_seeds,
)
def test_every_draw_is_a_whole_length_from_1_to_the_maximum(
    kind: str, mean: float, sd: float, seed: int
) -> None:
    draws = LengthSpec(kind=kind, a=mean, b=sd).draws(40, seed)
    assert all(isinstance(n, int) and 1 <= n <= MAX_TOKENS for n in draws)
    assert draws == LengthSpec(kind=kind, a=mean, b=sd).draws(40, seed)


@given(kind=st.sampled_from(["normal", "lognormal"]), seed=run_seeds)
def test_draws_have_the_mean_and_spread_asked_for(kind: str, seed: int) -> None:
    """Far from 1 (no clipping), 4000 draws' mean and deviation are within a few standard
    errors of what was asked (bounds wide enough never to fail by chance)."""
    draws = LengthSpec(kind=kind, a=1000, b=100).draws(4000, seed)
    standard_error = 100 / math.sqrt(4000)
    assert abs(statistics.fmean(draws) - 1000) < 8 * standard_error
    assert 85 < statistics.stdev(draws) < 115


def test_a_fixed_length_is_that_length() -> None:
    assert LengthSpec(kind="fixed", a=7).draws(5, 1) == [7] * 5


@given(tokens=st.integers(min_value=0, max_value=3000), seed=st.text(max_size=5) | run_seeds)
def test_the_word_rule_builds_prompts_of_exactly_the_length(tokens: int, seed: str | int) -> None:
    rule = WordRule()
    text = rule.text(tokens, seed)
    assert rule.count(text) == tokens
    assert text == rule.text(tokens, seed)


@pytest.fixture(scope="module", params=[word_level, bpe], ids=["word-level", "bpe"])
def tokenizer_rule(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    return TokenizerRule(request.param(path))


def test_a_local_tokenizer_builds_prompts_of_exactly_the_length(
    tokenizer_rule: TokenizerRule,
) -> None:
    for tokens in [1, 2, 3, 7, 8, 31, 64, 100, 257, 512]:
        for seed in ("a", "b", 3):
            text = tokenizer_rule.text(tokens, seed)
            assert tokenizer_rule.count(text) == tokens, (tokens, seed, text)
    assert tokenizer_rule.source == "tokenizer"


def test_a_file_that_is_no_tokenizer_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"not": "a tokenizer"}')
    with pytest.raises(ConfigError, match=r"tokenizer\.json is not a tokenizer") as caught:
        TokenizerRule(bad)
    assert caught.value.field == "tokenizer"
    with pytest.raises(ConfigError, match="not a tokenizer"):
        TokenizerRule(tmp_path / "missing.json")
