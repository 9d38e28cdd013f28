"""Performance gates: an SLO file's objectives judged against a run's summary.

An SLO file is TOML with one ``[slo]`` table; each key names a figure of
``summary.json`` and each value a comparison with a threshold::

    [slo]
    "ttft.p95" = "< 0.5"          # seconds, or "< 500 ms"
    "itl.p99" = "< 50 ms"
    "error_rate" = "< 1%"
    "output_tokens_per_s" = "> 1000"
    "client.bound" = "== false"     # the client itself was not the bottleneck
    "server.kv_cache_usage.max" = "< 0.9"   # the server's own figures (--server-metrics)
    "server.server_ttft_s.p99" = "< 500 ms"
    "client_vs_server.ttft_p50_ms" = "< 20 ms"

``load_objectives`` reads such a file into ``Objective`` values (a malformed file raises
``ConfigError`` naming the file and line), ``evaluate`` judges them against a summary and
returns a ``Verdict``, and ``render_junit`` / ``render_gate_markdown`` render the verdict
for CI. Only the command line turns a verdict into an exit code.
"""

from __future__ import annotations

import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from harness.errors import ConfigError
from harness.results import RunSummary

__all__ = [
    "METRIC_NAMES",
    "Objective",
    "ObjectiveResult",
    "Verdict",
    "check",
    "evaluate",
    "load_objectives",
    "parse_objectives",
    "render_gate_markdown",
    "render_junit",
    "resolve_metric",
]

