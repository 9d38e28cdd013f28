"""Prompts from a local dataset file: ShareGPT JSON, JSONL, CSV or Parquet, read with
pandas (Parquet through pyarrow). Nothing is downloaded.

* ShareGPT: a JSON array (or JSONL) of ``{"conversations": [{"from", "value"}, ...]}``.
  The first ``human`` turn is the prompt and the first ``gpt`` turn after it the answer
  whose length ``--output-len dataset`` asks for, as vLLM's benchmark does. A
  conversation without a human turn (or, for ``--output-len dataset``, without an
  answer) is skipped and counted.
* JSONL, CSV, Parquet: a ``prompt`` column (or ``messages``: a list of ``{"role",
  "content"}``) and an optional ``output_tokens`` column.

A bad file raises one ``ConfigError`` naming the file, the row (1-based, in file order)
and the field.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.load.lengths import TokenRule
from harness.load.payloads import Message

__all__ = ["DATASET_FORMATS", "Dataset", "DatasetItem", "detect_format", "load_dataset"]

DATASET_FORMATS = ("sharegpt", "jsonl", "csv", "parquet")
#: How many bytes of a file detection reads.
_SNIFF_BYTES = 64 * 1024
#: A ShareGPT record's key, as it opens a record (not words inside a prompt).
_CONVERSATIONS = re.compile(r'^\[?\s*\{[^{]*?"conversations"\s*:')


@dataclass(frozen=True, slots=True)
class DatasetItem:
    """One prompt of a dataset: the messages to send, its token count by the run's rule,
    and the output length the dataset gives (None when it gives none).

    ``turns`` holds every user turn of the conversation with the length of the answer
    that follows it (None where none does), for ``--turns dataset``."""

    messages: tuple[Message, ...]
    prompt_tokens: int
    output_tokens: int | None = None
    turns: tuple[tuple[Message, int | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Dataset:
    """The prompts kept, and how many rows the reading skipped or filtered out."""

    items: tuple[DatasetItem, ...]
    format: str
    rows: int
    skipped: int = 0
    filtered: int = 0


def detect_format(path: Path) -> str:
    """The format of ``path``: Parquet by its magic bytes, CSV by its name, ShareGPT when
    its first record has ``conversations``, else JSONL.

    Raises:
        ConfigError: the file cannot be read.
    """
    try:
        with path.open("rb") as file:
            head = file.read(_SNIFF_BYTES)
    except OSError as exc:
        raise ConfigError("dataset", f"cannot read {path}: {exc.strerror}") from exc
    if head.startswith(b"PAR1"):
        return "parquet"
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return "sharegpt" if _CONVERSATIONS.search(text[:4096]) else "jsonl"


def load_dataset(
    path: Path,
    rule: TokenRule,
    *,
    data_format: str | None = None,
    output_from_dataset: bool = False,
    min_input_tokens: int | None = None,
    max_input_tokens: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Read, filter and sample the prompts of a dataset file.

    Args:
        path: the file.
        rule: counts tokens (the prompt's, and the ShareGPT answer's).
        data_format: one of ``DATASET_FORMATS``; None detects it.
        output_from_dataset: each item needs an output length (``--output-len dataset``).
        min_input_tokens, max_input_tokens: keep prompts within these token counts.
        sample: keep this many, drawn without replacement with ``seed`` (None: all, in
            file order).
        seed: the run's seed.

    Raises:
        ConfigError: the file cannot be read, a row does not fit its format (naming the
            file, the row and the field), or nothing is left after filtering.
    """
    fmt = data_format or detect_format(path)
    if fmt not in DATASET_FORMATS:
        raise ConfigError(
            "dataset-format", f"must be one of {', '.join(DATASET_FORMATS)}, not {fmt!r}"
        )
    rows = _read_rows(path, fmt)
    items: list[DatasetItem] = []
    skipped = 0
    for number, row in enumerate(rows, start=1):
        if fmt == "sharegpt":
            item = _sharegpt_item(path, number, row, rule, output_from_dataset)
        else:
            item = _table_item(path, number, row, rule, output_from_dataset)
        if item is None:
            skipped += 1
        else:
            items.append(item)
    kept = [
        item
        for item in items
        if (min_input_tokens is None or item.prompt_tokens >= min_input_tokens)
        and (max_input_tokens is None or item.prompt_tokens <= max_input_tokens)
    ]
    if not kept:
        raise ConfigError(
            "dataset", f"{path}: no prompt left of {len(rows)} rows after skipping and filtering"
        )
    filtered = len(items) - len(kept)
    if sample is not None:
        if sample > len(kept):
            raise ConfigError(
                "dataset-sample", f"asks for {sample} prompts; {path} has {len(kept)} to draw from"
            )
        kept = random.Random(seed).sample(kept, sample)
    return Dataset(
        items=tuple(kept),
        format=fmt,
        rows=len(rows),
        skipped=skipped,
        filtered=filtered,
    )


