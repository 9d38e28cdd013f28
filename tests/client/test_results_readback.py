"""A run keeps no record in memory while it runs: they are written as they complete and
read back from ``results.jsonl`` for the figures, this run's lines only."""

from __future__ import annotations

import gc
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.record import ErrorKind, Outcome, RequestRecord, TokenSource
from harness.results import ResultsWriter, read_all_records, read_records


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


_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_maybe_int = st.none() | _ints
_text = st.text(max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | _ints | _text | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_records = st.builds(
    RequestRecord,
    request_id=_text,
    user=_ints,
    t_first_token_ns=_maybe_int,
    status=_maybe_int,
    content_type=st.none() | _text,
    token_times_ns=st.lists(_ints, max_size=5),
    usage=st.none() | st.dictionaries(_text, _json, max_size=3),
    done_sentinel=st.booleans(),
    token_kinds=st.none() | st.dictionaries(_text, _ints, max_size=3),
    retry_after_s=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    attempts=st.none() | st.lists(st.dictionaries(_text, _json, max_size=2), max_size=2),
    outcome=st.sampled_from(Outcome),
    token_source=st.sampled_from(TokenSource),
    error_kind=st.none() | st.sampled_from(ErrorKind),
    token_times_user_ns=st.none() | st.lists(_ints, max_size=5),
)


@settings(max_examples=200, deadline=None)
@given(record=_records)
def test_a_record_reads_back_as_the_full_reading_reads_it(record: RequestRecord) -> None:
    """The lines this version writes are decoded by msgspec straight into records: what
    it gives is what ``json`` and ``from_mapping`` give, field for field."""
    line = record.to_json()
    full = RequestRecord.from_mapping(json.loads(line))
    assert full == record
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "results.jsonl"
        path.write_text(line + "\n", encoding="utf-8")
        assert list(read_records(path)) == [full]


def test_lines_the_fast_reading_refuses_take_the_full_reading(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    lines = [
        '{"request_id":"older","token_times_ns":[1],"v":1}',  # an older version
        '{"request_id":"float user","user":1.5,"v":2}',  # msgspec refuses; json reads it
        '{"v":2,"request_id":"version first"}',  # not as this version writes it
    ]
    path.write_text("\n".join(lines) + "\n")
    read = list(read_records(path))
    assert [r.request_id for r in read] == ["older", "float user", "version first"]
    assert read[1].user == 1.5
    path.write_text('{"request_id":"future","v":99}\n{"request_id":"x","v":2}\n')
    with pytest.raises(ValueError, match="version 99"):
        list(read_records(path))


def test_this_versions_lines_skip_the_full_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path) as writer:
        for record in records("a", "b"):
            writer.write(record)

    def refused(data: object) -> RequestRecord:
        raise AssertionError("the full reading was used")

    monkeypatch.setattr(RequestRecord, "from_mapping", refused)
    assert [r.request_id for r in read_records(path)] == ["a", "b"]


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_every_record_leaves_the_collector_as_it_was(tmp_path: Path, enabled: bool) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path) as writer:
        for record in records("a", "b"):
            writer.write(record)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        assert read_all_records(path) == list(read_records(path))
        assert gc.isenabled() is enabled
        path.write_text('{"broken\n{"request_id":"x","v":2}\n')
        with pytest.raises(ValueError, match="not a JSON record"):
            read_all_records(path)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
