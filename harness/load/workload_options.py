"""The workload options, shared by ``sse-harness run`` and the locust user: their
definitions on a parser, and their translation into a pool of prompts.

Both commands read the options the same way, from argparse's typed values (``run``,
locust's command line) or from strings (locust's web UI form sends each field as text,
a cleared one as an empty string), so every value is converted here, named as the
option is spelled when it is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.load.datasets import DATASET_FORMATS
from harness.load.lengths import LengthSpec, TokenizerRule, TokenRule, WordRule, parse_length
from harness.load.payloads import Message
from harness.load.workload import Workload, WorkloadSpec, build_workload

__all__ = [
    "add_workload_arguments",
    "option_number",
    "option_text",
    "spec_from_options",
    "token_rule_from_options",
    "workload_from_options",
]


def add_workload_arguments(
    target: Any, *, rare: Mapping[str, Any] | None = None, path: Callable[[str], Any] = Path
) -> None:
    """Add the workload options to ``target`` (a parser, or a group of one).

    Args:
        target: has ``add_argument``.
        rare: extra keywords for the options seldom changed (locust:
            ``include_in_web_ui=False``, keeping its start form short).
        path: the type of the file options (locust keeps them ``str``).
    """
    rare = dict(rare or {})
    target.add_argument(
        "--dataset",
        type=path,
        metavar="FILE",
        help="prompts from a local ShareGPT JSON, JSONL, CSV or Parquet file",
    )
    target.add_argument(
        "--dataset-format",
        choices=DATASET_FORMATS,
        help="the dataset's format (default: detected from its content)",
    )
    target.add_argument(
        "--dataset-sample",
        type=int,
        metavar="N",
        help="draw N of the dataset's prompts with --seed (default: all, in file order)",
        **rare,
    )
    target.add_argument("--min-input-tokens", type=int, help="skip dataset prompts shorter", **rare)
    target.add_argument("--max-input-tokens", type=int, help="skip dataset prompts longer", **rare)
    target.add_argument(
        "--input-tokens",
        metavar="LEN",
        help="synthetic prompts of this many tokens: N, uniform:MIN,MAX, normal:MEAN,SD "
        "or lognormal:MEAN,SD",
    )
    target.add_argument(
        "--output-tokens",
        "--output-len",
        dest="output_tokens",
        metavar="LEN",
        help="the output length to ask for: N, a distribution as for --input-tokens, or "
        "'dataset' (each dataset prompt's own answer length)",
    )
    target.add_argument(
        "--tokenizer",
        type=path,
        metavar="FILE",
        help="count and build prompts with this local tokenizer.json (default: one token per word)",
        **rare,
    )
    target.add_argument(
        "--prefix-groups",
        type=int,
        metavar="G",
        help="each request starts with one of G shared prefixes (round robin)",
    )
    target.add_argument(
        "--prefix-tokens", type=int, metavar="P", help="the shared prefixes' length in tokens"
    )
    target.add_argument(
        "--prefix-cache-bust",
        action="store_true",
        help="give each request a prefix of its own of the same length (a cache's misses)",
    )


def token_rule_from_options(options: Any) -> TokenRule:
    """The tokenizer of ``--tokenizer``, else the word rule.

    Raises:
        ConfigError: the tokenizer cannot be loaded.
    """
    path = option_text(options, "tokenizer")
    return TokenizerRule(Path(path)) if path is not None else WordRule()


def spec_from_options(options: Any) -> WorkloadSpec:
    """The workload options as a ``WorkloadSpec``.

    Raises:
        ConfigError: a value, a length or an option combination is invalid (named as
            spelled).
    """
    output = option_text(options, "output_tokens")
    from_dataset = output == "dataset"
    output_spec: LengthSpec | None = None
    if output is not None and not from_dataset:
        output_spec = parse_length(output, "output-tokens")
    if output_spec is not None and option_text(options, "max_tokens") is not None:
        raise ConfigError("output-tokens", "gives each request's length: drop --max-tokens")
    input_text = option_text(options, "input_tokens")
    if input_text is not None and option_text(options, "prompt_words") is not None:
        raise ConfigError("input-tokens", "give --input-tokens or --prompt-words, not both")
    dataset = option_text(options, "dataset")
    return WorkloadSpec(
        dataset=Path(dataset) if dataset is not None else None,
        dataset_format=option_text(options, "dataset_format"),
        dataset_sample=_whole(options, "dataset_sample"),
        min_input_tokens=_whole(options, "min_input_tokens"),
        max_input_tokens=_whole(options, "max_input_tokens"),
        input_tokens=parse_length(input_text, "input-tokens") if input_text else None,
        output_tokens=output_spec,
        output_from_dataset=from_dataset,
        prefix_groups=_whole(options, "prefix_groups"),
        prefix_tokens=_whole(options, "prefix_tokens"),
        prefix_cache_bust=bool(getattr(options, "prefix_cache_bust", False)),
        turns_from_dataset=getattr(options, "turns", 1) == "dataset",
    )


def workload_from_options(
    options: Any,
    prompts: Sequence[tuple[Message, ...]],
    rule: TokenRule,
    *,
    seed: int,
    requests: int | None,
) -> Workload | None:
    """The pool of prompts a dataset, lengths or shared prefixes make (None without:
    the caller's own ``prompts`` are sent as they are).

    Raises:
        ConfigError: as ``spec_from_options`` and ``build_workload``.
    """
    spec = spec_from_options(options)
    if not spec.shapes_prompts and option_text(options, "tokenizer") is None:
        return None
    return build_workload(spec, prompts, rule, seed=seed, requests=requests)


def option_text(options: Any, name: str) -> str | None:
    """An option as text, None when not given or blank (a cleared web UI field)."""
    value = getattr(options, name, None)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def option_number(options: Any, name: str, kind: type[int] | type[float]) -> Any:
    """An option as ``kind``, None when not given or blank.

    Raises:
        ConfigError: it is not a number of that kind, named as the user spells the option.
    """
    text = option_text(options, name)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError as exc:
        whole = "a whole number" if kind is int else "a number"
        raise ConfigError(name.replace("_", "-"), f"not {whole}: {text!r}") from exc


def _whole(options: Any, name: str) -> int | None:
    return option_number(options, name, int)  # type: ignore[no-any-return]
