"""Gates: SLO files, each comparison, malformed input, JUnit and Markdown, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from harness.analysis.gate import (
    check,
    evaluate,
    parse_condition,
    parse_objectives,
    render_gate_markdown,
    render_junit,
    resolve_metric,
)
from harness.analysis.summary import summarize
from harness.errors import ConfigError
from harness.results import write_summary

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = {
    "requests": 100, "ok": 99, "errors": 1, "error_rate": 0.01,
    "ttft_s": {"p50": 0.2, "p95": 0.4, "p99": 0.6, "count": 99},
    "itl_s": {"p50": 0.02, "p99": 0.05, "count": 990},
    "tpot_s": {"p90": None, "count": 0},
    "e2e_s": {"p50": 1.5},
    "output_tokens_per_s": 1200.0, "requests_per_s": 8.0,
    "goodput": {"requests_per_s": 7.5, "share": 0.94, "slo": {"ttft": 0.5}},
}  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("condition", "passes"),
    [
        ("< 0.5", True), ("< 0.4", False),
        ("<= 0.4", True), ("<= 0.39", False),
        ("> 0.3", True), ("> 0.4", False),
        (">= 0.4", True), (">= 0.41", False),
        ("== 0.4", True), ("== 0.5", False),
        ("< 500 ms", True), ("<= 400ms", True), ("< 399 ms", False),
        ("<4e-1", False), ("< .41 s", True),
    ],
)  # fmt: skip
def test_each_comparison_on_ttft_p95(condition: str, passes: bool) -> None:
    verdict = check(SUMMARY, {"ttft.p95": condition})
    assert verdict.passed is passes
    assert verdict.results[0].measured == 0.4


@pytest.mark.parametrize(
    ("metric", "condition", "passes"),
    [
        ("error_rate", "< 2%", True), ("error_rate", "< 1%", False),
        ("error_rate", "<= 0.01", True),
        ("output_tokens_per_s", "> 1000", True), ("output_tokens_per_s", ">= 1200.5", False),
        ("requests_per_s", ">= 8", True), ("itl.p99", "< 50 ms", False), ("e2e.p50", "< 2", True),
        ("goodput.share", ">= 95%", False), ("goodput.requests_per_s", "> 7", True),
        ("errors", "== 1", True), ("requests", ">= 100", True),
    ],
)  # fmt: skip
def test_metric_names_resolve_in_the_summary(metric: str, condition: str, passes: bool) -> None:
    assert check(SUMMARY, {metric: condition}).passed is passes


def test_a_figure_the_run_lacks_fails_the_objective_as_not_measured() -> None:
    verdict = check(SUMMARY, {"tpot.p90": "< 0.05", "ttft_from_scheduled.p99": "< 1"})
    assert not verdict.passed
    assert [r.measured for r in verdict.results] == [None, None]
    assert "not measured" in verdict.results[0].detail
    assert resolve_metric({"ttft_s": {"p95": float("nan")}}, "ttft.p95") is None


SLO_FILE = """\
# the service's budget
[slo]
"ttft.p95" = "< 0.5"          # seconds
itl.p99 = "< 50 ms"           # a bare dotted key works too
'error_rate' = "< 1%"
"output_tokens_per_s" = "> 1000"
"""


def test_an_slo_file_gives_objectives_with_their_lines() -> None:
    objectives = parse_objectives(SLO_FILE, source="slo.toml")
    assert [(o.metric, o.op, o.threshold, o.line) for o in objectives] == [
        ("ttft.p95", "<", 0.5, 3), ("itl.p99", "<", 0.05, 4),
        ("error_rate", "<", 0.01, 5), ("output_tokens_per_s", ">", 1000.0, 6),
    ]  # fmt: skip
    verdict = evaluate(objectives, SUMMARY)
    assert [r.passed for r in verdict.results] == [True, False, False, True]


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('[slo]\n"ttft.p95" = "< 0.5"\n"ttft.p97" = "< 1"\n', "f.toml:3", "unknown metric"),
        ('[slo]\n\n"ttft.p95" = 0.5\n', "f.toml:3", "as a string"),
        ('[slo]\n"ttft.p95" = "<< 0.5"\n', "f.toml:2", "not a comparison"),
        ('[slo]\n"ttft.p95" = "< fast"\n', "f.toml:2", "not a comparison"),
        ('[slo]\n"error_rate" = "< 5 ms"\n', "f.toml:2", "latencies only"),
        ('[slo]\n"ttft.p95" = "< 5%"\n', "f.toml:2", "'%' fits"),
        ('[slo]\n"ttft.p95" = "< 0.5"\nitl.p99 = = 1\n', "f.toml:3", "not valid TOML"),
        ('[slo]\n"ttft.p95" = "< 0.5"\n"ttft.p95" = "< 0.6"\n', "f.toml:3", "not valid TOML"),
        ('[slo]\n"ttft.p95" = "< 0.5"\n\n[gates]\nx = 1\n', "f.toml:4", "one [slo] table"),
        ("# nothing here\n", "f.toml", "no objectives"),
    ],
)  # fmt: skip
def test_a_malformed_file_names_the_line_that_is_wrong(text: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_objectives(text, source="f.toml")
    assert caught.value.field == where
    assert words in caught.value.reason


def test_junit_has_one_testcase_per_objective_and_a_failure_per_breach() -> None:
    verdict = evaluate(parse_objectives(SLO_FILE), SUMMARY)
    root = ElementTree.fromstring(render_junit(verdict))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("4", "2")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "ttft.p95 < 0.5 s", "itl.p99 < 50 ms", "error_rate < 1%", "output_tokens_per_s > 1000",
    ]  # fmt: skip
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["itl.p99 < 50 ms", "error_rate < 1%"]
    failure = cases[1].find("failure")
    assert failure is not None
    assert "50 ms: breaches itl.p99 < 50 ms" in failure.get("message", "")


def test_markdown_suits_a_job_summary() -> None:
    verdict = evaluate(parse_objectives(SLO_FILE), SUMMARY)
    text = render_gate_markdown(verdict, run="reports/ci")
    assert text.startswith("## sse-harness gate ❌ failed: 2 of 4 objectives breached")
    assert "| `ttft.p95 < 0.5 s` | 0.4 s | ✅ pass |" in text
    assert "| `itl.p99 < 50 ms` | 50 ms | ❌ fail |" in text
    assert "| `error_rate < 1%` | 1% | ❌ fail |" in text
    passing = check(SUMMARY, {"ttft.p95": "< 0.5"})
    assert "✅ passed: 1 of 1 objectives met" in render_gate_markdown(passing)


def test_objectives_reject_unknown_names_at_construction() -> None:
    with pytest.raises(ConfigError):
        parse_condition("ttft.p42", "< 1")


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    figures = {**summarize([]), "version": "0.1.0", "config": {}, **SUMMARY}
    write_summary(folder / "summary.json", figures)
    return folder


def write_slo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"slo-{len(list(tmp_path.glob('slo-*')))}.toml"
    path.write_text(text)
    return path


@pytest.mark.slow  # the command in subprocesses
def test_gate_command_exit_codes_and_files(tmp_path: Path, run_folder: Path) -> None:
    passing = write_slo(tmp_path, '[slo]\n"ttft.p95" = "< 0.5"\n"error_rate" = "<= 1%"\n')
    junit, markdown = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = cli("gate", "--slo", str(passing), str(run_folder), "--junit", str(junit),
                 "--markdown", str(markdown))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "✅ passed" in result.stdout
    assert ElementTree.parse(junit).getroot().get("failures") == "0"
    assert markdown.read_text() == result.stdout

    breached = write_slo(tmp_path, '[slo]\n"ttft.p99" = "< 0.5"\n')
    result = cli("gate", "--slo", str(breached), str(run_folder))
    assert result.returncode == 1
    assert "❌ fail" in result.stdout

    malformed = write_slo(tmp_path, '[slo]\n"ttft.p95" = "< 0.5"\n"ttft.p42" = "< 1"\n')
    result = cli("gate", "--slo", str(malformed), str(run_folder))
    assert result.returncode == 2
    assert f"{malformed}:3: unknown metric 'ttft.p42'" in result.stderr

    result = cli("gate", "--slo", str(passing), str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "not a run folder" in result.stderr


@pytest.mark.slow  # a real run in a subprocess
def test_run_with_a_gate_runs_judges_and_writes_the_gate_files(tmp_path: Path) -> None:
    slo = write_slo(tmp_path, '[slo]\n"ttft.p95" = "< 5"\n"error_rate" = "== 0"\n'
                    '"requests" = ">= 12"\n"output_tokens_per_s" = "> 1e9"\n')  # fmt: skip
    out = tmp_path / "run"
    result = cli("run", "--requests", "12", "--concurrency", "4", "--mock-ttft-ms", "20",
                 "--mock-itl-ms", "2", "--mock-tokens", "5", "--quiet", "--out", str(out),
                 "--gate", str(slo))  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "❌ failed: 1 of 4 objectives breached" in result.stdout
    assert "| `output_tokens_per_s > 1e+09` |" in result.stdout
    junit = ElementTree.parse(out / "gate-junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures")) == ("4", "1")
    assert (out / "gate.md").read_text().startswith("## sse-harness gate ❌")
    assert (out / "report.html").read_text().count("<svg") >= 4

    malformed = write_slo(tmp_path, "[slo\n")
    before = set(tmp_path.iterdir())
    result = cli("run", "--requests", "1", "--out", str(tmp_path / "never"), "--gate",
                 str(malformed))  # fmt: skip
    assert result.returncode == 2
    assert f"{malformed}:1: not valid TOML" in result.stderr
    assert set(tmp_path.iterdir()) == before  # judged before anything ran


def test_the_examples_fit_the_command_line() -> None:
    from harness.analysis.gate import load_objectives
    from harness.cli import build_parser

    objectives = load_objectives(ROOT / "examples" / "slo.toml")
    assert [o.metric for o in objectives][:2] == ["ttft.p95", "itl.p99"]
    workflow = (ROOT / "examples" / "github-actions.yml").read_text()
    command = workflow.split("sse-harness run", 1)[1].split("\n\n", 1)[0].split()
    args = build_parser().parse_args(["run", *command])
    assert args.gate == Path("examples/slo.toml")
    junit, markdown = (str(args.out / name) for name in ("gate-junit.xml", "gate.md"))
    assert f"report_paths: {junit}" in workflow
    assert f'cat {markdown} >> "$GITHUB_STEP_SUMMARY"' in workflow
