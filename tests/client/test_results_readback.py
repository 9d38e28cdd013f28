"""A run keeps no record in memory while it runs: they are written as they complete and
read back from ``results.jsonl`` for the figures, this run's lines only."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.record import RequestRecord
from harness.results import ResultsWriter, read_records


def records(*ids: str) -> list[RequestRecord]:
    return [RequestRecord(request_id=i, token_times_ns=[1, 2, 3]) for i in ids]


def test_a_writer_reads_back_its_own_records_after_an_older_runs(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path) as old:
        for record in records("old-0", "old-1"):
            old.write(record)
    with ResultsWriter(path) as writer:
        first = writer.offset
        assert first == writer.start_offset > 0
        for record in records("new-0", "new-1"):
            writer.write(record)
        middle = writer.offset
        writer.write(records("new-2")[0])
        assert [r.request_id for r in read_records(path, offset=first)] == [
            "new-0",
            "new-1",
            "new-2",
        ]
        assert [r.request_id for r in read_records(path, offset=middle)] == ["new-2"]
    assert [r.token_times_ns for r in read_records(path)] == [[1, 2, 3]] * 5


def test_a_last_line_cut_mid_write_is_skipped_and_a_bad_line_before_it_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path) as writer:
        writer.write(records("a")[0])
    with path.open("a") as file:
        file.write('{"v": 2, "request_id": "cut')
    assert [r.request_id for r in read_records(path)] == ["a"]
    path.write_text('{"broken\n' + records("b")[0].to_json() + "\n")
    with pytest.raises(ValueError, match=":1: not a JSON record"):
        list(read_records(path))
