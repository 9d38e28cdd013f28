"""``summary.json``: a typed ``RunSummary`` with its format version, written and read by
``harness.results`` alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis.summary import summarize
from harness.errors import ConfigError
from harness.record import RequestRecord
from harness.results import SUMMARY_FORMAT, Distribution, RunSummary, read_summary, write_summary

MS = 1_000_000


def figures() -> dict:
    records = [
        RequestRecord(request_id=f"r{i}", t_sent_ns=i * MS, t_first_token_ns=(i + 30) * MS,
                      t_end_ns=(i + 90) * MS, token_times_ns=[(i + 30 + 20 * k) * MS
                                                              for k in range(4)])
        for i in range(5)
    ]  # fmt: skip
    return {**summarize(records), "version": "0.1.0", "config": {"url": "http://127.0.0.1:1/"}}


def test_a_summary_is_written_with_its_format_and_read_back_the_same(tmp_path: Path) -> None:
    summary = RunSummary.of(figures())
    write_summary(tmp_path / "summary.json", summary)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["format"] == SUMMARY_FORMAT
    assert on_disk["dialect"] is None  # kept, where the fields a run lacks are left out
    assert "sweep" not in on_disk
    again = read_summary(tmp_path)  # the run folder will do
    assert again == summary
    assert isinstance(again.ttft_s, Distribution)
    assert again.ttft_s.p50 == pytest.approx(0.030)
    assert again.requests == 5


def test_a_figure_without_a_field_is_refused_rather_than_lost(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['server_side'\]"):
        write_summary(tmp_path / "summary.json", {**figures(), "server_side": {"p50": 1}})
    assert not (tmp_path / "summary.json").exists()


def test_a_value_of_the_wrong_type_is_a_config_error_naming_the_summary() -> None:
    with pytest.raises(ConfigError, match="not a run summary") as caught:
        RunSummary.of({**figures(), "requests": "five"})
    assert caught.value.field == "summary"


def test_a_summary_from_before_the_format_was_numbered_reads_as_format_0(tmp_path: Path) -> None:
    data = RunSummary.of(figures()).as_dict()
    del data["format"]
    (tmp_path / "summary.json").write_text(json.dumps(data))
    assert read_summary(tmp_path / "summary.json").format == 0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "holds no run summary"),
        (None, "cannot read"),
        ('{"format": 99}', "format 99 is newer than this sse-harness reads"),
    ],
    ids=["not-json", "not-an-object", "missing", "newer-format"],
)
def test_a_file_that_is_no_readable_summary_is_one_clear_error(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "summary.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=says):
        read_summary(path)


def test_the_gate_judges_a_summary_as_read_or_as_a_mapping(tmp_path: Path) -> None:
    from harness import gate

    write_summary(tmp_path / "summary.json", RunSummary.of(figures()))
    typed = read_summary(tmp_path)
    for summary in (typed, typed.as_dict()):
        assert gate(summary, {"ttft.p50": "< 31 ms", "error_rate": "== 0"}).passed
        assert not gate(summary, {"ttft.p50": "< 29 ms"}).passed


def test_the_servers_own_view_is_kept_and_a_summary_without_it_still_reads(
    tmp_path: Path,
) -> None:
    server = {"recognised": "vllm", "server_ttft_s": {"p50": 0.1, "bound_s": {"p50": 0.02}}}
    gaps = {"ttft_p50_ms": 3.0, "bound_ms": {"ttft_p50_ms": 20.0}}
    write_summary(tmp_path / "summary.json", {**figures(), "server": server,
                                              "client_vs_server": gaps})  # fmt: skip
    again = read_summary(tmp_path)
    assert again.server == server
    assert again.client_vs_server == gaps
    assert again.format == SUMMARY_FORMAT  # added fields keep the format
    older = RunSummary.of(figures())
    assert older.server is None
    assert "server" not in older.as_dict()
