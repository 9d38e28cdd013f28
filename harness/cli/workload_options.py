"""``run``'s workload options: datasets, token lengths, shared prefixes, the tokenizer.

Their definitions and their translation into a ``WorkloadSpec`` live in
``harness.load.workload_options``, shared with the locust user, so that both commands
take the same options with the same meanings.
"""

from __future__ import annotations

import argparse

from harness.load.lengths import TokenRule
from harness.load.workload import WorkloadSpec
from harness.load.workload_options import (
    add_workload_arguments as _add_workload_options,
)
from harness.load.workload_options import spec_from_options, token_rule_from_options

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
    _add_workload_options(group)


def token_rule_from_args(args: argparse.Namespace) -> TokenRule:
    """The tokenizer of ``--tokenizer``, else the word rule.

    Raises:
        ConfigError: the tokenizer cannot be loaded.
    """
    return token_rule_from_options(args)


def workload_spec_from_args(args: argparse.Namespace) -> WorkloadSpec:
    """The workload options as a ``WorkloadSpec``.

    Raises:
        ConfigError: a length or an option combination is invalid (named as spelled).
    """
    return spec_from_options(args)