def _read_rows(path: Path, fmt: str) -> list[Mapping[str, Any]]:
    """The file's records, as mappings, read with pandas."""
    import pandas as pd  # only when a dataset is read: the CLI starts without it

    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "csv":
            frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        else:
            text = path.read_text(encoding="utf-8")
            lines = not text.lstrip("\ufeff \t\r\n").startswith("[")
            if lines:
                _check_json_lines(path, text)
            frame = pd.read_json(path, lines=lines, orient="records", dtype=False)
    except ConfigError:
        raise
    except ImportError as exc:
        raise ConfigError(
            "dataset", f"{path}: Parquet needs pyarrow: pip install 'sse-harness[datasets]'"
        ) from exc
    except OSError as exc:
        raise ConfigError("dataset", f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("dataset", f"{path}: not a {fmt} file ({first})") from exc
    frame = frame.astype(object).where(frame.notna(), None)
    return [dict(zip(frame.columns, values, strict=True)) for values in frame.itertuples(False)]


def _check_json_lines(path: Path, text: str) -> None:
    """Name the first line of a JSONL file that is not a JSON object (pandas does not)."""
    number = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise ConfigError("dataset", f"{path}: row {number}: an empty line")
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ConfigError("dataset", f"{path}: row {number}: not JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise ConfigError("dataset", f"{path}: row {number}: not a JSON object")
    if number == 0:
        raise ConfigError("dataset", f"{path}: the file is empty")


def _bad(path: Path, number: int, field: str, why: str) -> ConfigError:
    return ConfigError("dataset", f"{path}: row {number}: field {field!r}: {why}")


def _sharegpt_item(
    path: Path, number: int, row: Mapping[str, Any], rule: TokenRule, with_output: bool
) -> DatasetItem | None:
    turns = _sequence(row.get("conversations"))
    if turns is None:
        raise _bad(path, number, "conversations", "missing, or not a list of turns")
    spoken: list[tuple[str, str]] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str):
            raise _bad(path, number, f"conversations[{index}]", 'expected {"from", "value"}')
        speaker = turn.get("from")
        if speaker in ("human", "user"):
            spoken.append(("user", turn["value"]))
        elif speaker in ("gpt", "assistant", "chatgpt"):
            spoken.append(("assistant", turn["value"]))
    pairs = _user_turns(spoken, rule)
    if not pairs or not pairs[0][0]["content"].strip():
        return None
    first, output = pairs[0]
    if with_output and not output:
        return None
    return DatasetItem((first,), rule.count(first["content"]), output, pairs)


def _user_turns(
    spoken: Sequence[tuple[str, str]], rule: TokenRule
) -> tuple[tuple[Message, int | None], ...]:
    """Each user turn, with the length of the first answer after it (None: no answer
    before the next user turn)."""
    pairs: list[tuple[Message, int | None]] = []
    for role, text in spoken:
        if role == "user":
            pairs.append(({"role": "user", "content": text}, None))
        elif pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], rule.count(text))
    return tuple(pairs)


def _table_item(
    path: Path, number: int, row: Mapping[str, Any], rule: TokenRule, with_output: bool
) -> DatasetItem | None:
    messages: tuple[Message, ...]
    if row.get("prompt") is not None:
        if not isinstance(row["prompt"], str):
            raise _bad(path, number, "prompt", "not a string")
        messages = ({"role": "user", "content": row["prompt"]},)
    elif row.get("messages") is not None:
        messages = _messages(path, number, row["messages"])
    elif "conversations" in row:
        return _sharegpt_item(path, number, row, rule, with_output)
    else:
        raise _bad(path, number, "prompt", "missing (give a prompt or a messages column)")
    output = row.get("output_tokens")
    if output is not None:
        try:
            output = int(output)
            if output < 1 or output != row["output_tokens"]:
                raise ValueError
        except (TypeError, ValueError):
            raise _bad(path, number, "output_tokens", "not a whole number of at least 1") from None
    elif with_output:
        raise _bad(path, number, "output_tokens", "missing, and --output-len dataset needs it")
    tokens = sum(rule.count(m["content"]) for m in messages)
    spoken = [(str(m.get("role")), m["content"]) for m in messages]
    turns = _user_turns(spoken, rule) if len(messages) > 1 else ()
    return DatasetItem(messages, tokens, output, turns or ((messages[-1], output),))


def _messages(path: Path, number: int, value: Any) -> tuple[Message, ...]:
    if isinstance(value, str):  # a CSV cell holds the list as JSON
        try:
            value = json.loads(value)
        except ValueError:
            raise _bad(path, number, "messages", "not a JSON list") from None
    items = _sequence(value)
    if not items:
        raise _bad(path, number, "messages", "not a non-empty list")
    out = []
    for index, message in enumerate(items):
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
            raise _bad(path, number, f"messages[{index}]", 'expected {"role", "content"}')
        out.append({"role": str(message.get("role") or "user"), "content": message["content"]})
    return tuple(out)


def _sequence(value: Any) -> Sequence[Any] | None:
    """A list as JSON gives it, or as Parquet does (a NumPy array)."""
    if isinstance(value, list | tuple):
        return value
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        listed = value.tolist()
        return listed if isinstance(listed, list) else None
    return None
