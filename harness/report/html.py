"""``report.html``: one self-contained page a person reads after a run.

The page loads nothing: its style is inline, its figures are inline SVG, it has no
script, and its Content-Security-Policy forbids fetching anything (so even a mistake in
escaping could not make it load or run code). Every string that came from the endpoint
or the configuration (error messages, headers, URLs, dialect names) is escaped with
``html.escape`` before it reaches the page.
"""

from __future__ import annotations

import html
import json
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.record import Outcome, RequestRecord
from harness.report.labels import (
    COLUMNS,
    LATENCIES,
    VARIANTS,
    client_banner,
    client_line,
    measured_rates,
    or_unknown,
    schedule_line,
    token_count_line,
)
from harness.report.server import server_html

__all__ = ["ERROR_SAMPLES", "environment", "read_series", "render_html", "saturation_knee"]

#: Sample requests shown per error kind.
ERROR_SAMPLES = 3
_MESSAGE_CHARS = 400
_PACKAGES = ("httpx", "aiohttp", "pandas", "numpy", "matplotlib", "uvloop")
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#212529;
background:#f8f9fa}main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid
#dee2e6;padding-bottom:4px}.sub{color:#495057;margin:0 0 16px;overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #dee2e6;
border-radius:6px;padding:8px 14px;min-width:120px}.card b{display:block;font-size:18px}
.card span{color:#6c757d;font-size:12px}table{border-collapse:collapse;background:#fff;
margin:6px 0;font-size:13px}th,td{border:1px solid #dee2e6;padding:4px 8px;text-align:right;
vertical-align:top}th{text-align:left}td:first-child,td.text{text-align:left}
td.text{max-width:560px;overflow-wrap:anywhere;white-space:pre-wrap;font-family:ui-monospace,
monospace;font-size:12px}.figs{display:grid;grid-template-columns:repeat(auto-fit,
minmax(480px,1fr));gap:12px}figure{margin:0;background:#fff;border:1px solid #dee2e6;
border-radius:6px;padding:6px}figure svg{width:100%;height:auto}.note{color:#862e9c}
.banner{background:#fff3bf;border:1px solid #f08c00;border-radius:6px;padding:8px 12px;
font-weight:600}
figure.single{max-width:900px}figure.wide{margin-top:12px}figcaption{font-size:12px;
padding:2px 6px}.bad{color:#c92a2a;font-weight:600}.ok{color:#2b8a3e}
"""

if TYPE_CHECKING:
    import pandas as pd

Summary = Mapping[str, Any]


def _e(value: object) -> str:
    """Text made inert in HTML (both in content and in attribute values)."""
    return html.escape("" if value is None else str(value), quote=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], text_columns: int = 1) -> str:
    """A table; the first ``text_columns`` cells of a row are left-aligned text."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{_e(c)}</td>' if i < text_columns else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def environment() -> dict[str, str]:
    """Versions and machine of the process rendering the report (the run's own, when
    ``run`` writes it)."""
    versions = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": str(os.cpu_count() or "?"),
    }
    if hasattr(os, "sched_getaffinity"):
        versions["cpus usable"] = str(len(os.sched_getaffinity(0)))
    for name in ("sse-harness", *_PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions.setdefault("sse-harness", __version__)
    return versions


def saturation_knee(segments: Sequence[Mapping[str, Any]]) -> tuple[int | None, str]:
    """The segment at the knee of a sweep, and a sentence on what that means.

    A sweep stops at the first level that gains less than 5% output tokens/s over the
    best before it, or errs more than 20% (``harness.run``): the knee is the best level
    before that one. A rate search's knee is the highest rate that met the SLO.
    """
    if not segments:
        return None, ""
    if any("passed" in s for s in segments):
        passed = [i for i, s in enumerate(segments) if s.get("passed")]
        if not passed:
            return None, "no probed rate met the SLO"
        best = max(passed, key=lambda i: segments[i].get("rate") or 0.0)
        return best, f"knee: {segments[best]['segment']}, the highest rate meeting every SLO"
    saturated = [i for i, s in enumerate(segments) if s.get("saturated")]
    if not saturated:
        return None, "no saturation within the levels tried (throughput still grew by 5% or more)"
    before = range(saturated[0])
    if not before:
        return None, "saturated at the first level"
    best = max(before, key=lambda i: segments[i]["summary"]["output_tokens_per_s"])
    return best, (
        f"knee: {segments[best]['segment']}; the next level added under 5% "
        "output tokens/s or erred over 20%"
    )


def _overview(summary: Summary) -> str:
    rates = measured_rates(summary)
    cards = [
        (f"{summary.get('requests', 0)}", "requests"),
        (f"{summary.get('ok', 0)}", "ok"),
        (f"{summary.get('errors', 0)}", "errors"),
        (f"{summary.get('error_rate', 0.0):.2%}", "error rate"),
        (f"{rates[0]:,.1f}" if rates else "none", "output tokens/s"),
        (f"{rates[1]:,.2f}" if rates else "none", "requests/s"),
        (f"{summary.get('window_s', 0.0):,.1f} s", "measured window"),
    ]
    if summary.get("goodput"):
        g = summary["goodput"]
        cards.append((f"{g['requests_per_s']:,.2f} ({g['share']:.0%})", "goodput req/s (met SLO)"))
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards)
        + "</div>"
    )


