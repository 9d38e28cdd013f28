"""What a run sends, request by request: a pool of prompts, each with its output length,
made from the run's prompts, a dataset, token-length distributions and shared prefixes.

The pool is built once, before the load starts, with the run's seed: the n-th request
sends the pool's n-th item (cycling when the run sends more than the pool holds), so a
run's requests can be repeated. Trace entries that give ``prompt_tokens`` get a
synthetic prompt of that length here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.load.datasets import Dataset, load_dataset
from harness.load.lengths import LengthSpec, TokenRule
from harness.load.payloads import Message
from harness.load.schedule import Trace

__all__ = [
    "DEFAULT_POOL",
    "MAX_POOL",
    "Workload",
    "WorkloadInfo",
    "WorkloadSpec",
    "build_workload",
    "fill_trace",
]

#: Items drawn when the run gives no request count (lengths and prefixes cycle then).
DEFAULT_POOL = 1000
#: The most items drawn, whatever the request count.
MAX_POOL = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    """How to make a run's prompts, beyond ``--prompt`` / ``--prompt-file``.

    Attributes:
        dataset: a local dataset file.
        dataset_format: its format (None: detected).
        dataset_sample: how many of its prompts to draw (None: all, in file order).
        min_input_tokens, max_input_tokens: keep dataset prompts within these lengths.
        input_tokens: synthetic prompts of this length (not with a dataset).
        output_tokens: the output length to ask for; None: the dataset's own with
            ``output_from_dataset``, else the run's ``--max-tokens``.
        output_from_dataset: ``--output-len dataset``.
        prefix_groups, prefix_tokens: each request starts with one of ``prefix_groups``
            shared prefixes of ``prefix_tokens`` tokens (round robin).
        prefix_cache_bust: make each request's prefix its own (same length), to measure
            the cache's misses.
        turns_from_dataset: replay each dataset conversation turn by turn
            (``--turns dataset``).
    """

    dataset: Path | None = None
    dataset_format: str | None = None
    dataset_sample: int | None = None
    min_input_tokens: int | None = None
    max_input_tokens: int | None = None
    input_tokens: LengthSpec | None = None
    output_tokens: LengthSpec | None = None
    output_from_dataset: bool = False
    prefix_groups: int | None = None
    prefix_tokens: int | None = None
    prefix_cache_bust: bool = False
    turns_from_dataset: bool = False

    def __post_init__(self) -> None:
        if self.dataset is not None and self.input_tokens is not None:
            raise ConfigError("input-tokens", "a --dataset brings its own prompts; give one")
        if self.output_from_dataset and self.dataset is None:
            raise ConfigError("output-len", "'dataset' takes each length from a --dataset")
        if self.output_from_dataset and self.output_tokens is not None:
            raise ConfigError("output-tokens", "give a length or 'dataset', not both")
        for name in ("dataset_sample", "min_input_tokens", "max_input_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(name.replace("_", "-"), f"must be at least 1, not {value}")
            if value is not None and self.dataset is None:
                raise ConfigError(name.replace("_", "-"), "applies to a --dataset: give one")
        if (self.prefix_groups is None) != (self.prefix_tokens is None):
            raise ConfigError("prefix-groups", "give --prefix-groups and --prefix-tokens together")
        if self.prefix_groups is not None and self.prefix_groups < 1:
            raise ConfigError("prefix-groups", f"must be at least 1, not {self.prefix_groups}")
        if self.prefix_tokens is not None and self.prefix_tokens < 1:
            raise ConfigError("prefix-tokens", f"must be at least 1, not {self.prefix_tokens}")
        if self.prefix_cache_bust and self.prefix_groups is None:
            raise ConfigError("prefix-cache-bust", "busts shared prefixes: give --prefix-groups")
        if self.turns_from_dataset and self.dataset is None:
            raise ConfigError("turns", "'dataset' replays the conversations of a --dataset")
        if self.turns_from_dataset and self.prefix_groups is not None:
            raise ConfigError("turns", "'dataset' replays conversations as they are: no prefixes")

    @property
    def shapes_prompts(self) -> bool:
        """Whether it changes anything about the prompts or their lengths."""
        return any(
            (
                self.dataset,
                self.input_tokens,
                self.output_tokens,
                self.prefix_groups,
                self.output_from_dataset,
                self.turns_from_dataset,
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadInfo:
    """What a run's workload was, for its summary (``config.workload``)."""

    source: str
    prompt_tokens_source: str
    items: int
    input_tokens: str | None = None
    output_tokens: str | None = None
    dataset: dict[str, Any] | None = None
    prefix_groups: int | None = None
    prefix_tokens: int | None = None
    prefix_cache_bust: bool = False
    turns: str | None = None

    def describe(self) -> dict[str, Any]:
        """The JSON-able description, without what the run did not use."""
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if v is not None and v is not False}


@dataclass(frozen=True, slots=True)
class Workload:
    """The pool: ``prompts[i]`` is sent asking for ``max_tokens[i]`` (None: the run's
    ``--max-tokens``). With ``turn_max_tokens``, each of ``prompts[i]`` is a user turn
    of one conversation, asking for ``turn_max_tokens[i][t]``."""

    prompts: tuple[tuple[Message, ...], ...]
    max_tokens: tuple[int | None, ...]
    info: WorkloadInfo
    turn_max_tokens: tuple[tuple[int | None, ...], ...] = ()


def build_workload(
    spec: WorkloadSpec,
    prompts: Sequence[tuple[Message, ...]],
    rule: TokenRule,
    *,
    seed: int,
    requests: int | None,
) -> Workload:
    """The run's pool of prompts and output lengths.

    Args:
        spec: the workload options.
        prompts: the run's own prompts (``--prompt``, ``--prompt-file``), used when
            neither a dataset nor ``input_tokens`` makes them.
        rule: counts tokens and builds texts to a length.
        seed: the run's seed.
        requests: the run's request bound (the pool's size when lengths are drawn).

    Raises:
        ConfigError: the dataset cannot be read, or the options do not fit together.
    """
    dataset: Dataset | None = None
    base: list[tuple[Message, ...]] = []
    out: list[int | None] = []
    info: dict[str, Any] = {"prompt_tokens_source": rule.source}
    if spec.dataset is not None:
        dataset = load_dataset(
            spec.dataset,
            rule,
            data_format=spec.dataset_format,
            output_from_dataset=spec.output_from_dataset,
            min_input_tokens=spec.min_input_tokens,
            max_input_tokens=spec.max_input_tokens,
            sample=spec.dataset_sample,
            seed=seed,
        )
        base = [item.messages for item in dataset.items]
        out = [item.output_tokens if spec.output_from_dataset else None for item in dataset.items]
        info["source"] = "dataset"
        info["dataset"] = {
            "file": spec.dataset.name,
            "format": dataset.format,
            "rows": dataset.rows,
            "kept": len(dataset.items),
            "skipped": dataset.skipped,
            "filtered": dataset.filtered,
        }
    size = len(base) if dataset is not None else len(prompts)
    drawn = spec.input_tokens is not None or spec.output_tokens is not None
    if drawn or spec.prefix_groups is not None:
        size = max(size, min(requests or DEFAULT_POOL, MAX_POOL))
    if dataset is None:
        if spec.input_tokens is not None:
            lengths = spec.input_tokens.draws(size, seed)
            base = [
                ({"role": "user", "content": rule.text(n, _seed(seed, "in", i))},)
                for i, n in enumerate(lengths)
            ]
            info["source"] = "synthetic"
            info["input_tokens"] = str(spec.input_tokens)
        else:
            base = [prompts[i % len(prompts)] for i in range(size)]
            info["source"] = "prompts"
        out = [None] * size
    else:
        base = [base[i % len(base)] for i in range(size)]
        out = [out[i % len(out)] for i in range(size)]
    if spec.output_tokens is not None:
        out = list(spec.output_tokens.draws(size, seed + 1))
        info["output_tokens"] = str(spec.output_tokens)
    elif spec.output_from_dataset:
        info["output_tokens"] = "dataset"
    if spec.turns_from_dataset and dataset is not None:
        return _conversations(dataset, spec, info, out)
    if spec.prefix_groups is not None and spec.prefix_tokens is not None:
        base = _with_prefixes(base, spec, rule, seed)
        info.update(
            prefix_groups=spec.prefix_groups,
            prefix_tokens=spec.prefix_tokens,
            prefix_cache_bust=spec.prefix_cache_bust,
        )
    return Workload(tuple(base), tuple(out), WorkloadInfo(items=len(base), **info))


def _conversations(
    dataset: Dataset, spec: WorkloadSpec, info: dict[str, Any], drawn: Sequence[int | None]
) -> Workload:
    """The pool of ``--turns dataset``: each item one conversation's user turns, each
    asking for its answer's length (with ``--output-len dataset``), else the item's."""
    prompts = tuple(tuple(message for message, _ in item.turns) for item in dataset.items)
    limits = tuple(
        tuple(
            answer if spec.output_from_dataset else drawn[index % len(drawn)]
            for _, answer in item.turns
        )
        for index, item in enumerate(dataset.items)
    )
    info["turns"] = "dataset"
    described = WorkloadInfo(items=len(prompts), **info)
    return Workload(prompts, tuple(t[0] for t in limits), described, limits)


def _with_prefixes(
    base: Sequence[tuple[Message, ...]], spec: WorkloadSpec, rule: TokenRule, seed: int
) -> list[tuple[Message, ...]]:
    """Each prompt's last message with its group's prefix ahead of its own text (with
    ``prefix_cache_bust``, a prefix of the same length of its own)."""
    groups, tokens = spec.prefix_groups or 1, spec.prefix_tokens or 1
    shared = [rule.text(tokens, _seed(seed, "prefix", g)) for g in range(groups)]
    out = []
    for index, messages in enumerate(base):
        if spec.prefix_cache_bust:
            prefix = rule.text(tokens, _seed(seed, "bust", index))
        else:
            prefix = shared[index % groups]
        last = messages[-1]
        text = f"{prefix}\n\n{last['content']}"
        out.append((*messages[:-1], {"role": last.get("role", "user"), "content": text}))
    return out


def fill_trace(trace: Trace, rule: TokenRule, *, seed: int) -> Trace:
    """The trace with a synthetic prompt of ``prompt_tokens`` tokens for each entry that
    gives a length but no prompt."""
    entries = tuple(
        dataclasses.replace(entry, prompt=rule.text(entry.prompt_tokens, _seed(seed, "trace", n)))
        if entry.prompt is None and entry.prompt_tokens is not None
        else entry
        for n, entry in enumerate(trace.entries)
    )
    return Trace(entries)


def _seed(seed: int, what: str, index: int) -> str:
    """The seed of one synthetic text: the run's seed, what it is for, and its index."""
    return f"{seed}:{what}:{index}"
