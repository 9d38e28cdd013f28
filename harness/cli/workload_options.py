"""``run``'s workload options: datasets, token lengths, shared prefixes, the tokenizer,
and their translation into a ``WorkloadSpec``."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import ConfigError
from harness.load.datasets import DATASET_FORMATS
from harness.load.lengths import LengthSpec, TokenizerRule, TokenRule, WordRule, parse_length
from harness.load.workload import WorkloadSpec

__all__ = [
    "add_workload_arguments",
    "token_rule_from_args",
    "turns_option",
    "workload_spec_from_args",
]


def turns_option(text: str) -> int | str:
    """``--turns``: a whole number, or ``dataset``."""
    if text == "dataset":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'dataset', not {text!r}") from None


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the ``workload`` group."""
    group = parser.add_argument_group(
        "workload (datasets, token lengths, shared prefixes; drawn with --seed)"
    )
    group.add_argument(
        "--dataset",
        type=Path,
        metavar="FILE",
        help="prompts from a local ShareGPT JSON, JSONL, CSV or Parquet file",
    )
    group.add_argument(
        "--dataset-format",
        choices=DATASET_FORMATS,
        help="the dataset's format (default: detected from its content)",
    )
    group.add_argument(
        "--dataset-sample",
        type=int,
        metavar="N",
        help="draw N of the dataset's prompts with --seed (default: all, in file order)",
    )
    group.add_argument("--min-input-tokens", type=int, help="skip dataset prompts shorter")
    group.add_argument("--max-input-tokens", type=int, help="skip dataset prompts longer")
    group.add_argument(
        "--input-tokens",
        metavar="LEN",
        help="synthetic prompts of this many tokens: N, uniform:MIN,MAX, normal:MEAN,SD "
        "or lognormal:MEAN,SD",
    )
    group.add_argument(
        "--output-tokens",
        "--output-len",
        dest="output_tokens",
        metavar="LEN",
        help="the output length to ask for: N, a distribution as for --input-tokens, or "
        "'dataset' (each dataset prompt's own answer length)",
    )
    group.add_argument(
        "--tokenizer",
        type=Path,
        metavar="FILE",
        help="count and build prompts with this local tokenizer.json (default: one token per word)",
    )
    group.add_argument(
        "--prefix-groups",
        type=int,
        metavar="G",
        help="each request starts with one of G shared prefixes (round robin)",
    )
    group.add_argument(
        "--prefix-tokens", type=int, metavar="P", help="the shared prefixes' length in tokens"
    )
    group.add_argument(
        "--prefix-cache-bust",
        action="store_true",
        help="give each request a prefix of its own of the same length (a cache's misses)",
    )


def token_rule_from_args(args: argparse.Namespace) -> TokenRule:
    """The tokenizer of ``--tokenizer``, else the word rule.

    Raises:
        ConfigError: the tokenizer cannot be loaded.
    """
    path = getattr(args, "tokenizer", None)
    return TokenizerRule(path) if path is not None else WordRule()


def workload_spec_from_args(args: argparse.Namespace) -> WorkloadSpec:
    """The workload options as a ``WorkloadSpec``.

    Raises:
        ConfigError: a length or an option combination is invalid (named as spelled).
    """
    output = getattr(args, "output_tokens", None)
    from_dataset = output == "dataset"
    output_spec: LengthSpec | None = None
    if output is not None and not from_dataset:
        output_spec = parse_length(output, "output-tokens")
    if output_spec is not None and getattr(args, "max_tokens", None) is not None:
        raise ConfigError("output-tokens", "gives each request's length: drop --max-tokens")
    input_text = getattr(args, "input_tokens", None)
    if input_text is not None and getattr(args, "prompt_words", None) is not None:
        raise ConfigError("input-tokens", "give --input-tokens or --prompt-words, not both")
    return WorkloadSpec(
        dataset=getattr(args, "dataset", None),
        dataset_format=getattr(args, "dataset_format", None),
        dataset_sample=getattr(args, "dataset_sample", None),
        min_input_tokens=getattr(args, "min_input_tokens", None),
        max_input_tokens=getattr(args, "max_input_tokens", None),
        input_tokens=parse_length(input_text, "input-tokens") if input_text else None,
        output_tokens=output_spec,
        output_from_dataset=from_dataset,
        prefix_groups=getattr(args, "prefix_groups", None),
        prefix_tokens=getattr(args, "prefix_tokens", None),
        prefix_cache_bust=getattr(args, "prefix_cache_bust", False),
        turns_from_dataset=getattr(args, "turns", 1) == "dataset",
    )
