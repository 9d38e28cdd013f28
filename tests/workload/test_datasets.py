"""Datasets read from small files made here: ShareGPT, JSONL, CSV and Parquet; detection,
filters, seeded sampling, and bad files named by file, row and field in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.load.datasets import detect_format, load_dataset
from harness.load.lengths import WordRule

RULE = WordRule()


def sharegpt(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": str(i),
            "conversations": [
                {"from": "system", "value": "be brief"},
                {"from": "human", "value": " ".join(["ask"] * (i + 1))},
                {"from": "gpt", "value": " ".join(["answer"] * (2 * i + 1))},
                {"from": "human", "value": "and then?"},
            ],
        }
        for i in range(n)
    ]


def test_sharegpt_gives_first_human_turns_and_first_answer_lengths(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(sharegpt(5)))
    dataset = load_dataset(path, RULE, output_from_dataset=True)
    assert dataset.format == "sharegpt"
    assert [item.messages for item in dataset.items] == [
        ({"role": "user", "content": " ".join(["ask"] * (i + 1))},) for i in range(5)
    ]
    assert [item.prompt_tokens for item in dataset.items] == [1, 2, 3, 4, 5]
    assert [item.output_tokens for item in dataset.items] == [1, 3, 5, 7, 9]


def test_sharegpt_conversations_without_a_prompt_or_answer_are_skipped_and_counted(
    tmp_path: Path,
) -> None:
    rows = [
        *sharegpt(2),
        {"conversations": [{"from": "gpt", "value": "no question"}]},
        {"conversations": [{"from": "human", "value": "no answer"}]},
    ]
    path = tmp_path / "sg.jsonl"  # ShareGPT as JSON lines, detected by its content
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with_answers = load_dataset(path, RULE, output_from_dataset=True)
    assert (len(with_answers.items), with_answers.skipped, with_answers.rows) == (2, 2, 4)
    any_prompt = load_dataset(path, RULE)
    assert (len(any_prompt.items), any_prompt.skipped) == (3, 1)
    assert any_prompt.items[-1].output_tokens is None


def table_rows() -> list[dict[str, object]]:
    return [{"prompt": f"word {'x ' * i}".strip(), "output_tokens": 10 + i} for i in range(6)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_tables_give_their_prompt_and_output_columns(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame(table_rows())
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    assert detect_format(path) == fmt
    dataset = load_dataset(path, RULE, output_from_dataset=True)
    assert [item.prompt_tokens for item in dataset.items] == [1, 2, 3, 4, 5, 6]
    assert [item.output_tokens for item in dataset.items] == [10, 11, 12, 13, 14, 15]
    assert dataset.items[2].messages == ({"role": "user", "content": "word x x"},)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_message_lists_are_sent_as_they_are(tmp_path: Path, fmt: str) -> None:
    messages = [
        {"role": "system", "content": "you are terse"},
        {"role": "user", "content": "one two three"},
    ]
    path = tmp_path / f"m.{fmt}"
    if fmt == "csv":  # a CSV cell holds the list as JSON
        pd.DataFrame([{"messages": json.dumps(messages)}]).to_csv(path, index=False)
    elif fmt == "parquet":
        pd.DataFrame([{"messages": messages}]).to_parquet(path)
    else:
        path.write_text(json.dumps({"messages": messages}) + "\n")
    (item,) = load_dataset(path, RULE).items
    assert item.messages == tuple(messages)
    assert item.prompt_tokens == 6


def test_filters_and_seeded_samples(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(sharegpt(30)))
    kept = load_dataset(path, RULE, min_input_tokens=5, max_input_tokens=20)
    assert [item.prompt_tokens for item in kept.items] == list(range(5, 21))
    assert kept.filtered == 14
    first = load_dataset(path, RULE, sample=10, seed=7)
    assert first == load_dataset(path, RULE, sample=10, seed=7)
    assert len({item.prompt_tokens for item in first.items}) == 10  # without replacement
    assert first.items != load_dataset(path, RULE, sample=10, seed=8).items
    with pytest.raises(ConfigError, match="asks for 31 prompts"):
        load_dataset(path, RULE, sample=31)
    with pytest.raises(ConfigError, match="no prompt left of 30 rows"):
        load_dataset(path, RULE, min_input_tokens=31)


@pytest.mark.parametrize(
    ("content", "fmt", "where"),
    [
        ('{"prompt": "a"}\n{"prompt": "b"\n', "jsonl", "row 2: not JSON"),
        ('{"prompt": "a"}\n[1, 2]\n', "jsonl", "row 2: not a JSON object"),
        ('{"prompt": "a", "output_tokens": 1}\n{"text": "b"}\n', "jsonl",
         "row 2: field 'prompt': missing"),
        ('{"prompt": 5}\n', "jsonl", "row 1: field 'prompt': not a string"),
        ('{"prompt": "a", "output_tokens": 0}\n', "jsonl", "row 1: field 'output_tokens'"),
        ('{"prompt": "a", "output_tokens": "x"}\n', "jsonl", "row 1: field 'output_tokens'"),
        ('{"prompt": "a", "output_tokens": 2.5}\n', "jsonl", "row 1: field 'output_tokens'"),
        ('{"messages": [{"role": "user"}]}\n', "jsonl", "row 1: field 'messages[0]'"),
        ("prompt,output_tokens\nhello,3\nbye,\n", "csv", "row 2: field 'output_tokens': missing"),
        ('[{"conversations": [{"from": "human", "value": "q"}]}, {"conversations": 3}]',
         "sharegpt", "row 2: field 'conversations'"),
        ('[{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt"}]}]',
         "sharegpt", "row 1: field 'conversations[1]'"),
        ("[1, 2", "sharegpt", "not a sharegpt file"),
        ("", "jsonl", "the file is empty"),
    ],
)  # fmt: skip
def test_a_bad_file_is_named_by_file_row_and_field_in_one_line(
    tmp_path: Path, content: str, fmt: str, where: str
) -> None:
    path = tmp_path / "bad.data"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_dataset(path, RULE, data_format=fmt, output_from_dataset=True)
    message = str(caught.value)
    assert caught.value.field == "dataset"
    assert str(path) in message
    assert where in message
    assert "\n" not in message


def test_unreadable_and_unknown_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.json"):
        load_dataset(tmp_path / "missing.json", RULE)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(ConfigError, match=r"broken\.parquet: not a parquet file"):
        load_dataset(broken, RULE)
    with pytest.raises(ConfigError, match="must be one of"):
        load_dataset(broken, RULE, data_format="xml")


def test_every_user_turn_is_kept_with_its_answer_length(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(sharegpt(2)))
    item = load_dataset(path, RULE).items[1]
    assert item.turns == (
        ({"role": "user", "content": "ask ask"}, 3),
        ({"role": "user", "content": "and then?"}, None),  # no answer follows it
    )
    table = tmp_path / "m.jsonl"
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b c"},
                {"role": "user", "content": "d"}]  # fmt: skip
    table.write_text(json.dumps({"messages": messages}) + "\n")
    (row,) = load_dataset(table, RULE).items
    assert row.turns == (
        ({"role": "user", "content": "a"}, 2),
        ({"role": "user", "content": "d"}, None),
    )


def test_a_prompt_that_speaks_of_conversations_is_no_sharegpt(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": 'say "conversations": twice'}) + "\n")
    assert detect_format(path) == "jsonl"
    spaced = tmp_path / "s.json"
    spaced.write_text('[\n  {\n    "id": "1",\n    "conversations": []\n  }\n]')
    assert detect_format(spaced) == "sharegpt"