def _latency(summary: Summary) -> str:
    rows = []
    for label, key in LATENCIES:
        d = summary.get(key)
        if d is None:
            continue
        rows.append([label, *(_ms(d.get(c)) for c in COLUMNS), d.get("count", 0)])
    return _table(["ms", *COLUMNS, "n"], rows)


def _notes(summary: Summary) -> list[str]:
    """Warnings on figures that rest on too little (as pyperf warns on unstable ones)."""
    notes = []
    count = (summary.get("ttft_s") or {}).get("count", 0)
    if 0 < count < 500:
        notes.append(
            f"p99 and p99.9 rest on {count} requests: fewer than 5 values lie beyond"
            " p99, so read the tails as rough."
        )
    if summary.get("interrupted"):
        notes.append("The run was interrupted: these figures cover what finished before.")
    if summary.get("measurement_error"):
        notes.append(f"Measurement error on this machine: {summary['measurement_error']}")
    notes += [line for line in (schedule_line(summary), client_line(summary)) if line]
    return notes


def _sweep(segments: Sequence[Mapping[str, Any]]) -> str:
    from harness.report import figures

    knee, note = saturation_knee(segments)
    points = [
        figures.SweepPoint(
            label=str(s["segment"]),
            tokens_per_s=s["summary"]["output_tokens_per_s"],
            ttft_p50_s=s["summary"]["ttft_s"]["p50"],
            ttft_p99_s=s["summary"]["ttft_s"]["p99"],
            e2e_p50_s=s["summary"]["e2e_s"]["p50"],
        )
        for s in segments
    ]
    svg = figures.sweep_curve(points, knee, note)
    rows = []
    for i, s in enumerate(segments):
        m = s["summary"]
        flag = "knee" if i == knee else "saturated" if s.get("saturated") else ""
        if "passed" in s:
            flag = (flag + " " if flag else "") + ("met SLO" if s["passed"] else "missed SLO")
        rows.append(
            [
                s["segment"],
                m["requests"],
                m["errors"],
                _ms(m["ttft_s"]["p50"]),
                _ms(m["ttft_s"]["p99"]),
                _ms(m["itl_s"]["p50"]),
                _ms(m["e2e_s"]["p50"]),
                *_rates(m),
                flag,
            ]
        )
    header = [
        "segment",
        "requests",
        "errors",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "ITL p50 (ms)",
        "E2E p50 (ms)",
        "tokens/s",
        "requests/s",
        "note",
    ]
    figure = f'<figure class="single">{svg}</figure>' if svg else ""
    return f"<h2>Sweep</h2><p>{_e(note)}</p>{figure}{_table(header, rows)}"


def _rates(summary: Summary) -> tuple[str, str]:
    rates = measured_rates(summary)
    return (f"{rates[0]:,.1f}", f"{rates[1]:,.2f}") if rates else ("none", "none")


def _variants(variants: Mapping[str, Any]) -> str:
    rows = [
        [
            label,
            _ms((variants.get(key) or {}).get("p50")),
            _ms((variants.get(key) or {}).get("p99")),
        ]
        for label, key in VARIANTS
    ]
    return (
        f"<h2>The same figures as other tools define them</h2>"
        f"{_table(['figure', 'p50 (ms)', 'p99 (ms)'], rows)}"
        f"<p>{_e(token_count_line(variants))}</p>"
    )