#: Latency families: ``<family>.<statistic>``, in seconds.
_LATENCIES = {
    "ttft": "ttft_s",
    "itl": "itl_s",
    "tpot": "tpot_s",
    "e2e": "e2e_s",
    "ttft_from_scheduled": "ttft_from_scheduled_s",
}
_STATISTICS = ("p50", "p90", "p95", "p99", "p999", "mean", "max")
#: Plain figures: name -> (path in the summary, unit).
_SCALARS: dict[str, tuple[tuple[str, ...], str]] = {
    "error_rate": (("error_rate",), "share"),
    "output_tokens_per_s": (("output_tokens_per_s",), ""),
    "requests_per_s": (("requests_per_s",), ""),
    "goodput.requests_per_s": (("goodput", "requests_per_s"), ""),
    "goodput.share": (("goodput", "share"), "share"),
    "requests": (("requests",), ""),
    "errors": (("errors",), ""),
    "ok": (("ok",), ""),
}
#: Yes-or-no figures, judged with ``== true`` or ``== false``: name -> path in the summary.
_FLAGS: dict[str, tuple[str, ...]] = {
    "client.bound": ("client", "bound"),
}
METRIC_NAMES = (
    *(f"{family}.{stat}" for family in _LATENCIES for stat in _STATISTICS),
    *_SCALARS,
    *_FLAGS,
)
#: The server's figures (``summary.json``'s ``server`` block): ``server.<figure>[.<stat>]``,
#: ``server.series.<selector>.<stat>``, and ``client_vs_server.<gap>_ms`` (a latency).
_SERVER_PREFIXES = ("server.", "client_vs_server.")
_SERVER_SHARES = ("server.kv_cache_usage.", "server.prefix_cache_hit_rate")
_FLAG_CONDITION = re.compile(r"^\s*==\s*(true|false)\s*$", re.IGNORECASE)

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(
    r"^\s*(<=|>=|==|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
    r"(ms|s|%)?\s*$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Objective:
    """One line of an SLO file: ``metric op threshold``.

    Attributes:
        metric: the figure's name, e.g. ``ttft.p95`` or ``error_rate``.
        op: one of ``<``, ``<=``, ``>``, ``>=``, ``==``.
        threshold: in the figure's own unit (seconds, a share from 0 to 1, or per second).
        unit: how the threshold was written (``s``, ``ms``, ``%`` or empty), for display.
        line: the line of the SLO file it came from, when it came from one.
    """

    metric: str
    op: str
    threshold: float
    unit: str = ""
    line: int | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRIC_NAMES and not _is_server(self.metric):
            raise ConfigError("slo", f"unknown metric {self.metric!r}")
        if self.op not in _OPERATORS:
            raise ConfigError("slo", f"unknown comparison {self.op!r}")

    def holds(self, measured: float) -> bool:
        return _OPERATORS[self.op](measured, self.threshold)

    def show(self, value: float) -> str:
        """``value`` (in the figure's unit) as the objective was written."""
        if self.unit == "flag":
            return "true" if value else "false"
        if self.unit == "ms":
            return f"{value * 1000:.4g} ms"
        if self.unit == "%":
            return f"{value * 100:.4g}%"
        return f"{value:.4g}" + (" s" if self.unit == "s" else "")

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.show(self.threshold)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectiveResult:
    """An objective with what was measured; ``measured`` is None when the run has no such
    figure (no successful request, or no SLO for goodput), which fails the objective."""

    objective: Objective
    measured: float | None
    passed: bool

    @property
    def detail(self) -> str:
        if self.measured is None:
            if _is_server(self.objective.metric):
                return "not measured (no such figure of the server: see summary.json's server)"
            return "not measured (no requests to measure it on)"
        shown = self.objective.show(self.measured)
        return f"{shown}: {'meets' if self.passed else 'breaches'} {self.objective}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Every objective's result; the gate passes when all hold."""

    results: tuple[ObjectiveResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[ObjectiveResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def __str__(self) -> str:
        head = "passed" if self.passed else f"failed ({len(self.failures)} breached)"
        lines = [f"gate {head}"]
        lines += [
            f"  {'ok  ' if r.passed else 'FAIL'} {r.objective.metric}: {r.detail}"
            for r in self.results
        ]
        return "\n".join(lines)


def parse_condition(metric: str, condition: str, *, line: int | None = None) -> Objective:
    """``"< 0.5"``, ``"<= 300 ms"`` or ``"< 1%"`` for ``metric`` as an ``Objective``.

    Raises:
        ConfigError: an unknown metric, comparison or unit, or a unit that does not fit.
    """
    if metric not in METRIC_NAMES and not _is_server(metric):
        families = ", ".join(_LATENCIES)
        raise ConfigError(
            "slo",
            f"unknown metric {metric!r}; use <{families}>.<"
            f"{'|'.join(_STATISTICS)}>, {', '.join(_SCALARS)} or "
            f"{', '.join(_FLAGS)}, or the server's: server.<figure>.<stat>, "
            "client_vs_server.<gap>",
        )
    if not isinstance(condition, str):
        raise ConfigError(
            "slo", f'{metric}: write a comparison as a string, e.g. "< 0.5", not {condition!r}'
        )
    if metric in _FLAGS:
        flag = _FLAG_CONDITION.match(condition)
        if flag is None:
            raise ConfigError("slo", f'{metric}: write "== false" or "== true", not {condition!r}')
        threshold = 1.0 if flag.group(1).lower() == "true" else 0.0
        return Objective(metric=metric, op="==", threshold=threshold, unit="flag", line=line)
    match = _CONDITION.match(condition)
    if match is None:
        raise ConfigError(
            "slo",
            f"{metric}: {condition!r} is not a comparison "
            '(<, <=, >, >=, == and a number, e.g. "< 0.5")',
        )
    op, number, unit = match.group(1), float(match.group(2)), match.group(3) or ""
    kind = _kind(metric)
    if unit in ("s", "ms") and kind != "latency":
        raise ConfigError("slo", f"{metric}: {unit!r} fits latencies only")
    if unit == "%" and kind != "share":
        raise ConfigError("slo", f"{metric}: '%' fits shares only (error_rate, goodput.share, ...)")
    threshold = number / 1000 if unit == "ms" else number / 100 if unit == "%" else number
    if kind == "latency" and not unit:
        unit = "s"
    return Objective(metric=metric, op=op, threshold=threshold, unit=unit, line=line)


def parse_objectives(text: str, *, source: str = "<slo>") -> tuple[Objective, ...]:
    """The objectives of an SLO file's text.

    Raises:
        ConfigError: the text is not TOML, or a key or value is wrong; its ``field`` is
            ``source:line``.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        where = f"{source}:{found.group(1)}" if found else source
        raise ConfigError(where, f"not valid TOML: {exc}") from exc
    lines = text.splitlines()
    for key in data:
        if key != "slo":
            raise ConfigError(
                f"{source}:{_line_of(lines, key)}",
                f"unknown {key!r}: the file holds one [slo] table",
            )
    table = data.get("slo")
    if not isinstance(table, dict) or not table:
        raise ConfigError(source, "no objectives: add an [slo] table with at least one line")
    objectives = []
    for metric, condition in _flatten(table):
        line = _line_of(lines, metric, start=_table_start(lines))
        try:
            objectives.append(parse_condition(metric, condition, line=line))
        except ConfigError as exc:
            raise ConfigError(f"{source}:{line}", exc.reason) from exc
    return tuple(objectives)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Keys as written: a bare ``ttft.p95 = ...`` is a nested table in TOML."""
    items: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def load_objectives(path: Path) -> tuple[Objective, ...]:
    """The objectives of the SLO file at ``path``.

    Raises:
        ConfigError: the file cannot be read or is malformed (names the file and line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read the SLO file: {exc}") from exc
    return parse_objectives(text, source=str(path))


def _table_start(lines: Sequence[str]) -> int:
    for number, text in enumerate(lines):
        if text.strip().startswith("[slo]"):
            return number
    return 0


def _line_of(lines: Sequence[str], key: str, *, start: int = 0) -> int:
    """The 1-based line where ``key`` is set (quoted whole, or dotted), else the table's."""
    dotted = r"\s*\.\s*".join(
        rf"""(?:{re.escape(p)}|"{re.escape(p)}"|'{re.escape(p)}')""" for p in key.split(".")
    )
    quoted = rf"""(?:"{re.escape(key)}"|'{re.escape(key)}')"""
    key_re = f"(?:{quoted}|{dotted})"
    pattern = re.compile(rf"^\s*(?:{key_re}\s*=|\[\s*{key_re}\s*\])")
    for number in range(start, len(lines)):
        if pattern.match(lines[number]):
            return number + 1
    return start + 1


def _is_server(metric: str) -> bool:
    return metric.startswith(_SERVER_PREFIXES) and len(metric.split(".")) >= 2


def _kind(metric: str) -> str:
    """``latency`` (seconds), ``share`` (0 to 1) or ``""`` (a count or a rate)."""
    if _is_server(metric):
        if metric.startswith("client_vs_server.") or "_s." in metric or metric.endswith("_s"):
            return "latency"
        return "share" if metric.startswith(_SERVER_SHARES) else ""
    return "latency" if metric.split(".")[0] in _LATENCIES else _SCALARS[metric][1]


def _server_value(summary: Mapping[str, Any], metric: str) -> Any:
    """A server figure: the path's keys in the summary (a series' selector whole);
    ``client_vs_server``'s gaps in seconds, like every other latency."""
    if metric.startswith("server.series."):
        name, _, stat = metric.removeprefix("server.series.").rpartition(".")
        parts = ["server", "series", name, stat]
    else:
        parts = metric.split(".")
    value: Any = summary
    for part in parts:
        value = value.get(part) if isinstance(value, Mapping) else None
    if parts[0] == "client_vs_server" and isinstance(value, int | float):
        return value / 1000  # the gaps are written in ms
    return value


def resolve_metric(summary: Mapping[str, Any], metric: str) -> float | None:
    """The value of ``metric`` (``ttft.p95``, ``error_rate``, ...) in a run summary."""
    family, _, stat = metric.partition(".")
    value: Any
    if _is_server(metric):
        value = _server_value(summary, metric)
    elif family in _LATENCIES and stat in _STATISTICS:
        value = (summary.get(_LATENCIES[family]) or {}).get(stat)
    elif metric in _SCALARS or metric in _FLAGS:
        value = summary
        path = _FLAGS[metric] if metric in _FLAGS else _SCALARS[metric][0]
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if metric in _FLAGS:
            return None if value is None else float(bool(value))
    else:
        raise ConfigError("slo", f"unknown metric {metric!r}")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if not math.isfinite(float(value)):
        return None
    return float(value)


Summary = Mapping[str, Any] | RunSummary


def evaluate(objectives: Sequence[Objective], summary: Summary) -> Verdict:
    """Judge every objective against a run's summary (``read_summary``'s, or the content
    of ``summary.json``)."""
    if isinstance(summary, RunSummary):
        summary = summary.as_dict()
    results = []
    for objective in objectives:
        measured = resolve_metric(summary, objective.metric)
        passed = measured is not None and objective.holds(measured)
        results.append(ObjectiveResult(objective=objective, measured=measured, passed=passed))
    return Verdict(tuple(results))


def check(summary: Summary, slo: Mapping[str, str]) -> Verdict:
    """``evaluate`` with objectives written as a mapping, for tests; public as
    ``harness.gate``: for example ``verdict = gate(summary, {"ttft.p95": "< 0.5"})``, then
    ``assert verdict.passed, str(verdict)`` (its text lists every objective's result).

    Raises:
        ConfigError: an unknown metric or a malformed comparison.
    """
    return evaluate([parse_condition(k, v) for k, v in slo.items()], summary)


def render_junit(verdict: Verdict, *, suite: str = "sse-harness gate") -> str:
    """JUnit XML with one testcase per objective (a breach is a ``failure``)."""
    failures = str(len(verdict.failures))
    tests = str(len(verdict.results))
    root = ElementTree.Element("testsuites", name=suite, tests=tests, failures=failures)
    testsuite = ElementTree.SubElement(
        root, "testsuite", name=suite, tests=tests, failures=failures, errors="0", skipped="0"
    )
    for result in verdict.results:
        case = ElementTree.SubElement(
            testsuite, "testcase", classname="slo", name=str(result.objective), time="0"
        )
        if not result.passed:
            failure = ElementTree.SubElement(
                case, "failure", message=result.detail, type="slo-breach"
            )
            failure.text = f"{result.objective.metric}: {result.detail}"
        else:
            ElementTree.SubElement(case, "system-out").text = result.detail
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def render_gate_markdown(verdict: Verdict, *, run: str | None = None) -> str:
    """The verdict as Markdown, for a CI job summary or a pull-request comment."""
    met = len(verdict.results) - len(verdict.failures)
    head = (
        f"✅ passed: {met} of {len(verdict.results)} objectives met"
        if verdict.passed
        else f"❌ failed: {len(verdict.failures)} of {len(verdict.results)} objectives breached"
    )
    lines = [f"## sse-harness gate {head}", ""]
    if run:
        shown = run.replace("`", "'")
        lines += [f"Run: `{shown}`", ""]
    lines += ["| objective | measured | result |", "|---|---:|:---:|"]
    for r in verdict.results:
        shown = "not measured" if r.measured is None else r.objective.show(r.measured)
        lines.append(f"| `{r.objective}` | {shown} | {'✅ pass' if r.passed else '❌ fail'} |")
    return "\n".join(lines) + "\n"