def _errors(summary: Summary, records: Sequence[RequestRecord]) -> str:
    by_kind = summary.get("errors_by_kind") or {}
    failed = [r for r in records if r.outcome is Outcome.ERROR]
    if not by_kind and not failed:
        return '<h2>Errors</h2><p class="ok">No errors.</p>'
    counts = _table(["kind", "requests"], sorted(by_kind.items(), key=lambda kv: -kv[1]))
    samples: dict[str, list[RequestRecord]] = {}
    for record in failed:
        kind = record.error_kind.value if record.error_kind else "unknown"
        if len(samples.setdefault(kind, [])) < ERROR_SAMPLES:
            samples[kind].append(record)
    rows = []
    for kind, chosen in sorted(samples.items()):
        for r in chosen:
            message = r.error_message or ""
            if len(message) > _MESSAGE_CHARS:
                message = message[:_MESSAGE_CHARS] + "…"
            rows.append(
                [
                    kind,
                    r.request_id,
                    r.status if r.status is not None else "-",
                    r.content_type or "-",
                    message,
                ]
            )
    header = ["kind", "request", "status", "content type", "message"]
    return (
        f"<h2>Errors</h2>{counts}<p>Up to {ERROR_SAMPLES} sample requests per kind"
        f" (counted over the measured window above; samples from the whole run):</p>"
        f"{_table(header, rows, text_columns=5)}"
    )


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[list[str]]:
    rows: list[list[str]] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            rows.append([f"{prefix}{key}", shown])
    return rows


def _disconnects(disconnect: Mapping[str, Any]) -> str:
    if not disconnect or not disconnect.get("abandoned"):
        return ""
    verdict = disconnect.get("verdict")
    said = f"<p>{_e(verdict)}</p>" if verdict else ""
    rows = [[k, json.dumps(v, default=str)] for k, v in disconnect.items() if k != "verdict"]
    return f"<h2>Abandoned streams</h2>{said}{_table(['figure', 'value'], rows, text_columns=2)}"


def read_series(path: Path) -> pd.DataFrame | None:
    """A run folder's per-second rows (``timeseries.csv``), or None when it has none
    readable (a folder written before it was kept, or a damaged file)."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return None


def _workload(records: Sequence[RequestRecord]) -> str:
    from harness.report.length_figures import workload_section  # matplotlib, as above

    return workload_section(records)


def render_html(
    summary: Summary,
    records: Sequence[RequestRecord],
    *,
    title: str = "sse-harness run",
    env: Mapping[str, str] | None = None,
    series: pd.DataFrame | None = None,
    server_rows: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The report page of a run.

    Args:
        summary: the run's summary (``summary.json``).
        records: the run's records (``results.jsonl``), for the figures and error samples.
        title: the page's heading.
        env: versions and machine to show; None takes ``environment()``.
        series: the run's per-second rows (``timeseries.csv``), for the client's health
            over time; None draws the rest from the records alone.
        server_rows: the scraped server's series over time, for its panel.
    """
    from harness.report.run_figures import figures_html  # matplotlib: when a page is drawn

    config = summary.get("config") or {}
    dialect = or_unknown(summary.get("dialect") or config.get("dialect"), "?")
    target = (
        f"{or_unknown(config.get('url'), '?')} · {or_unknown(config.get('request'), '?')} request"
        f" · {dialect} dialect · {or_unknown(config.get('transport'), '?')} transport"
    )
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in _notes(summary))
    banner = client_banner(summary)
    parts = [
        f'<h1>{_e(title)}</h1><p class="sub">{_e(target)}</p>',
        f'<div class="banner" role="alert">{_e(banner)}</div>' if banner else "",
        _overview(summary),
        notes,
        "<h2>Latency</h2>",
        _latency(summary),
        "<h2>Figures</h2>",
        figures_html(summary, records, series),
        _workload(records),
    ]
    parts.append(server_html(summary, records, server_rows))
    if summary.get("segments"):
        parts.append(_sweep(summary["segments"]))
    if summary.get("variants"):
        parts.append(_variants(summary["variants"]))
    parts.append(_errors(summary, records))
    parts.append(_disconnects(summary.get("disconnect") or {}))
    parts.append(
        "<h2>Configuration</h2><p>Secrets are redacted: API keys and header values"
        " never reach a report.</p>"
        + _table(["setting", "value"], _flatten(config), text_columns=2)
    )
    versions = env if env is not None else environment()
    parts.append(
        "<h2>Environment</h2>" + _table(["", "version"], [[k, v] for k, v in versions.items()], 2)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )
